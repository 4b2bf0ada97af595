import { DomainError } from '../common/domain.error';
import { isStorableText, ResourceDocumentParser } from './resource-document';

const parser = new ResourceDocumentParser<{ name: string; note?: string | null }>({
  type: 'things',
  attributes: { name: { type: 'string', minLength: 1 }, note: { type: ['string', 'null'] } },
  requiredAttributes: ['name'],
  relationships: {},
});

function problemsOf(body: unknown) {
  try {
    parser.parse(body);
  } catch (error) {
    return (error as DomainError).problems;
  }
  throw new Error('accepted');
}

describe('ResourceDocumentParser', () => {
  it('refuses text the database cannot store as sent, with a pointer to each field', () => {
    const problems = problemsOf({
      data: { type: 'things', attributes: { name: 'a\u0000b', note: 'x\ud800' } },
    });
    expect(problems).toEqual([
      expect.objectContaining({
        code: 'invalid_attribute',
        source: { pointer: '/data/attributes/name' },
      }),
      expect.objectContaining({
        code: 'invalid_attribute',
        source: { pointer: '/data/attributes/note' },
      }),
    ]);
  });

  it('keeps one problem per field when the schema already refused it', () => {
    const problems = problemsOf({ data: { type: 'things', attributes: { name: '', note: 1 } } });
    expect(problems.map((p) => p.source)).toEqual([
      { pointer: '/data/attributes/name' },
      { pointer: '/data/attributes/note' },
    ]);
  });

  it('accepts surrogate pairs and any other text', () => {
    expect(
      parser.parse({ data: { type: 'things', attributes: { name: '😀 é \t "' } } }).attributes,
    ).toEqual({ name: '😀 é \t "' });
  });

  it('lists at most 20 invalid members, then says how many more there are', () => {
    const attributes = Object.fromEntries(Array.from({ length: 100_000 }, (_, i) => [`m${i}`, 0]));
    const problems = problemsOf({
      data: { type: 'things', attributes: { name: 'n', ...attributes } },
    });
    expect(problems).toHaveLength(21);
    expect(problems[20]).toEqual({
      code: 'invalid_document',
      detail: '99980 more invalid members are not listed (at most 20 are).',
    });
  });
});

describe('isStorableText', () => {
  it.each([
    ['plain', 'abc', true],
    ['a surrogate pair', '\ud83d\ude00', true],
    ['NUL', 'a\u0000', false],
    ['a lone high surrogate', 'a\ud800', false],
    ['a lone low surrogate', '\udc00a', false],
    ['a reversed pair', '\udc00\ud800', false],
  ])('%s: %p', (_case, text, storable) => {
    expect(isStorableText(text)).toBe(storable);
  });
});
