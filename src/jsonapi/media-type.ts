import { parse } from 'content-type';

export const JSONAPI_MEDIA_TYPE = 'application/vnd.api+json';

export interface MediaType {
  /** `type/subtype`, lower-cased. */
  type: string;
  /** Parameter names lower-cased, values unquoted and unescaped; the first of duplicates wins. */
  parameters: Record<string, string>;
}

const TOKEN = "[!#$%&'*+.^_`|~0-9A-Za-z-]+";
const QUOTED_STRING = '"(?:[\\t !#-\\[\\]-~\\x80-\\xff]|\\\\[\\t -~\\x80-\\xff])*"';
/**
 * RFC 9110 §8.3.1 and §5.6.6: `type/subtype *( OWS ";" OWS [ name=value ] )`, a value being a
 * token or a quoted string, with no whitespace around `=`. The content-type package extracts
 * leniently (it skips what it cannot read), so the grammar is checked here first.
 */
const WELL_FORMED = new RegExp(
  `^[ \\t]*${TOKEN}/${TOKEN}(?:[ \\t]*;[ \\t]*(?:${TOKEN}=(?:${TOKEN}|${QUOTED_STRING}))?)*[ \\t]*$`,
);

/** Parses one media type (or Accept media range) per RFC 9110; null when malformed. */
export function parseMediaType(value: string): MediaType | null {
  if (!WELL_FORMED.test(value)) return null;
  const { type, parameters } = parse(value);
  return { type, parameters };
}

/**
 * The media ranges of an `Accept` value, split on the commas that are not inside a quoted
 * string (`profile="a,b"` is one parameter); malformed and empty ranges are null.
 */
export function parseAccept(header: string): Array<MediaType | null> {
  const ranges: Array<MediaType | null> = [];
  let start = 0;
  while (start <= header.length) {
    // `comma: true` stops at the first comma outside quotes and says where (`index`).
    const end = parse(header, { comma: true, start }).index;
    const range = header.slice(start, end);
    if (range.trim() !== '') ranges.push(parseMediaType(range));
    start = end + 1;
  }
  return ranges;
}

const JSONAPI_PARAMETERS = new Set(['ext', 'profile']);

function otherParameters(media: MediaType, allowed: (name: string) => boolean): string[] {
  return Object.keys(media.parameters).filter((name) => !allowed(name));
}

/**
 * docs/design.md, Wire contract: a body may be `application/vnd.api+json` (only `ext`/`profile` parameters) or
 * `application/json` (only `charset=utf-8`). Returns why it is refused, or null when accepted.
 */
export function refuseRequestContentType(header: string | undefined): string | null {
  // What nearly every request sends: no parsing at all.
  if (header === JSONAPI_MEDIA_TYPE || header === 'application/json') return null;
  if (header === undefined || header.trim() === '') {
    return `A request body needs a Content-Type of ${JSONAPI_MEDIA_TYPE}.`;
  }
  const media = parseMediaType(header);
  if (media === null) {
    return `Content-Type "${header}" is not a valid media type (RFC 9110); send ${JSONAPI_MEDIA_TYPE}.`;
  }
  if (media.type === JSONAPI_MEDIA_TYPE) {
    const extra = otherParameters(media, (name) => JSONAPI_PARAMETERS.has(name));
    return extra.length === 0
      ? null
      : `${JSONAPI_MEDIA_TYPE} accepts only the ext and profile parameters, not ${extra.join(', ')}.`;
  }
  if (media.type === 'application/json') {
    const ok = Object.entries(media.parameters).every(
      ([name, value]) => name === 'charset' && value.toLowerCase() === 'utf-8',
    );
    return ok ? null : 'application/json accepts only the parameter charset=utf-8.';
  }
  return `Content-Type "${header}" is not supported; send ${JSONAPI_MEDIA_TYPE}.`;
}

const MENTIONS_JSONAPI = /vnd\.api\+json/i;

/**
 * JSON:API 1.1 (Content Negotiation, servers): 406 when `Accept` holds the JSON:API media type
 * and every instance of it carries a parameter other than `ext`/`profile` (`q` is the range's
 * weight, not a media type parameter). Any other Accept (absent, `*\/*`, `application/json`,
 * malformed ranges) is served: the answer is JSON:API whatever it says.
 */
export function refuseAccept(header: string | undefined): string | null {
  if (!header || header === JSONAPI_MEDIA_TYPE || !MENTIONS_JSONAPI.test(header)) return null;
  const instances = parseAccept(header).filter((media) => media?.type === JSONAPI_MEDIA_TYPE);
  if (instances.length === 0) return null;
  const acceptable = instances.some(
    (media) =>
      otherParameters(media!, (name) => JSONAPI_PARAMETERS.has(name) || name === 'q').length === 0,
  );
  return acceptable
    ? null
    : `Every ${JSONAPI_MEDIA_TYPE} in Accept carries parameters other than ext and profile.`;
}
