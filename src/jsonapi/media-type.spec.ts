import { parseMediaType, refuseAccept, refuseRequestContentType } from './media-type';

describe('media types', () => {
  it('parses type, subtype and quoted parameters', () => {
    const media = parseMediaType('Application/VND.API+JSON; ext="a b"; Profile=x');
    expect(media?.type).toBe('application/vnd.api+json');
    expect([...media!.parameters]).toEqual([
      ['ext', 'a b'],
      ['profile', 'x'],
    ]);
    expect(parseMediaType('not a media type')).toBeNull();
  });

  it.each([
    ['application/vnd.api+json', true],
    ['application/vnd.api+json; ext="x"', true],
    ['application/vnd.api+json; charset=utf-8', false],
    ['application/json', true],
    ['application/json; charset=UTF-8', true],
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
    ['application/vnd.api+json; charset=utf-8', false],
    ['application/vnd.api+json; charset=utf-8, application/vnd.api+json', true],
    ['text/html, application/vnd.api+json; version=2', false],
  ])('Accept %p acceptable: %p', (header, acceptable) => {
    expect(refuseAccept(header) === null).toBe(acceptable);
  });
});
