/** Closed-loop load with autocannon (the bench's scenarios), and scraping GET /metrics. */
import autocannon from 'autocannon';
import { parsePrometheus, PromSample } from '../../test/support/prometheus';

export const JSON_API = 'application/vnd.api+json';

export interface LoadSpec {
  /** One or more targets; autocannon deals connections out to them in turn (even spread). */
  urls: string[];
  connections: number;
  durationS: number;
  /** Stop after this many requests instead of after `durationS`. */
  amount?: number;
  method: 'GET' | 'POST';
  /** Called before every request (e.g. a random option). */
  path: () => string;
  body?: string;
  successStatus: number;
  /** Collect the `data.id` of every successful answer, for the audit. */
  collectIds: boolean;
}

export type LoadResult = Awaited<ReturnType<typeof runLoad>>;

export function idOf(body: string): string | null {
  try {
    const id = (JSON.parse(body) as { data?: { id?: unknown } }).data?.id;
    return typeof id === 'string' ? id : null;
  } catch {
    return null;
  }
}

export function purchaseDocument(userId: string) {
  const relationships = { user: { data: { type: 'users', id: userId } } };
  return { data: { type: 'purchases', attributes: { quantity: 1 }, relationships } };
}

type Result = Parameters<Parameters<typeof autocannon>[1]>[1];

/**
 * Resolves with the run's figures and `ids`: the `data.id` of every successful answer when
 * `collectIds` ('' for one without a readable id, an audit failure).
 */
export function runLoad(spec: LoadSpec) {
  const ids: string[] = [];
  const onResponse = (status: number, text: string) => {
    if (spec.collectIds && status === spec.successStatus) ids.push(idOf(text) ?? '');
  };
  const request = {
    method: spec.method,
    headers: { 'content-type': JSON_API, accept: JSON_API },
    body: spec.body,
    // Before every request, the first one included.
    setupRequest: <T>(r: T) => ({ ...r, path: spec.path() }),
    onResponse,
  };
  const url = spec.urls.length === 1 ? spec.urls[0] : spec.urls;
  // A fixed amount still gets a time bound: every load loop ends by itself.
  const duration = spec.amount === undefined ? spec.durationS : 600;
  const options = { url, connections: spec.connections, duration, amount: spec.amount };
  return new Promise<ReturnType<typeof figures> & { ids: string[] }>((resolve, reject) =>
    autocannon({ ...options, timeout: 10, requests: [request] }, (error, result) => {
      if (error) reject(error);
      else resolve({ ...figures(result, spec.successStatus), ids });
    }),
  );
}

function figures(r: Result, successStatus: number) {
  const counts = Object.entries(r.statusCodeStats).map(([s, { count }]) => [s, count] as const);
  const statusCounts = Object.fromEntries(counts);
  const successes = statusCounts[successStatus] ?? 0;
  return {
    durationS: r.duration,
    successes,
    /** Every answer, whatever its status: the denominator of CPU per request. */
    completed: counts.reduce((sum, [, n]) => sum + n, 0),
    /** Successful answers per second: purchases/s or reads/s. */
    throughput: r.duration > 0 ? successes / r.duration : 0,
    p50Ms: r.latency.p50,
    p99Ms: r.latency.p99,
    maxMs: r.latency.max,
    ...{ non2xx: r.non2xx, errors: r.errors, timeouts: r.timeouts, statusCounts },
  };
}

/** Every sample of one instance's GET /metrics; null when it does not answer 200. */
export async function scrape(baseUrl: string): Promise<PromSample[] | null> {
  try {
    const response = await fetch(`${baseUrl}/metrics`, { signal: AbortSignal.timeout(2000) });
    const text = await response.text();
    return response.ok ? parsePrometheus(text) : null;
  } catch {
    return null;
  }
}
