import { prettyLogs } from './app.logger';

describe('prettyLogs', () => {
  it('is true only at a terminal outside production', () => {
    expect(prettyLogs(true, undefined)).toBe(true);
    expect(prettyLogs(true, 'development')).toBe(true);
  });

  it('keeps JSON in production, in pipes and files, and when stdout is unknown', () => {
    expect(prettyLogs(true, 'production')).toBe(false);
    expect(prettyLogs(false, undefined)).toBe(false);
    expect(prettyLogs(undefined, 'development')).toBe(false);
  });
});
