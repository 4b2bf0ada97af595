import { parseAccept, parseMediaType, refuseAccept, refuseRequestContentType } from './media-type';

describe('media types', () => {
  it('parses type, subtype and quoted parameters', () => {
    const media = parseMediaType('Application/VND.API+JSON; ext="a b"; Profile=x');
    expect(media?.type).toBe('application/vnd.api+json');
    expect({ ...media!.parameters }).toEqual({ ext: 'a b', profile: 'x' });
    expect(parseMediaType('not a media type')).toBeNull();
  });

  it('reads quoted strings per RFC 9110: separators and escapes inside, whitespace around', () => {
    const media = parseMediaType(
      'application/vnd.api+json ;\tprofile="https://example.com/a;b, c \\"d\\" \\\\e" ;; ext=x\t',
    );
    expect({ ...media!.parameters }).toEqual({
      profile: 'https://example.com/a;b, c "d" \\e',
      ext: 'x',
    });
  });

  it.each([
    ['no subtype', 'application'],
    ['a parameter without a value', 'application/json; charset'],
    ['whitespace around "="', 'application/json; charset = utf-8'],
    ['an unterminated quoted string', 'application/vnd.api+json; profile="a'],
    ['text after a quoted string', 'application/vnd.api+json; profile="a"b'],
    ['a list', 'application/json, text/plain'],
    ['a space inside the type', 'application/ json'],
    ['a control character', 'application/json; charset="\u0001"'],
  ])('refuses %s', (_case, value) => {
    expect(parseMediaType(value)).toBeNull();
  });

  it('splits Accept on the commas outside quoted strings', () => {
    const ranges = parseAccept(
      'text/html;q=0.9, application/vnd.api+json; profile="a,b", , */*;q=0.1, bad range',
    );
    expect(ranges.map((media) => media && [media.type, { ...media.parameters }])).toEqual([
      ['text/html', { q: '0.9' }],
      ['application/vnd.api+json', { profile: 'a,b' }],
      ['*/*', { q: '0.1' }],
      null,
    ]);
  });

  it.each([
    ['application/vnd.api+json', true],
    ['application/vnd.api+json; ext="x"', true],
    ['application/vnd.api+json; profile="https://example.com/a;b"', true],
    ['application/vnd.api+json; PROFILE="a,b"; Ext=y', true],
    ['application/vnd.api+json; charset=utf-8', false],
    ['application/vnd.api+json; profile="a;charset=utf-8"', true],
    ['application/vnd.api+json; profile="a"; charset=utf-8', false],
    ['application/vnd.api+json; profile', false],
    ['application/vnd.api+json; profile="a', false],
    ['application/json', true],
    ['application/json; charset=UTF-8', true],
    ['application/json; charset="utf-8"', true],
    ['application/json;\tcharset=utf-8', true],
    ['application/json; charset=iso-8859-1', false],
    ['text/plain', false],
    ['', false],
    [undefined, false],
  ])('request Content-Type %p accepted: %p', (header, accepted) => {
    expect(refuseRequestContentType(header) === null).toBe(accepted);
  });

  it.each([
    [undefined, true],
    ['*/*', true],
    ['application/vnd.api+json', true],
    ['application/vnd.api+json; profile="p"', true],
    ['application/vnd.api+json; q=0.5', true],
    ['application/vnd.api+json; charset=utf-8', false],
    ['application/vnd.api+json; charset=utf-8, application/vnd.api+json', true],
    ['text/html, application/vnd.api+json; version=2', false],
    ['application/vnd.api+json; profile="a, application/vnd.api+json; charset=x"', true],
    ['application/vnd.api+json; charset=x; profile="a, application/vnd.api+json"', false],
    ['application/vnd.api+json; profile="unterminated, text/html', true],
    [',,,', true],
  ])('Accept %p acceptable: %p', (header, acceptable) => {
    expect(refuseAccept(header) === null).toBe(acceptable);
  });
});
