export const JSONAPI_MEDIA_TYPE = 'application/vnd.api+json';

interface MediaType {
  type: string;
  parameters: Map<string, string>;
}

/** Parses `type/subtype; a=b; c="d"` (RFC 9110 §8.3.1); null when malformed. */
export function parseMediaType(value: string): MediaType | null {
  const [essence, ...rest] = value.split(';');
  const type = essence.trim().toLowerCase();
  if (!/^[a-z0-9!#$&^_.+-]+\/[a-z0-9!#$&^_.+-]+$/.test(type)) return null;
  const parameters = new Map<string, string>();
  for (const part of rest) {
    if (part.trim() === '') continue;
    const eq = part.indexOf('=');
    if (eq < 1) return null;
    const name = part.slice(0, eq).trim().toLowerCase();
    let paramValue = part.slice(eq + 1).trim();
    if (paramValue.startsWith('"') && paramValue.endsWith('"') && paramValue.length >= 2) {
      paramValue = paramValue.slice(1, -1);
    }
    parameters.set(name, paramValue);
  }
  return { type, parameters };
}

const JSONAPI_PARAMETERS = new Set(['ext', 'profile']);

/**
 * SPEC §2: a body may be `application/vnd.api+json` (only `ext`/`profile` parameters) or
 * `application/json` (only `charset=utf-8`). Returns why it is refused, or null when accepted.
 */
export function refuseRequestContentType(header: string | undefined): string | null {
  if (header === undefined || header.trim() === '') {
    return `A request body needs a Content-Type of ${JSONAPI_MEDIA_TYPE}.`;
  }
  const media = parseMediaType(header);
  if (media?.type === JSONAPI_MEDIA_TYPE) {
    const extra = [...media.parameters.keys()].filter((name) => !JSONAPI_PARAMETERS.has(name));
    return extra.length === 0
      ? null
      : `${JSONAPI_MEDIA_TYPE} accepts only the ext and profile parameters, not ${extra.join(', ')}.`;
  }
  if (media?.type === 'application/json') {
    const ok = [...media.parameters].every(
      ([name, value]) => name === 'charset' && value.toLowerCase() === 'utf-8',
    );
    return ok ? null : 'application/json accepts only the parameter charset=utf-8.';
  }
  return `Content-Type "${header}" is not supported; send ${JSONAPI_MEDIA_TYPE}.`;
}

/**
 * JSON:API 1.1: 406 when the Accept header lists the JSON:API media type only with parameters
 * other than `ext`/`profile`. Any other Accept (absent, `*\/*`, `application/json`…) is served.
 */
export function refuseAccept(header: string | undefined): string | null {
  if (!header) return null;
  const jsonApiEntries = header
    .split(',')
    .map((entry) => parseMediaType(entry))
    .filter((media): media is MediaType => media?.type === JSONAPI_MEDIA_TYPE);
  if (jsonApiEntries.length === 0) return null;
  const acceptable = jsonApiEntries.some((media) =>
    [...media.parameters.keys()].every((name) => JSONAPI_PARAMETERS.has(name) || name === 'q'),
  );
  return acceptable
    ? null
    : `Every ${JSONAPI_MEDIA_TYPE} in Accept carries parameters other than ext and profile.`;
}
