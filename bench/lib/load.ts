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

export interface LoadResult {
  durationS: number;
  successes: number;
  /** Every answer, whatever its status: the denominator of CPU per request. */
  completed: number;
  /** Successful answers per second: purchases/s or reads/s. */
  throughput: number;
  p50Ms: number;
  p99Ms: number;
  maxMs: number;
  non2xx: number;
  errors: number;
  timeouts: number;
  statusCounts: Record<string, number>;
  ids: string[];
  /** Successful answers without a readable `data.id` (an audit failure). */
  successesWithoutId: number;
}

export function idOf(body: string): string | null {
  try {
    const id = (JSON.parse(body) as { data?: { id?: unknown } }).data?.id;
    return typeof id === 'string' ? id : null;
  } catch {
    return null;
  }
}

export const purchaseBody = (userId: string): string =>
  JSON.stringify({
    data: {
      type: 'purchases',
      attributes: { quantity: 1 },
      relationships: { user: { data: { type: 'users', id: userId } } },
    },
  });

export function runLoad(spec: LoadSpec): Promise<LoadResult> {
  const ids: string[] = [];
  let successesWithoutId = 0;
  const request: autocannon.Request = {
    method: spec.method,
    headers: { 'content-type': JSON_API, accept: JSON_API },
    body: spec.body,
    // Before every request, the first one included.
    setupRequest: (copy) => ({ ...copy, path: spec.path() }),
    onResponse: (status, body) => {
      if (!spec.collectIds || status !== spec.successStatus) return;
      const id = idOf(body);
      if (id) ids.push(id);
      else successesWithoutId++;
    },
  };
  const url = spec.urls.length === 1 ? spec.urls[0] : spec.urls;
  // A fixed amount still gets a time bound: every load loop ends by itself.
  const duration = spec.amount === undefined ? spec.durationS : 600;
  const { connections, amount } = spec;
  const options = { url, connections, duration, amount, timeout: 10, requests: [request] };
  return new Promise((resolve, reject) =>
    autocannon(options, (error, r) => {
      if (error) return reject(error);
      const statusCounts = Object.fromEntries(
        Object.entries(r.statusCodeStats).map(([status, { count }]) => [status, count]),
      );
      const successes = statusCounts[spec.successStatus] ?? 0;
      const completed = Object.values(statusCounts).reduce((sum, n) => sum + n, 0);
      const { duration: durationS, non2xx, errors, timeouts, latency } = r;
      const throughput = durationS > 0 ? successes / durationS : 0;
      const [p50Ms, p99Ms, maxMs] = [latency.p50, latency.p99, latency.max];
      const counts = { durationS, successes, completed, throughput, non2xx, errors, timeouts };
      resolve({ ...counts, p50Ms, p99Ms, maxMs, statusCounts, ids, successesWithoutId });
    }),
  );
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
