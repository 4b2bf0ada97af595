import { DomainError } from '../common/domain.error';
import { canonicalJson, parseIdempotencyKey, requestFingerprint } from './idempotency-key';

describe('parseIdempotencyKey', () => {
  it('accepts 1 to 255 printable ASCII characters, spaces included', () => {
    expect(parseIdempotencyKey(undefined)).toBeUndefined();
    expect(parseIdempotencyKey('a')).toBe('a');
    expect(parseIdempotencyKey('order 42 / retry')).toBe('order 42 / retry');
    expect(parseIdempotencyKey('k'.repeat(255))).toHaveLength(255);
  });

  it.each([
    ['empty', ''],
    ['too long', 'k'.repeat(256)],
    ['non-ASCII', 'clé'],
    ['a control character', 'a\tb'],
  ])('refuses a key that is %s, pointing at the header', (_, key) => {
    const error = (() => {
      try {
        parseIdempotencyKey(key);
      } catch (e) {
        return e;
      }
    })();
    expect(error).toBeInstanceOf(DomainError);
    expect((error as DomainError).problems).toEqual([
      expect.objectContaining({ code: 'invalid_header', source: { parameter: 'Idempotency-Key' } }),
    ]);
  });

  it('refuses a header sent twice', () => {
    expect(() => parseIdempotencyKey(['a', 'b'])).toThrow(DomainError);
  });
});

describe('requestFingerprint', () => {
  it('ignores member order and whitespace but not values, paths or methods', () => {
    const a = requestFingerprint('POST', '/purchases', JSON.parse('{"a": 1, "b": {"c": [1, 2]}}'));
    const b = requestFingerprint('POST', '/purchases', JSON.parse('{"b":{"c":[1,2]},"a":1}'));
    expect(a).toBe(b);
    expect(requestFingerprint('POST', '/purchases', { a: 2, b: { c: [1, 2] } })).not.toBe(a);
    expect(requestFingerprint('POST', '/ticket_options', { a: 1, b: { c: [1, 2] } })).not.toBe(a);
    expect(a).toMatch(/^[0-9a-f]{64}$/);
  });

  it('keeps array order and distinguishes strings from numbers', () => {
    expect(canonicalJson([2, 1])).not.toBe(canonicalJson([1, 2]));
    expect(canonicalJson({ q: '1' })).not.toBe(canonicalJson({ q: 1 }));
  });
});
