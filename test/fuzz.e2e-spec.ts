/**
 * Property-based hostile input against the real application (real sockets, real PostgreSQL): for
 * every JSON:API route, arbitrary and near-valid requests must get a well-formed JSON:API answer,
 * 2xx or 4xx, with nothing of the server's insides in it, and nothing may be persisted except what
 * a 201 announced. Deterministic: the seed is fixed (FUZZ_SEED overrides it; FUZZ_RUNS raises the
 * number of cases per route).
 */
import fc from 'fast-check';
import { isUtf8 } from 'node:buffer';
import { JSONAPI, JsonApiClient } from './support/jsonapi-client';
import {
  Answer,
  answerOf,
  assertJsonApiAnswer,
  echoableTexts,
} from './support/jsonapi-conformance';
import { startTestApp, TestApp } from './support/test-app';

const DEFAULT_SEED = 20261121;
const SEED = process.env.FUZZ_SEED ? Number(process.env.FUZZ_SEED) : DEFAULT_SEED;
const RUNS = process.env.FUZZ_RUNS ? Number(process.env.FUZZ_RUNS) : 1000;
const MAX_INT32 = 2147483647;

// ---------------------------------------------------------------------------------------------
// JSON text written by hand, so that a case can hold what JSON.stringify never writes: numbers
// as `1e3` or `-0`, `\ud800` and `\u0000` escapes, duplicate member names.

/** A token copied into the JSON text as it is. */
class Raw {
  constructor(readonly text: string) {}
  toString(): string {
    return `Raw(${this.text.length > 80 ? `${this.text.slice(0, 80)}…` : this.text})`;
  }
}

/** An object as a list of members: names may repeat, and a name may be a raw token. */
class Members {
  constructor(readonly entries: ReadonlyArray<readonly [string | Raw, Json]>) {}
}

type Json = null | boolean | number | string | Raw | Members | Json[] | { [k: string]: Json };

function writeJson(value: Json): string {
  if (value instanceof Raw) return value.text;
  if (value instanceof Members) {
    const members = value.entries.map(
      ([name, member]) =>
        `${name instanceof Raw ? name.text : JSON.stringify(name)}:${writeJson(member)}`,
    );
    return `{${members.join(',')}}`;
  }
  if (Array.isArray(value)) return `[${value.map(writeJson).join(',')}]`;
  if (value !== null && typeof value === 'object') {
    return writeJson(new Members(Object.entries(value)));
  }
  return JSON.stringify(value) ?? 'null';
}

// ---------------------------------------------------------------------------------------------
// Hostile values.

const printableAscii = fc.integer({ min: 0x20, max: 0x7e }).map((c) => String.fromCharCode(c));
const latin1High = fc.integer({ min: 0xa0, max: 0xff }).map((c) => String.fromCharCode(c));

const rawNumbers = fc
  .constantFrom(
    '1e3',
    '1E3',
    '1e+3',
    '1e-3',
    '2e0',
    '-0',
    '0.0',
    '1.0',
    '1.5',
    '-1',
    '0',
    '2147483647',
    '2147483648',
    '-2147483648',
    '4294967296',
    '9007199254740993',
    '123456789012345678901234567890',
    '1e309',
    '-1e309',
    '5e-324',
    '0e0',
    '21474836.47e2',
  )
  .map((text) => new Raw(text));

/** Escapes JSON allows and a database may not: NUL, unpaired surrogates, escaped `__proto__`. */
const rawStrings = fc
  .constantFrom(
    '"\\ud800"',
    '"a\\udfffb"',
    '"\\udc00\\ud800"',
    '"\\u0000"',
    '"x\\u0000y"',
    '"\\ud83d\\ude00"',
    '"\\u005f\\u005fproto\\u005f\\u005f"',
    '"\\uFEFF"',
    '"\\/\\b\\f\\n\\r\\t"',
  )
  .map((text) => new Raw(text));

const longStrings = fc
  .tuple(fc.constantFrom(255, 256, 10_000, 10_001, 100_000), fc.constantFrom('x', 'é', '😀', ' '))
  .map(([length, unit]) => unit.repeat(length));

