import { MAX_NESTING_DEPTH, nestingDepthExceeds, parseJsonBody } from './json-body';

const parse = (body: string | Buffer) =>
  parseJsonBody(typeof body === 'string' ? Buffer.from(body) : body);

function refusal(body: string | Buffer): string {
  try {
    parse(body);
  } catch (error) {
    const problem = (error as { problems: Array<{ code: string; detail: string }> }).problems[0];
    expect(problem.code).toBe('invalid_document');
    return problem.detail;
  }
  throw new Error('not refused');
}

describe('parseJsonBody', () => {
  it('parses JSON, ignores a leading BOM, and reads a blank body as no body', () => {
    expect(parse('{"data":{"a":[1,2]}}')).toEqual({ data: { a: [1, 2] } });
    expect(parse('\ufeff{"a":1}')).toEqual({ a: 1 });
    expect(parse('')).toBeUndefined();
    expect(parse(' \n')).toBeUndefined();
  });

  it('refuses bytes that are not UTF-8 instead of storing U+FFFD', () => {
    for (const bad of [[0xff], [0xc3], [0xc0, 0x80], [0xed, 0xa0, 0x80]]) {
      const body = Buffer.concat([Buffer.from('{"name":"a'), Buffer.from(bad), Buffer.from('"}')]);
      expect(refusal(body)).toBe('The request body is not valid UTF-8.');
    }
  });

  it('refuses malformed JSON and prototype members, each with its own detail', () => {
    expect(refusal('{"data": ')).toBe('The request body is not valid JSON.');
    expect(refusal('{"__proto__":{"x":1}}')).toMatch(/forbidden member name/);
    expect(refusal('{"constructor":{"prototype":{}}}')).toMatch(/forbidden member name/);
  });

  it(`accepts ${MAX_NESTING_DEPTH} levels of nesting and refuses one more, at any depth`, () => {
    const nested = (levels: number) => '['.repeat(levels) + ']'.repeat(levels);
    expect(parse(nested(MAX_NESTING_DEPTH))).toBeDefined();
    expect(refusal(nested(MAX_NESTING_DEPTH + 1))).toMatch(/nested deeper than 64 levels/);
    expect(refusal(nested(500_000))).toMatch(/nested deeper/);
    expect(refusal('{"a":'.repeat(100_000) + '1' + '}'.repeat(100_000))).toMatch(/nested deeper/);
  });
});

describe('nestingDepthExceeds', () => {
  it('counts arrays and objects, not scalars', () => {
    expect(nestingDepthExceeds(1, 0)).toBe(false);
    expect(nestingDepthExceeds({}, 0)).toBe(true);
    expect(nestingDepthExceeds({ a: [1, { b: 'x' }] }, 3)).toBe(false);
    expect(nestingDepthExceeds({ a: [1, { b: {} }] }, 3)).toBe(true);
  });
});
