/**
 * The bench's scenarios, as data, in the order they run (the report sorts them by id);
 * bench/README.md says what each one measures and why.
 */

export type Target = 'service' | 'bare' | 'row-lock' | 'buckets' | 'redis-gate' | 'canned';

export interface Scenario {
  /** The numbering of bench/README.md and of the report. */
  id: string;
  title: string;
  target: Target;
  /** Processes of the target serving the load. */
  instances: number;
  /** direct: one process; spread: connections dealt out evenly; nginx: deploy/nginx.conf in front. */
  routing: 'direct' | 'spread' | 'nginx';
  /** Extra environment of the target's processes. */
  env?: Record<string, string>;
  /** Runs on processes started for it alone (nothing served before). */
  fresh?: boolean;
  /** Fresh options seeded for the scenario (canned: ids only, no database). */
  options: { count: number; allocation: number };
  /**
   * purchase / read: one request; hold-confirm: a hold, then its confirmation (a sale in two
   * requests); hold-mix: hold + confirm, then hold + release (two holds, one sale, per cycle).
   */
  request: 'purchase' | 'read' | 'hold-confirm' | 'hold-mix';
  /** random: any option per request; each-once: every option once, in order, then stop. */
  pick: 'random' | 'each-once';
  connections: number;
  /** Reported against this bound (RSS after the run, MB). */
  rssLimitMb?: number;
}

/** Large enough that no scenario sells out: the bench measures selling, not refusing. */
const HOT = { count: 1, allocation: 100_000_000 };
const MANY: Partial<Scenario> = { options: { count: 1000, allocation: 1_000_000 } };
const SPREAD: Partial<Scenario> = { instances: 3, routing: 'spread' };
const READS: Partial<Scenario> = { request: 'read' };
const defaults = { instances: 1, routing: 'direct', options: HOT, connections: 64 } as const;
const hot = (id: string, title: string, target: Target, extra: Partial<Scenario> = {}) =>
  ({ id, title, target, ...defaults, request: 'purchase', pick: 'random', ...extra }) as Scenario;

export const SCENARIOS: Scenario[] = [
  hot('1', 'hot option, 1 instance', 'service'),
  hot('1i', 'hot option, 1 instance, LOG_LEVEL=info (one JSON line per request)', 'service', {
    env: { LOG_LEVEL: 'info' },
  }),
  hot('2', 'hot option, 3 instances, spread evenly', 'service', SPREAD),
  hot('3', 'hot option, 3 instances behind nginx (hash on path)', 'service', {
    ...SPREAD,
    routing: 'nginx',
  }),
  hot('4a', '1,000 options, random, 1 instance', 'service', MANY),
  hot('5', 'GET /ticket_options/:id, 1 instance', 'service', READS),
  hot('2b', 'hot option, 3 instances, spread evenly, version CAS commits', 'service', {
    ...SPREAD,
    env: { ACTOR_COMMIT_MODE: 'cas' },
  }),
  hot('7', '100,000 options touched once each, 1 instance', 'service', {
    fresh: true,
    options: { count: 100_000, allocation: 10 },
    pick: 'each-once',
    rssLimitMb: 300,
  }),
  hot('8a', 'hot option, hold then confirm (2 requests per sale), 1 instance', 'service', {
    request: 'hold-confirm',
  }),
  hot('8b', '1,000 options, holds confirmed or released, 1 instance', 'service', {
    ...MANY,
    request: 'hold-mix',
  }),
  hot('6d', 'hot option, bare Fastify + pg, same design (queue per option)', 'bare'),
  hot('5b', 'GET /ticket_options/:id, bare Fastify + pg', 'bare', READS),
  hot('6a', 'hot option, row-lock reference', 'row-lock'),
  hot('4b', '1,000 options, random, row-lock reference', 'row-lock', MANY),
  hot('6e', 'hot option, bucketed counters (32 rows)', 'buckets'),
  hot('6f', 'hot option, Redis gate', 'redis-gate'),
  hot('6b', 'canned 201, no database (HTTP ceiling)', 'canned'),
  hot('6c', 'canned 201 behind nginx (cost of the balancer hop)', 'canned', { routing: 'nginx' }),
];

/** The ratios the README reports, numerator / denominator, from one run. */
export const RATIOS = (
  [
    ['service (1) / bare Fastify + pg, same design (6d): the framework', '1', '6d'],
    ['service (1) / row lock (6a)', '1', '6a'],
    ['service (1) / bucketed counters (6e)', '1', '6e'],
    ['service (1) / Redis gate (6f)', '1', '6f'],
    ['service GET (5) / bare GET (5b)', '5', '5b'],
    ['hot option, logging every request at info (1i) / at warn (1)', '1i', '1'],
    ['3 instances spread (2) / 1 instance (1)', '2', '1'],
    ['3 instances spread, version CAS (2b) / 1 instance (1)', '2b', '1'],
    ['guarded increment (2) / version CAS (2b), 3 instances spread', '2', '2b'],
    ['3 instances behind nginx (3) / 1 instance (1)', '3', '1'],
    ['canned behind nginx (6c) / canned direct (6b): the hop alone', '6c', '6b'],
    ['service, 1,000 options (4a) / row lock, 1,000 options (4b)', '4a', '4b'],
    ['service, hot option (1) / canned ceiling (6b)', '1', '6b'],
    ['hold + confirm, requests/s (8a) / direct purchases/s (1); sales/s = half of it', '8a', '1'],
  ] as const
).map(([label, numerator, denominator]) => ({ label, numerator, denominator }));

/** Consecutive scenarios with the same target, environment and freshness share processes. */
export function deployments(scenarios: Scenario[]): Scenario[][] {
  const key = (s: Scenario) => `${s.target} ${JSON.stringify(s.env)} ${s.fresh ? s.id : ''}`;
  const groups: Scenario[][] = [];
  for (const s of scenarios) {
    const last = groups[groups.length - 1];
    if (last && key(last[0]) === key(s)) last.push(s);
    else groups.push([s]);
  }
  return groups;
}

/** BENCH_SCENARIOS=1,6d,… keeps only those (smoke runs); an unknown id is an error. */
export function selectScenarios(filter = ''): Scenario[] {
  const wanted: string[] = filter.match(/[^,\s]+/g) ?? [];
  const unknown = wanted.filter((id) => !SCENARIOS.some((s) => s.id === id));
  if (unknown.length > 0) throw new Error(`BENCH_SCENARIOS: no scenario ${unknown.join(', ')}`);
  return wanted.length === 0 ? SCENARIOS : SCENARIOS.filter((s) => wanted.includes(s.id));
}
