import autocannon from 'autocannon';

export const JSON_API = 'application/vnd.api+json';

export interface LoadSpec {
  /** One or more targets; autocannon deals connections out to them in turn (even spread). */
  urls: string[];
  connections: number;
  durationS: number;
  /** Stop after this many requests instead of after `durationS`. */
  amount?: number;
  method: 'GET' | 'POST';
  /** A fixed path, or a function called before every request (e.g. a random option). */
  path: string | (() => string);
  body?: string;
  /** The status that counts as success (201 for purchases, 200 for reads). */
  successStatus: number;
  /** Collect the `data.id` of every successful response, for the audit. */
  collectIds: boolean;
}

export interface LoadResult {
  durationS: number;
  successes: number;
  /** Successful responses per second: purchases/s or reads/s. */
  throughput: number;
  p50Ms: number;
  p99Ms: number;
  meanMs: number;
  maxMs: number;
  non2xx: number;
  errors: number;
  timeouts: number;
  statusCounts: Record<string, number>;
  ids: string[];
  /** Successful responses whose body had no readable `data.id` (an audit failure). */
  successesWithoutId: number;
}

export function purchaseBody(userId: string): string {
  return JSON.stringify({
    data: {
      type: 'purchases',
      attributes: { quantity: 1 },
      relationships: { user: { data: { type: 'users', id: userId } } },
    },
  });
}

export function runLoad(spec: LoadSpec): Promise<LoadResult> {
  const ids: string[] = [];
  let successesWithoutId = 0;
  const request: autocannon.Request = {
    method: spec.method,
    path: typeof spec.path === 'string' ? spec.path : spec.path(),
    headers: spec.body ? { 'content-type': JSON_API, accept: JSON_API } : { accept: JSON_API },
    ...(spec.body ? { body: spec.body } : {}),
  };
  const pathFor = spec.path;
  if (typeof pathFor === 'function') {
    // autocannon hands over a fresh copy of the request each time: safe to change and return.
    request.setupRequest = (copy) => {
      copy.path = pathFor();
      return copy;
    };
  }
  if (spec.collectIds) {
    request.onResponse = (status, body) => {
      if (status !== spec.successStatus) return;
      const id = idOf(body);
      if (id) ids.push(id);
      else successesWithoutId++;
    };
  }

  return new Promise((resolve, reject) => {
    autocannon(
      {
        url: spec.urls.length === 1 ? spec.urls[0] : spec.urls,
        connections: spec.connections,
        duration: spec.durationS,
        ...(spec.amount !== undefined ? { amount: spec.amount } : {}),
        timeout: 10,
        requests: [request],
      },
      (error, result) => {
        if (error) {
          reject(error);
          return;
        }
        const statusCounts: Record<string, number> = {};
        for (const [status, { count }] of Object.entries(result.statusCodeStats)) {
          statusCounts[status] = count;
        }
        const successes = statusCounts[String(spec.successStatus)] ?? 0;
        resolve({
          durationS: result.duration,
          successes,
          throughput: result.duration > 0 ? successes / result.duration : 0,
          p50Ms: result.latency.p50,
          p99Ms: result.latency.p99,
          meanMs: result.latency.average,
          maxMs: result.latency.max,
          non2xx: result.non2xx,
          errors: result.errors,
          timeouts: result.timeouts,
          statusCounts,
          ids,
          successesWithoutId,
        });
      },
    );
  });
}

function idOf(body: string): string | null {
  try {
    const id = (JSON.parse(body) as { data?: { id?: unknown } }).data?.id;
    return typeof id === 'string' ? id : null;
  } catch {
    return null;
  }
}
