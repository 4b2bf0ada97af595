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
  /**
   * A sequence of requests each connection sends in turn instead of one (e.g. hold, then confirm
   * that hold): each step sees the `data.id` of the previous answer.
   */
  steps?: LoadStep[];
}

export interface LoadStep {
  method: 'GET' | 'POST' | 'DELETE';
  path: (previousId: string) => string;
  body?: (previousId: string) => string;
  successStatus: number;
  /** Its successful answers' ids are acknowledged purchases (for the audit). */
  collect?: boolean;
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

export function holdDocument(userId: string) {
  const relationships = { user: { data: { type: 'users', id: userId } } };
  return { data: { type: 'reservations', attributes: { quantity: 1 }, relationships } };
}

export function confirmationDocument(reservationId: string) {
  const reservation = { data: { type: 'reservations', id: reservationId } };
  return { data: { type: 'purchases', relationships: { reservation } } };
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
  const headers = { 'content-type': JSON_API, accept: JSON_API };
  const requests = spec.steps
    ? stepRequests(spec.steps, ids)
    : [
        {
          method: spec.method,
          headers,
          body: spec.body,
          // Before every request, the first one included.
          setupRequest: <T>(r: T) => ({ ...r, path: spec.path() }),
          onResponse,
        },
      ];
  const url = spec.urls.length === 1 ? spec.urls[0] : spec.urls;
  // A fixed amount still gets a time bound: every load loop ends by itself.
  const duration = spec.amount === undefined ? spec.durationS : 600;
  const options = { url, connections: spec.connections, duration, amount: spec.amount };
  return new Promise<ReturnType<typeof figures> & { ids: string[] }>((resolve, reject) =>
    autocannon({ ...options, timeout: 10, requests }, (error, result) => {
      if (error) reject(error);
      else resolve({ ...figures(result, spec.steps ?? [spec.successStatus]), ids });
    }),
  );
}

/** autocannon's request sequence of `steps`; its context carries the previous answer's id. */
function stepRequests(steps: LoadStep[], ids: string[]) {
  return steps.map((step) => ({
    method: step.method,
    headers: { 'content-type': JSON_API, accept: JSON_API },
    setupRequest: <T>(r: T, context: Record<string, unknown>) => {
      const previous = typeof context.id === 'string' ? context.id : '';
      return { ...r, path: step.path(previous), body: step.body?.(previous) };
    },
    onResponse: (status: number, text: string, context: Record<string, unknown>) => {
      const id = idOf(text) ?? '';
      context.id = id;
      if (step.collect && status === step.successStatus) ids.push(id);
    },
  }));
}

function figures(r: Result, success: Array<number | LoadStep>) {
  const counts = Object.entries(r.statusCodeStats).map(([s, { count }]) => [s, count] as const);
  const statusCounts = Object.fromEntries(counts);
  const statuses = new Set(success.map((s) => (typeof s === 'number' ? s : s.successStatus)));
  const successes = [...statuses].reduce((sum, status) => sum + (statusCounts[status] ?? 0), 0);
  return {
    durationS: r.duration,
    successes,
    /** Every answer, whatever its status: the denominator of CPU per request. */
    completed: counts.reduce((sum, [, n]) => sum + n, 0),
    /** Successful answers per second: purchases/s or reads/s (requests/s of a sequence). */
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