const strings = fc.oneof(
  fc.string(),
  fc.string({ unit: 'binary', maxLength: 20 }),
  fc.string({ unit: 'grapheme', maxLength: 10 }),
  fc.integer().map(String),
  fc.double().map(String),
  fc.constantFrom('', ' ', '\t\n', 'null', '1e3', '__proto__', 'SELECT 1; DROP TABLE purchases'),
  { weight: 1, arbitrary: longStrings },
);

/** 1 to 100,000 levels of arrays or objects (the body limit allows ~200,000 levels). */
const deepNesting = fc
  .tuple(
    fc.oneof(fc.integer({ min: 1, max: 200 }), fc.integer({ min: 1_000, max: 100_000 })),
    fc.boolean(),
  )
  .map(([depth, arrays]) =>
    arrays
      ? new Raw('['.repeat(depth) + ']'.repeat(depth))
      : new Raw('{"a":'.repeat(depth) + '0' + '}'.repeat(depth)),
  );

/** `constructor.prototype` and `__proto__` as values of a member (see hostileMemberName). */
const prototypeBomb = fc.constantFrom<Json>(
  new Members([['prototype', new Members([['polluted', true]])]]),
  new Members([['__proto__', new Members([['polluted', true]])]]),
);

const hostileValue: fc.Arbitrary<Json> = fc.oneof(
  fc.integer(),
  fc.integer({ min: -1, max: 4 }),
  fc.double(),
  fc.bigInt(-(2n ** 80n), 2n ** 80n).map((n) => new Raw(String(n))),
  rawNumbers,
  strings,
  rawStrings,
  fc.constantFrom<Json>(null, true, false, [], {}),
  fc.jsonValue({ maxDepth: 3 }) as fc.Arbitrary<Json>,
  fc.array(fc.oneof(fc.integer(), fc.string()), { maxLength: 3 }),
  fc.uuid(),
  prototypeBomb,
  { weight: 1, arbitrary: deepNesting },
);

const hostileMemberName: fc.Arbitrary<string | Raw> = fc.oneof(
  fc.constantFrom(
    '__proto__',
    'constructor',
    'prototype',
    'data',
    'type',
    'id',
    'lid',
    'attributes',
    'relationships',
    'included',
    'meta',
    'links',
    'jsonapi',
    '',
    ' ',
  ),
  fc.string({ maxLength: 12 }),
  fc.string({ unit: 'binary', maxLength: 6 }),
  fc
    .constantFrom('"\\u005f\\u005fproto\\u005f\\u005f"', '"\\ud800"', '"\\u0000"', '"a\\"b"')
    .map((text) => new Raw(text)),
);

// ---------------------------------------------------------------------------------------------
// Documents. A clean one is valid in shape (its values may still be refused: an unknown option,
// more tickets than remain). A near-valid one has every member usually right, sometimes hostile,
// missing or repeated, and every object sometimes gains unknown members or is replaced whole.

type MemberList = Array<readonly [string | Raw, Json]>;

/**
 * Text of the right type, as the database will get it: any code point (NUL and unpaired
 * surrogates too), graphemes, quotes and SQL-looking text.
 */
function text(maxLength: number): fc.Arbitrary<string> {
  return fc.oneof(
    { weight: 3, arbitrary: fc.string({ minLength: 1, maxLength }) },
    fc.string({ unit: 'binary', minLength: 1, maxLength }),
    fc.string({ unit: 'grapheme', minLength: 1, maxLength }),
    fc.constantFrom(
      'a\u0000b',
      '\u0000',
      'x\ud800',
      '\udfff',
      '\udc00\ud800',
      '😀',
      'é',
      "O'Brien",
      '\\',
      '%s%n',
      'SELECT 1; --',
    ),
  );
}

class Shapes {
  constructor(private readonly hostile: boolean) {}

  member(name: string, valid: fc.Arbitrary<Json>): fc.Arbitrary<MemberList> {
    const right = valid.map((value): MemberList => [[name, value]]);
    if (!this.hostile) return right;
    const either = fc.oneof(valid, hostileValue);
    return fc.oneof(
      { weight: 12, arbitrary: right },
      { weight: 2, arbitrary: hostileValue.map((value): MemberList => [[name, value]]) },
      { weight: 1, arbitrary: fc.constant<MemberList>([]) },
      {
        weight: 1,
        arbitrary: fc.tuple(either, either).map(([a, b]): MemberList => [
          [name, a],
          [name, b],
        ]),
      },
    );
  }

