import { isConnectionBroken, isDatabaseUnavailable } from './database-errors';

const withCode = (code: string, message = 'x') => Object.assign(new Error(message), { code });

describe('isDatabaseUnavailable', () => {
  it.each([
    ['connection refused', withCode('ECONNREFUSED')],
    ['a connection-exception SQLSTATE', withCode('08006')],
    ['a terminated backend', withCode('57P01')],
    ['a statement timeout', withCode('57014')],
    ['a lock timeout', withCode('55P03')],
    ['a database not accepting connections', withCode('55000')],
    ['an exhausted pool', new Error('timeout exceeded when trying to connect')],
    ['a lost connection', new Error('Connection terminated unexpectedly')],
    ['a wrapped cause', new Error('query failed', { cause: withCode('ECONNRESET') })],
    ['an AggregateError of connects', new AggregateError([withCode('ECONNREFUSED')], 'connect')],
  ])('is true for %s', (_, error) => {
    expect(isDatabaseUnavailable(error)).toBe(true);
  });

  it.each([
    ['a check violation (a bug, not an outage)', withCode('23514')],
    ['a unique violation', withCode('23505')],
    ['a syntax error', withCode('42601')],
    ['a plain error', new Error('boom')],
    ['nothing', undefined],
  ])('is false for %s', (_, error) => {
    expect(isDatabaseUnavailable(error)).toBe(false);
  });
});

describe('isConnectionBroken', () => {
  it('is true for terminated sessions and errors without a SQLSTATE', () => {
    expect(isConnectionBroken(withCode('57P01'))).toBe(true);
    expect(isConnectionBroken(withCode('08006'))).toBe(true);
    expect(isConnectionBroken(new Error('Connection terminated unexpectedly'))).toBe(true);
  });

  it('is false for statement errors that leave the session usable', () => {
    for (const code of ['57014', '55P03', '23514', '40P01']) {
      expect(isConnectionBroken(withCode(code))).toBe(false);
    }
  });
});
