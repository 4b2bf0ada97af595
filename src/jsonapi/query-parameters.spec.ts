import { DomainError } from '../common/domain.error';
import {
  applySparseFieldsets,
  includedResources,
  NO_QUERY,
  parseJsonApiQuery,
  RawQuery,
} from './query-parameters';
import { defineResourceType, includePaths, queryRules } from './resource-type';

const authors = defineResourceType({
  type: 'authors',
  attributes: { name: {} },
  requiredAttributes: [],
  relationships: {},
});
const books = defineResourceType(
  {
    type: 'books',
    attributes: { title: {}, pages: {} },
    requiredAttributes: [],
    relationships: {
      author: { type: 'authors', required: true },
      shelf: { type: 'shelves', required: false },
    },
  },
  { author: authors },
);
const read = queryRules(books, { include: true });
const create = queryRules(books, { include: false });

function problemsOf(query: RawQuery, rules = read) {
  try {
    parseJsonApiQuery(query, rules);
  } catch (error) {
    return (error as DomainError).problems.map((p) => [p.code, p.source]);
  }
  throw new Error('accepted');
}
const refused = (parameter: string) => ['invalid_query_parameter', { parameter }];

describe('parseJsonApiQuery', () => {
  it('asks nothing without a query, or with implementation-specific names only', () => {
    expect(parseJsonApiQuery(undefined, read)).toBe(NO_QUERY);
    expect(parseJsonApiQuery({}, read)).toBe(NO_QUERY);
    const ignored = { debugMode: '1', 'x-trace': 'a', _: '123', 'a1[b]': 'c', '%zz': '', '': 'x' };
    expect(parseJsonApiQuery(ignored, read)).toBe(NO_QUERY);
  });

  it('reads include paths and sparse fieldsets', () => {
    const query = parseJsonApiQuery(
      { include: 'author,author', 'fields[books]': 'title,author', 'fields[authors]': '' },
      read,
    );
    expect([...query.include!]).toEqual(['author']);
    expect(
      Object.fromEntries([...query.fields].map(([type, names]) => [type, [...names]])),
    ).toEqual({ books: ['title', 'author'], authors: [] });
  });

  it('reads an empty include as "include nothing" (still a compound document)', () => {
    expect([...parseJsonApiQuery({ include: '' }, read).include!]).toEqual([]);
  });

  it.each([
    ['an unknown path', { include: 'shelf' }, 'include'],
    ['a nested path that does not exist', { include: 'author.books' }, 'include'],
    ['an empty path in the list', { include: 'author,' }, 'include'],
    ['a prototype member as path', { include: '__proto__' }, 'include'],
    ['an unknown field', { 'fields[books]': 'title,isbn' }, 'fields[books]'],
    ['a prototype member as field', { 'fields[books]': 'constructor' }, 'fields[books]'],
    ['an unknown type', { 'fields[shelves]': 'x' }, 'fields[shelves]'],
    ['an empty type', { 'fields[]': 'title' }, 'fields[]'],
    ['fields without a type', { fields: 'title' }, 'fields'],
    ['fields with two segments', { 'fields[books][x]': 'title' }, 'fields[books][x]'],
    ['an open bracket', { 'fields[': 'title' }, 'fields['],
    ['a stray bracket', { 'x]': '1' }, 'x]'],
    ['sort', { sort: 'title' }, 'sort'],
    ['page', { 'page[size]': '1' }, 'page[size]'],
    ['filter', { 'filter[title]': 'a' }, 'filter[title]'],
    ['filter without brackets', { filter: 'a' }, 'filter'],
    ['another reserved name', { foo: 'bar' }, 'foo'],
    ['a reserved family', { 'ids[]': '1' }, 'ids[]'],
    ['include with brackets', { 'include[x]': 'author' }, 'include[x]'],
    ['a repeated parameter', { include: ['author', 'author'] }, 'include'],
  ])('refuses %s', (_case, query, parameter) => {
    expect(problemsOf(query)).toEqual([refused(parameter)]);
  });

  it('refuses include where it is not honoured, whatever its value, and fields of types it would include', () => {
    expect(problemsOf({ include: 'author' }, create)).toEqual([refused('include')]);
    expect(problemsOf({ 'fields[authors]': 'name' }, create)).toEqual([refused('fields[authors]')]);
    expect(problemsOf({ include: '' }, create)).toEqual([refused('include')]);
    const noRelationships = queryRules(authors, { include: true });
    expect(noRelationships.include).toBe(false);
    expect(problemsOf({ include: '' }, noRelationships)).toEqual([refused('include')]);
  });

  it('reports every bad parameter, and at most 21 error objects', () => {
    expect(problemsOf({ sort: 'a', include: 'x', 'fields[books]': 'y', debugMode: '1' })).toEqual([
      refused('sort'),
      refused('include'),
      refused('fields[books]'),
    ]);
    const ignored = Object.fromEntries(Array.from({ length: 1000 }, (_, i) => [`p${i}`, '']));
    expect(parseJsonApiQuery(ignored, read)).toBe(NO_QUERY);
    const reserved = Object.fromEntries(
      Array.from({ length: 1000 }, (_, i) => [
        `p${i.toString(26).replace(/\d/g, (d) => String.fromCharCode(113 + Number(d)))}`,
        '',
      ]),
    );
    const problems = problemsOf(reserved);
    expect(problems).toHaveLength(21);
  });
});

describe('applySparseFieldsets', () => {
  const document = {
    data: {
      type: 'books',
      id: '1',
      attributes: { title: 't', pages: 3 },
      relationships: { author: { data: { type: 'authors', id: '2' } } },
      links: { self: '/books/1' },
      meta: { m: 1 },
    },
    included: [{ type: 'authors', id: '2', attributes: { name: 'n' } }],
    meta: { top: true },
  };

  it('keeps only the listed fields, of the named types, in data and included', () => {
    const fields = new Map([
      ['books', new Set(['title'])],
      ['authors', new Set<string>()],
    ]);
    expect(applySparseFieldsets(document, { fields })).toEqual({
      data: {
        type: 'books',
        id: '1',
        attributes: { title: 't' },
        relationships: {},
        links: { self: '/books/1' },
        meta: { m: 1 },
      },
      included: [{ type: 'authors', id: '2', attributes: {} }],
      meta: { top: true },
    });
    expect(document.data.attributes).toEqual({ title: 't', pages: 3 }); // not mutated
  });

  it('returns the document itself when no fieldset is asked for, and survives odd shapes', () => {
    expect(applySparseFieldsets(document, NO_QUERY)).toBe(document);
    const fields = new Map([['books', new Set(['title'])]]);
    for (const odd of [null, 1, { data: null }, { errors: [] }, { data: [{ type: 'books' }, 2] }]) {
      expect(() => applySparseFieldsets(odd, { fields })).not.toThrow();
    }
  });
});

describe('resource types', () => {
  it('lists include paths and refuses an include entry that is no such relationship', () => {
    expect(includePaths(books)).toEqual(['author']);
    expect(() =>
      defineResourceType(
        { type: 'x', attributes: {}, requiredAttributes: [], relationships: {} },
        { author: authors },
      ),
    ).toThrow(/not a relationship/);
  });

  it('keeps one included resource per type and id', () => {
    const a = { type: 'authors', id: '2' };
    expect(includedResources([a, { ...a }, { type: 'books', id: '2' }])).toHaveLength(2);
  });
});