  optionalMember(name: string, valid: fc.Arbitrary<Json>): fc.Arbitrary<MemberList> {
    return fc.oneof(
      { weight: 3, arbitrary: this.member(name, valid) },
      fc.constant<MemberList>([]),
    );
  }

  object(...members: Array<fc.Arbitrary<MemberList>>): fc.Arbitrary<Json> {
    const assemble = (extras: fc.Arbitrary<MemberList>) =>
      fc
        .tuple(fc.tuple(...members), extras)
        .map(([groups, extra]) => new Members([...groups.flat(), ...extra]) as Json);
    if (!this.hostile) return assemble(fc.constant<MemberList>([]));
    const extras = fc.oneof(
      { weight: 6, arbitrary: fc.constant<MemberList>([]) },
      {
        weight: 1,
        arbitrary: fc.array(fc.tuple(hostileMemberName, hostileValue), {
          minLength: 1,
          maxLength: 3,
        }),
      },
    );
    return fc.oneof(
      { weight: 12, arbitrary: assemble(extras) },
      { weight: 1, arbitrary: hostileValue },
    );
  }

  document(data: fc.Arbitrary<Json>): fc.Arbitrary<Json> {
    return this.object(
      this.member('data', data),
      this.optionalMember('meta', fc.constant({ trace: 'x' })),
      this.optionalMember('jsonapi', fc.constant({ version: '1.1' })),
    );
  }

  ticketOption(): fc.Arbitrary<Json> {
    return this.document(
      this.object(
        this.member('type', fc.constant('ticket_options')),
        this.member(
          'attributes',
          this.object(
            this.member('name', text(20)),
            this.optionalMember('description', fc.option(text(40), { nil: null })),
            this.member('allocation', fc.integer({ min: 0, max: MAX_INT32 })),
          ),
        ),
      ),
    );
  }

  linkage(type: string, ids: fc.Arbitrary<string>): fc.Arbitrary<Json> {
    return this.object(
      this.member(
        'data',
        this.object(this.member('type', fc.constant(type)), this.member('id', ids)),
      ),
    );
  }

  purchase(optionIds: fc.Arbitrary<string>, ticketOptionRequired: boolean): fc.Arbitrary<Json> {
    const ticketOption = this.linkage('ticket_options', optionIds);
    const quantity = fc.oneof(
      { weight: 4, arbitrary: fc.integer({ min: 1, max: 3 }) },
      fc.integer({ min: 1, max: MAX_INT32 }),
    );
    return this.document(
      this.object(
        this.member('type', fc.constant('purchases')),
        this.member('attributes', this.object(this.member('quantity', quantity))),
        this.member(
          'relationships',
          this.object(
            ticketOptionRequired
              ? this.member('ticket_option', ticketOption)
              : this.optionalMember('ticket_option', ticketOption),
            this.member('user', this.linkage('users', fc.uuid())),
          ),
        ),
      ),
    );
  }
}

/** One case in three is clean, so that the success paths (201, read back) are exercised too. */
function cleanOrNearValid(shape: (shapes: Shapes) => fc.Arbitrary<Json>): fc.Arbitrary<Json> {
  return fc.oneof(
    { weight: 1, arbitrary: shape(new Shapes(false)) },
    { weight: 2, arbitrary: shape(new Shapes(true)) },
  );
}

const ticketOptionDocuments = cleanOrNearValid((shapes) => shapes.ticketOption());

function purchaseDocuments(optionIds: fc.Arbitrary<string>, ticketOptionRequired: boolean) {
  return cleanOrNearValid((shapes) => shapes.purchase(optionIds, ticketOptionRequired));
}

// ---------------------------------------------------------------------------------------------
// Bodies, headers and paths.

