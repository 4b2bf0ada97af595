import { batchedLines, LOG_BATCH_MS, prettyLogs } from './app.logger';

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

describe('batchedLines', () => {
  beforeEach(() => jest.useFakeTimers());
  afterEach(() => jest.useRealTimers());

  it('writes the lines of a batch together, at most LOG_BATCH_MS after the first one', () => {
    const writes: string[] = [];
    const destination = batchedLines({
      write: (text: string) => writes.push(text),
      writeAtExit: () => undefined,
    });
    destination.write('{"a":1}\n');
    destination.write('{"b":2}\n');
    expect(writes).toEqual([]);
    jest.advanceTimersByTime(LOG_BATCH_MS);
    expect(writes).toEqual(['{"a":1}\n{"b":2}\n']);
    destination.write('{"c":3}\n');
    jest.advanceTimersByTime(LOG_BATCH_MS);
    expect(writes).toEqual(['{"a":1}\n{"b":2}\n', '{"c":3}\n']);
  });

  it('writes at once when 64 KB are pending', () => {
    const writes: string[] = [];
    const destination = batchedLines({
      write: (text: string) => writes.push(text),
      writeAtExit: () => undefined,
    });
    const line = `${'x'.repeat(1023)}\n`;
    for (let i = 0; i < 64; i++) destination.write(line);
    expect(writes).toEqual([line.repeat(64)]);
    jest.advanceTimersByTime(LOG_BATCH_MS);
    expect(writes).toHaveLength(1);
  });
});