/** Body bytes: mostly the near-valid document, else arbitrary JSON, garbage or broken text. */
function bodyOf(document: fc.Arbitrary<Json>): fc.Arbitrary<Buffer> {
  const text = document.map(writeJson);
  const utf8 = (s: string) => Buffer.from(s, 'utf8');
  const invalidUtf8 = fc.constantFrom(
    [0xff],
    [0xfe, 0xff],
    [0xc3],
    [0xc0, 0x80],
    [0xed, 0xa0, 0x80],
    [0xf4, 0x90, 0x80, 0x80],
    [0x80],
  );
  return fc.oneof(
    { weight: 16, arbitrary: text.map(utf8) },
    { weight: 2, arbitrary: (fc.jsonValue() as fc.Arbitrary<Json>).map((v) => utf8(writeJson(v))) },
    { weight: 1, arbitrary: hostileValue.map((v) => utf8(writeJson(v))) },
    { weight: 1, arbitrary: fc.uint8Array({ maxLength: 64 }).map((bytes) => Buffer.from(bytes)) },
    { weight: 1, arbitrary: fc.constantFrom('', ' ', '\n', 'null', '{}', '[]').map(utf8) },
    {
      weight: 1,
      arbitrary: fc
        .tuple(text, fc.nat())
        .map(([json, cut]) => utf8(json.slice(0, json.length === 0 ? 0 : cut % json.length))),
    },
    {
      // Invalid UTF-8 inside a document: not JSON, whatever the decoded text would say.
      weight: 1,
      arbitrary: fc.tuple(text, fc.nat(), invalidUtf8).map(([json, at, bad]) => {
        const bytes = utf8(json);
        const i = bytes.length === 0 ? 0 : at % bytes.length;
        return Buffer.concat([bytes.subarray(0, i), Buffer.from(bad), bytes.subarray(i)]);
      }),
    },
    { weight: 1, arbitrary: text.map((json) => utf8(`\ufeff${json}`)) },
  );
}

const contentTypes = fc.oneof(
  { weight: 12, arbitrary: fc.constant<string | undefined>(JSONAPI) },
  {
    weight: 4,
    arbitrary: fc.constantFrom<string | undefined>(
      undefined,
      '',
      'application/json',
      'application/json; charset=utf-8',
      'application/json;charset=UTF-8',
      'APPLICATION/VND.API+JSON',
      `${JSONAPI}; ext="https://jsonapi.org/ext/atomic"`,
      `${JSONAPI}; profile`,
      `${JSONAPI}; charset=utf-8`,
      `${JSONAPI};;`,
      `${JSONAPI}; q=0.5`,
      'application/json; charset=utf-16',
      'text/plain',
      'text/json',
      'application/x-www-form-urlencoded',
      'multipart/form-data; boundary=x',
      '*/*',
      'application/*',
      'json',
      ';',
    ),
  },
  fc.string({ unit: printableAscii, maxLength: 40 }),
  fc.string({ unit: latin1High, minLength: 1, maxLength: 8 }),
);

const acceptHeaders = fc.oneof(
  { weight: 6, arbitrary: fc.constant<string | undefined>(undefined) },
  {
    weight: 4,
    arbitrary: fc.constantFrom<string | undefined>(
      JSONAPI,
      '*/*',
      'application/json',
      'text/html',
      'application/*',
      `${JSONAPI}; charset=utf-8`,
      `${JSONAPI}; ext="x"; profile="y"`,
      `${JSONAPI}; q=0`,
      `${JSONAPI}; version=2, text/html`,
      `${JSONAPI}; charset=utf-8, ${JSONAPI}`,
      `${JSONAPI.toUpperCase()};VERSION=1`,
      ',,,',
      ';',
      '',
    ),
  },
  fc.string({ unit: printableAscii, maxLength: 60 }),
);

/**
 * Keys fetch can send. Control characters other than tab are left out: Node's HTTP parser
 * refuses them before the application sees the request (see test/hostile-input.e2e-spec.ts).
 */
const idempotencyKeys = fc.oneof(
  { weight: 8, arbitrary: fc.constant<string | undefined>(undefined) },
  fc.string({ unit: printableAscii, minLength: 1, maxLength: 40 }),
  // Reused across cases and routes: replays, and 422s for a different body.
  fc.constantFrom<string | undefined>('fuzz-shared-1', 'fuzz-shared-2'),
  fc.constantFrom<string | undefined>('', ' ', 'a\tb', 'x'.repeat(255), 'x'.repeat(256), 'clé'),
  fc.string({ unit: latin1High, minLength: 1, maxLength: 8 }),
);

/** Percent-encodes every byte, so that any byte sequence (invalid UTF-8 too) fits in a path. */
function percentEncodeBytes(bytes: Uint8Array): string {
  return [...bytes].map((b) => `%${b.toString(16).padStart(2, '0')}`).join('');
}

/**
 * Path ids: known, unknown, upper-cased UUIDs, and garbage. Lengths stay below Node's 16 KB
 * header limit, beyond which Node answers 431 itself (see test/hostile-input.e2e-spec.ts).
 */
function pathIds(known: string[]): fc.Arbitrary<string> {
  return fc.oneof(
    { weight: 4, arbitrary: fc.constantFrom(...known) },
    { weight: 2, arbitrary: fc.constantFrom(...known).map((id) => id.toUpperCase()) },
    { weight: 2, arbitrary: fc.uuid() },
    fc.constantFrom(...known).map((id) => `${id}x`),
    fc.constantFrom(...known).map((id) => id.replace(/-/g, '')),
    fc.constantFrom(...known).map((id) => `{${id}}`),
    fc.constantFrom(
      '',
      '%',
      '%zz',
      '%%',
      '%00',
      '%0A',
      '%2F',
      '%2e%2e',
      '..',
      'null',
      'undefined',
      '-1',
      '1e3',
      '__proto__',
      'constructor',
      ';',
      'a;b=c',
      '%u0041',
      '%ud800',
    ),
    fc.string({ unit: 'binary', maxLength: 20 }).map((s) => percentEncodeBytes(Buffer.from(s))),
    fc.uint8Array({ minLength: 1, maxLength: 20 }).map(percentEncodeBytes),
    fc.string({ unit: printableAscii, maxLength: 30 }).map(encodeURIComponent),
    fc.integer({ min: 100, max: 8_000 }).map((n) => 'a'.repeat(n)),
  );
}

/** Characters query strings are made of, with the separators and brackets JSON:API gives meaning. */
const queryUnits = fc.constantFrom(...'aeiflnpqrstdu_-[]=,&.%5BD+'.split(''));

/**
 * Query strings: ignored implementation names, the honoured `include` and `fields[TYPE]` (valid
 * and not), what JSON:API reserves and these endpoints refuse, malformed names, and noise.
 */
const queries = fc.oneof(
  { weight: 8, arbitrary: fc.constant('') },
  fc.constantFrom(
    '?',
    '?include=user',
    '?a[b]=c',
    '?%zz',
    '?fields[purchases]=quantity&&&',
    '?include=ticket_option',
    '?include=',
    '?include=ticket_option,reservation',
    '?fields[ticket_options]=name,allocation',
    '?fields[purchases]=',
    '?fields%5Bpurchases%5D=user&debugMode=1',
    '?sort=-id&page[size]=1&filter[x]=y',
    '?debugMode=1&x-trace=a&_=1',
    '?fields=quantity',
    '?fields[',
    '?fields[purchases][x]=quantity',
    '?include=ticket_option&include=ticket_option',
  ),
  fc.string({ unit: queryUnits, maxLength: 30 }).map((query) => `?${query}`),
);

/** One generated request; printed compactly when fast-check reports a counterexample. */
class FuzzRequest {
  constructor(
    readonly method: 'GET' | 'POST',
    readonly path: string,
    readonly headers: Record<string, string>,
    readonly body?: Buffer,
  ) {}

  [fc.toStringMethod](): string {
    const clip = (s: string) => (s.length > 400 ? `${s.slice(0, 400)}… (${s.length} chars)` : s);
    const body =
      this.body === undefined
        ? ''
        : `\n  body (${this.body.length} bytes, as latin1): ${JSON.stringify(clip(this.body.toString('latin1')))}`;
    return `${this.method} ${clip(this.path)}\n  headers ${JSON.stringify(this.headers)}${body}`;
  }
}

function headersOf(
  contentType: string | undefined,
  accept: string | undefined,
  key: string | undefined,
): Record<string, string> {
  const headers: Record<string, string> = {};
  if (contentType !== undefined) headers['content-type'] = contentType;
  if (accept !== undefined) headers.accept = accept;
  if (key !== undefined) headers['idempotency-key'] = key;
  return headers;
}

function postRequests(
  paths: fc.Arbitrary<string>,
  document: fc.Arbitrary<Json>,
): fc.Arbitrary<FuzzRequest> {
  return fc
    .record({
      path: paths,
      query: queries,
      body: bodyOf(document),
      contentType: contentTypes,
      accept: acceptHeaders,
      key: idempotencyKeys,
    })
    .map(
      ({ path, query, body, contentType, accept, key }) =>
        new FuzzRequest('POST', path + query, headersOf(contentType, accept, key), body),
    );
}

function getRequests(paths: fc.Arbitrary<string>): fc.Arbitrary<FuzzRequest> {
  return fc
    .record({
      path: paths,
      query: queries,
      contentType: fc.oneof(fc.constant(undefined), contentTypes),
      accept: acceptHeaders,
      key: idempotencyKeys,
    })
    .map(
      ({ path, query, contentType, accept, key }) =>
        new FuzzRequest('GET', path + query, headersOf(contentType, accept, key)),
    );
}

// ---------------------------------------------------------------------------------------------

const SUITE = 'fuzz: hostile requests on every JSON:API route';

describe(SUITE, () => {
  let t: TestApp;
  let api: JsonApiClient;
  /** Options made here, with the allocation each was created with. */
  const fixtures = new Map<string, number>();
  /** What 201s announced: every row in the database must be one of these (or a fixture). */
  const createdOptions = new Map<string, { allocation: number }>();
  const createdPurchases = new Map<string, { ticketOptionId: string; quantity: number }>();
  let counts = { options: 0, purchases: 0 };
  let small: string;
  let soldOut: string;
  let roomy: string;
  let fixturePurchase: string;

  /** Answers seen, by route and status/code: printed at the end, to show what the fuzz reached. */
  const seen = new Map<string, Map<string, number>>();
  /** The route under test: the name of the running test, after the describe block's. */
  let route = '';
  function tally(answer: Answer): void {
    const codes = Array.isArray(answer.document?.errors)
      ? [...new Set(answer.document.errors.map((e: any) => String(e?.code)))].sort().join('+')
      : '';
    const key = `${answer.status}${codes ? ` ${codes}` : ''}`;
    const byKey = seen.get(route) ?? new Map<string, number>();
    byKey.set(key, (byKey.get(key) ?? 0) + 1);
    seen.set(route, byKey);
  }

  const settings = (offset: number): fc.Parameters<[FuzzRequest]> => ({
    seed: SEED + offset,
    numRuns: RUNS,
  });

  beforeAll(async () => {
    console.log(
      `fuzz: seed ${SEED} (+0…+4 per route), ${RUNS} runs per route; FUZZ_SEED=${SEED} reproduces`,
    );
    t = await startTestApp();
    api = new JsonApiClient(t.baseUrl);
    const create = async (name: string, allocation: number) => {
      const id = await api.createTicketOption({ name, allocation });
      fixtures.set(id, allocation);
      return id;
    };
    small = await create('Fuzz small', 5);
    soldOut = await create('Fuzz sold out', 0);
    roomy = await create('Fuzz roomy', MAX_INT32);
    const read = await create('Fuzz read', 1);
    const bought = await api.purchase(read, 1);
    fixturePurchase = bought.body.data.id;
    createdPurchases.set(fixturePurchase, { ticketOptionId: read, quantity: 1 });
    counts = await countRows();
  });
  beforeEach(() => {
    route = expect.getState().currentTestName?.slice(SUITE.length + 1) ?? '';
  });
  afterAll(async () => {
    const lines = [...seen].map(
      ([name, byKey]) =>
        `${name}\n${[...byKey]
          .sort((a, b) => b[1] - a[1])
          .map(([key, n]) => `    ${String(n).padStart(5)}  ${key}`)
          .join('\n')}`,
    );
    console.log(`fuzz: answers by route\n${lines.join('\n')}`);
    await t?.close();
  });

  async function countRows(): Promise<{ options: number; purchases: number }> {
    const result = await t.sql.query(
      `SELECT (SELECT count(*) FROM ticket_options)::int AS options,
              (SELECT count(*) FROM purchases)::int AS purchases`,
    );
    return result.rows[0];
  }

  async function send(request: FuzzRequest): Promise<Answer> {
    const response = await fetch(`${t.baseUrl}${request.path}`, {
      method: request.method,
      headers: request.headers,
      body: request.body,
    });
    return answerOf(response.status, response.headers, await response.text());
  }

  /**
   * Reads a created resource back with the query it was created with (a 201 honours the sparse
   * fieldsets a read does) and without: answers the whole resource object.
   */
  async function readBack(path: string, query: string, created: Answer): Promise<any> {
    const again = await send(new FuzzRequest('GET', `${path}${query}`, {}));
    expect(again.status).toBe(200);
    const expected = { ...created.document };
    if (expected.meta !== undefined) expected.meta = again.document.meta;
    // What was announced is what was stored (e.g. text the database would alter).
    expect(again.document).toEqual(expected);
    const whole = await send(new FuzzRequest('GET', path, {}));
    expect(whole.status).toBe(200);
    return whole.document.data;
  }

  /**
   * One case: send it, check the answer, check that the database moved exactly as the answer
   * says, read a created resource back, and check that the process still serves.
   */
  async function exercise(
    request: FuzzRequest,
    creates: 'ticket_options' | 'purchases' | 'nothing',
  ): Promise<Answer & { whole?: any }> {
    const answer = await send(request);
    tally(answer);
    assertJsonApiAnswer(answer, echoableTexts(request.path, request.headers, request.body));
    if (answer.status === 201) {
      expect(creates).not.toBe('nothing');
      expect(
        /^\s*application\/(vnd\.api\+)?json\b/i.test(request.headers['content-type'] ?? ''),
      ).toBe(true);
      // Bytes that are not UTF-8 are not JSON (RFC 8259 §8.1): never stored as U+FFFD.
      if (request.body !== undefined) expect(isUtf8(request.body)).toBe(true);
      const self = answer.document.data.links?.self;
      expect(answer.headers.get('location')).toBe(self);
    } else if (answer.status >= 200 && answer.status < 300) {
      expect(request.method).toBe('GET');
    }

    if (creates !== 'nothing') {
      const replayed = answer.headers.get('idempotent-replayed') === 'true';
      const fresh = answer.status === 201 && !replayed;
      const now = await countRows();
      expect(now).toEqual({
        options: counts.options + (fresh && creates === 'ticket_options' ? 1 : 0),
        purchases: counts.purchases + (fresh && creates === 'purchases' ? 1 : 0),
      });
      counts = now;
    }
    let whole: any;
    if (answer.status === 201) {
      const query = request.path.includes('?') ? request.path.slice(request.path.indexOf('?')) : '';
      const data = await readBack(answer.document.data.links.self, query, answer);
      whole = data;
      if (creates === 'ticket_options') {
        createdOptions.set(data.id, { allocation: data.attributes.allocation });
      } else {
        createdPurchases.set(data.id, {
          ticketOptionId: data.relationships.ticket_option.data.id,
          quantity: data.attributes.quantity,
        });
      }
    }

    const health = await fetch(`${t.baseUrl}/health/live`);
    await health.arrayBuffer();
    expect(health.status).toBe(200);
    return { ...answer, whole };
  }

  /** For a 201 from a body that parses, the document announces what the body asked for. */
  function sentAttributes(request: FuzzRequest): any {
    // A 201 means valid UTF-8 (see exercise); a leading BOM is ignored, as JSON allows; -0 is 0
    // in JSON's number model and in the database.
    const text = request.body!.toString('utf8').replace(/^\ufeff/, '');
    return JSON.parse(text, (_name, value: unknown) => (Object.is(value, -0) ? 0 : value)).data
      .attributes;
  }

  it('POST /ticket_options', async () => {
    await fc.assert(
      fc.asyncProperty(
        postRequests(fc.constant('/ticket_options'), ticketOptionDocuments),
        async (request) => {
          const answer = await exercise(request, 'ticket_options');
          if (answer.status === 201 && answer.headers.get('idempotent-replayed') !== 'true') {
            const sent = sentAttributes(request);
            expect(answer.whole.attributes).toEqual({
              name: sent.name,
              description: sent.description ?? null,
              allocation: sent.allocation,
            });
          }
        },
      ),
      settings(0),
    );
  });

  it('GET /ticket_options/:id', async () => {
    const known = [...fixtures.keys(), ...createdOptions.keys()].slice(0, 20);
    await fc.assert(
      fc.asyncProperty(
        getRequests(pathIds(known).map((id) => `/ticket_options/${id}`)),
        (request) => exercise(request, 'nothing').then(() => undefined),
      ),
      settings(1),
    );
  });

  it('POST /purchases', async () => {
    const optionIds = fc.oneof(
      { weight: 6, arbitrary: fc.constantFrom(small, soldOut, roomy) },
      fc.constantFrom(small, roomy).map((id) => id.toUpperCase()),
      fc.uuid(),
    );
    await fc.assert(
      fc.asyncProperty(
        postRequests(fc.constant('/purchases'), purchaseDocuments(optionIds, true)),
        async (request) => {
          const answer = await exercise(request, 'purchases');
          if (answer.status === 201 && answer.headers.get('idempotent-replayed') !== 'true') {
            expect(answer.whole.attributes.quantity).toBe(sentAttributes(request).quantity);
          }
        },
      ),
      settings(2),
    );
  });

  it('POST /ticket_options/:id/purchases', async () => {
    // The relationship, when present, mostly names the option of the path (else 409).
    const requests = fc
      .oneof(
        { weight: 3, arbitrary: fc.constantFrom(small, roomy) },
        pathIds([small, soldOut, roomy]),
      )
      .chain((pathId) =>
        postRequests(
          fc.constant(`/ticket_options/${pathId}/purchases`),
          purchaseDocuments(
            fc.oneof(
              { weight: 6, arbitrary: fc.constant(pathId) },
              fc.constantFrom(small, soldOut, roomy),
              fc.uuid(),
            ),
            false,
          ),
        ),
      );
    await fc.assert(
      fc.asyncProperty(requests, async (request) => {
        const answer = await exercise(request, 'purchases');
        if (answer.status === 201 && answer.headers.get('idempotent-replayed') !== 'true') {
          const pathId = request.path.split('/')[2].toLowerCase();
          expect(answer.whole.relationships.ticket_option.data.id).toBe(pathId);
          expect(answer.whole.attributes.quantity).toBe(sentAttributes(request).quantity);
        }
      }),
      settings(3),
    );
  });

  it('GET /purchases/:id', async () => {
    const known = [fixturePurchase, ...createdPurchases.keys()].slice(0, 20);
    await fc.assert(
      fc.asyncProperty(getRequests(pathIds(known).map((id) => `/purchases/${id}`)), (request) =>
        exercise(request, 'nothing').then(() => undefined),
      ),
      settings(4),
    );
  });

  it('audit: the database holds the fixtures and what 201s announced, within every allocation', async () => {
    const options = (
      await t.sql.query<{ id: string; allocation: number; purchased: number; sum: number }>(
        `SELECT o.id, o.allocation, o.purchased,
                COALESCE((SELECT sum(quantity) FROM purchases p WHERE p.ticket_option_id = o.id), 0)::bigint AS sum
           FROM ticket_options o`,
      )
    ).rows;
    const purchases = (
      await t.sql.query<{ id: string; ticket_option_id: string; quantity: number }>(
        'SELECT id, ticket_option_id, quantity FROM purchases',
      )
    ).rows;

    expect(options).toHaveLength(fixtures.size + createdOptions.size);
    for (const option of options) {
      const allocation = fixtures.get(option.id) ?? createdOptions.get(option.id)?.allocation;
      expect(option.allocation).toBe(allocation);
      // 0 <= SUM(purchases.quantity) == purchased <= allocation
      expect(Number(option.sum)).toBe(option.purchased);
      expect(option.purchased).toBeLessThanOrEqual(option.allocation);
    }
    expect(purchases).toHaveLength(createdPurchases.size);
    for (const purchase of purchases) {
      expect(createdPurchases.get(purchase.id)).toEqual({
        ticketOptionId: purchase.ticket_option_id,
        quantity: purchase.quantity,
      });
    }
    // The fuzz must reach the success paths too, or it only ever tested refusals.
    expect(createdOptions.size).toBeGreaterThan(0);
    expect(createdPurchases.size).toBeGreaterThan(1);
    console.log(
      `fuzz: ${createdOptions.size} options and ${createdPurchases.size - 1} purchases created; ` +
        `small option sold ${options.find((o) => o.id === small)?.purchased} of 5`,
    );
  });
});
