/**
 * `npm run bench:soak`: stability over time. SOAK_DURATION_S (600) of steady, moderate, mixed
 * load on 3 instances sharing one PostgreSQL: a sample of every instance every 10 s, latency and
 * answers per minute, then the audits and the memory verdict. Settings: bench/README.md.
 */
import { join, resolve } from 'node:path';
import { performance } from 'node:perf_hooks';
import { findSample, PromSample } from '../test/support/prometheus';
import { processCpuUs, treeCpuUs } from './lib/cpu';
import * as database from './lib/database';
import { envInt, Harness, rssMb, Server, sleep } from './lib/harness';
import { idOf, JSON_API, purchaseDocument, scrape } from './lib/load';
import { machine, writeResults } from './lib/report';
import { Outcome, PacedLoad, PlannedRequest } from './lib/soak-load';
import * as sr from './lib/soak-report';
import { Kind, KINDS, SoakWorkload, statusLabel, WORKLOAD } from './lib/soak-workload';

const ROOT = resolve(__dirname, '..');
const PORTS = [21101, 21102, 21103];
const [SAMPLE_S, MINUTE_S, MAX_IN_FLIGHT] = [10, 60, 256];
const PROBE = { inFlight: 64, durationS: 15, skipS: 5 };
const DURATION_S = envInt('SOAK_DURATION_S', 600, 30, 3600);
const FIXED_RATE = process.env.SOAK_RATE?.trim() ? envInt('SOAK_RATE', 0, 10, 20_000) : null;
const LOAD_PERCENT = envInt('SOAK_LOAD_PERCENT', 60, 10, 90);
const COLD_OPTIONS = envInt('SOAK_COLD_OPTIONS', 3000, 100, 100_000);
const logDir = join(ROOT, '.data', 'soak-logs');
const timeoutS = envInt('SOAK_TIMEOUT_S', DURATION_S + 900, 120, 7200);
const h = new Harness({ label: 'soak', root: ROOT, logDir, timeoutS });

let db: database.BenchDatabase;

/** POST answered 201 with an id, or fail with the answer. */
async function post(url: string, path: string, document: unknown): Promise<string> {
  const [headers, body] = [{ 'content-type': JSON_API }, JSON.stringify(document)];
  const answer = await fetch(`${url}${path}`, { method: 'POST', headers, body });
  const text = await answer.text();
  const id = answer.status === 201 ? idOf(text) : null;
  if (!id) throw new Error(`POST ${url}${path} answered ${answer.status}: ${text.slice(0, 300)}`);
  return id;
}

function createOption(url: string, name: string, allocation: number): Promise<string> {
  const attributes = { name, description: 'created by the soak', allocation };
  return post(url, '/ticket_options', { data: { type: 'ticket_options', attributes } });
}

function instanceSample(pid: number, m: PromSample[] | null) {
  const value = (name: string, state?: string) =>
    (m && findSample(m, name, state ? { state } : {})) ?? null;
  const [heap, lag] = [
    value('nodejs_heap_size_used_bytes'),
    value('nodejs_eventloop_lag_p99_seconds'),
  ];
  const cpu = processCpuUs([pid]);
  return {
    rssMb: rssMb(pid),
    heapUsedMb: heap === null ? null : Math.round(heap / 104857.6) / 10,
    actorsLive: value('ticket_actors_live'),
    accepted: value('ticket_purchases_accepted_total'),
    queueDepth: value('ticket_actor_queue_depth'),
    poolUsed: value('db_pool_connections', 'used'),
    poolPendingAcquires: value('db_pool_pending_acquires'),
    eventLoopLagP99Ms: lag === null ? null : Math.round(lag * 10_000) / 10,
    cpuS: cpu === null ? null : cpu / 1e6,
  };
}

async function takeSample(servers: Server[], tS: number) {
  const scraped = await Promise.all(servers.map((s) => scrape(s.url)));
  const { user, system } = process.cpuUsage();
  const postgres = db.postmaster ? treeCpuUs(db.postmaster) : null;
  return {
    tS: Math.round(tS * 10) / 10,
    instances: servers.map((s, i) => instanceSample(s.proc.pid, scraped[i])),
    postgresCpuS: postgres === null ? null : postgres / 1e6,
    generator: { rssMb: rssMb(process.pid), cpuS: (user + system) / 1e6 },
  };
}

/** The workload checks an answer; the window counts it (replays marked) and its latency in µs. */
function recorder(w: SoakWorkload, window: () => sr.Window, counted = () => true) {
  return (request: PlannedRequest, outcome: Outcome): void => {
    w.record(request, outcome);
    const stats = window().kinds.get(request.kind as Kind)!;
    const answer = outcome.answer;
    if (!answer) {
      stats.errors++;
      stats.timeouts += outcome.error === 'timeout' ? 1 : 0;
      return;
    }
    const replayed = answer.headers['idempotent-replayed'] === 'true' ? ' replayed' : '';
    const label = `${statusLabel(answer)}${replayed}`;
    if (counted()) stats.statuses[label] = (stats.statuses[label] ?? 0) + 1;
    stats.latency.record(Math.max(1, Math.round(answer.latencyMs * 1000)));
  };
}

/** Per key: the purchases of the key's own user, and its `idempotency_keys` row. */
async function auditIdempotency(w: SoakWorkload) {
  type Row = { user_id: string; n: number; id: string; status: number; named: string };
  const { rows } = await db.pool.query<Row>(
    `SELECT u.user_id, count(p.id)::int AS n, min(p.id::text) AS id,
            k.response_status AS status, k.purchase_id::text AS named
       FROM unnest($1::uuid[], $2::text[]) AS u(user_id, key)
       LEFT JOIN purchases p ON p.user_id = u.user_id LEFT JOIN idempotency_keys k ON k.key = u.key
      GROUP BY u.user_id, k.response_status, k.purchase_id`,
    [w.keys.map((k) => k.userId), w.keys.map((k) => k.key)],
  );
  const byUser = new Map(rows.map((row) => [row.user_id, row]));
  const wrong = w.keys.filter(({ userId, purchaseId: id, refused }) => {
    const r = byUser.get(userId)!;
    if (id !== null) return !(r.n === 1 && r.id === id && r.status === 201 && r.named === id);
    return refused ? r.n !== 0 || r.status !== 400 : r.n > 1;
  });
  const count = (test: (k: (typeof w.keys)[number]) => boolean) => w.keys.filter(test).length;
  const examples = wrong.slice(0, 3).map((k) => `${k.key} (${byUser.get(k.userId)!.n} purchases)`);
  const problems = wrong.length
    ? [`${wrong.length} keys whose rows differ: ${examples.join(', ')}`]
    : [];
  return {
    ok: wrong.length === 0,
    keys: w.keys.length,
    with201: count((k) => k.purchaseId !== null),
    refused: count((k) => k.refused),
    unknown: count((k) => k.purchaseId === null && !k.refused),
    maxPurchasesPerKey: Math.max(0, ...rows.map((row) => row.n)),
    problems,
  };
}

/** Instances (the first runs the migrations), options, one purchase per instance. */
async function start(): Promise<{ servers: Server[]; w: SoakWorkload }> {
  const where = { urlVariable: 'SOAK_DATABASE_URL', port: 25433, dataDir: 'soak-postgres' };
  db = await database.openDatabase(h, { ...where, database: 'soak' });
  const env = { DATABASE_URL: db.url, LOG_LEVEL: 'warn' };
  const main = join(ROOT, 'dist', 'main.js');
  const service = (port: number) => h.node(`service-${port}`, port, main, env);
  const first = await service(PORTS[0]);
  if (db.embedded) await database.resetTables(db.pool);
  const servers = [first, ...(await Promise.all(PORTS.slice(1).map(service)))];
  const w = new SoakWorkload(servers.length);
  for (const [i, s] of servers.entries()) w.hot.push(await createOption(s.url, `hot ${i}`, 2e9));
  for (const allocation of WORKLOAD.coldAllocations) {
    const n = Math.ceil(COLD_OPTIONS / WORKLOAD.coldAllocations.length);
    w.cold.push(...(await database.createOptions(db.pool, n, allocation, `cold ${allocation}`)));
  }
  // Before any load: a broken instance fails here with its answer.
  const purchase = purchaseDocument('00000000-0000-4000-8000-000000000001');
  for (const s of servers) {
    w.purchaseIds.push(await post(s.url, `/ticket_options/${w.hot[0]}/purchases`, purchase));
  }
  return { servers, w };
}

/** The capacity probe (also the warm-up): the mix in closed loop; answers/s after its first 5 s. */
async function probe(load: PacedLoad, w: SoakWorkload): Promise<number> {
  const [begin, window] = [performance.now(), new sr.Window()];
  const counted = () => performance.now() - begin >= PROBE.skipS * 1000;
  const phase = { rate: null, durationMs: PROBE.durationS * 1000, maxInFlight: PROBE.inFlight };
  const onOutcome = recorder(w, () => window, counted);
  await load.run({ ...phase, maxRequests: 1e6, next: () => w.next(), onOutcome });
  return sr.figures(window.of(...KINDS), PROBE.durationS - PROBE.skipS).perS;
}

/** The soak itself: paced load, a sample every 10 s, a progress line every minute. */
async function soak(load: PacedLoad, w: SoakWorkload, servers: Server[], rate: number) {
  const windows = Array.from({ length: Math.ceil(DURATION_S / MINUTE_S) }, () => new sr.Window());
  const [samples, t0, notes] = [[] as Sample[], performance.now(), [] as string[]];
  const since = () => (performance.now() - t0) / 1000;
  const current = () => windows[Math.min(windows.length - 1, Math.floor(since() / MINUTE_S))];
  let running = true;
  const sampler = (async () => {
    for (let k = 0; k * SAMPLE_S < DURATION_S && running; k++) {
      await sleep(t0 + k * SAMPLE_S * 1000 - performance.now());
      if (running) samples.push(await takeSample(servers, since()));
      const minute = (k * SAMPLE_S) / MINUTE_S;
      if (k > 0 && minute % 1 === 0)
        progress(sr.minuteRow(minute, 60, windows[minute - 1], samples));
      const dead = servers.find((s) => s.proc.hasExited());
      if (dead) notes.push(`${dead.proc.name} exited during the soak; see ${dead.proc.logFile}`);
      if (dead) return load.stop();
    }
  })();
  const phase = { rate, durationMs: DURATION_S * 1000, maxInFlight: MAX_IN_FLIGHT };
  const [next, onOutcome, onDrop] = [
    () => w.next(),
    recorder(w, current),
    () => current().dropped++,
  ];
  const maxRequests = Math.ceil(rate * DURATION_S * 1.05) + 100;
  const summary = await load.run({ ...phase, maxRequests, next, onOutcome, onDrop });
  running = false;
  await sampler;
  // The run's last sample, at its end (before the queues drained).
  samples.push(await takeSample(servers, Math.min(since(), DURATION_S)));
  return { windows, samples, summary, notes };
}

function progress(m: sr.MinuteRow): void {
  const [p, r, rss] = [m.purchases, m.reads, m.rssMb.join(' / ')];
  const purchases = `${fmt(m.soldPerS)} sold/s, p50 ${p.p50Ms} ms, p99 ${p.p99Ms} ms`;
  const reads = `${fmt(r.perS)} reads/s, p99 ${r.p99Ms} ms`;
  h.say(
    `minute ${m.minute}: ${purchases}; ${reads}; 5xx ${sr.countOf(m.statuses, '5')}; RSS ${rss}`,
  );
}

const fmt = (n: number) => Math.round(n);

/** The minutes summed up, and the whole run's µs of CPU per answered request. */
function totals(windows: sr.Window[], samples: Sample[]) {
  const total = new sr.Window();
  for (const w of windows) KINDS.forEach((k) => total.kinds.get(k)!.add(w.kinds.get(k)!));
  const all = total.of(...KINDS);
  const answered = sr.figures(all, 1).requests;
  const cpu = (read: (s: Sample) => number | null) => {
    const [a, b] = [read(samples[0]), read(samples[samples.length - 1])];
    return a === null || b === null || !answered ? null : ((b - a) * 1e6) / answered;
  };
  const instances = (s: Sample) =>
    s.instances.some((i) => i.cpuS === null) ? null : s.instances.reduce((n, i) => n + i.cpuS!, 0);
  const of = (...kinds: Kind[]) => sr.figures(total.of(...kinds), DURATION_S);
  return {
    totals: {
      purchases: of('purchase'),
      idempotent: of('idempotent'),
      reads: of('read-option', 'read-purchase'),
      creates: of('create'),
    },
    ...{ fiveXx: sr.countOf(all.statuses, '5'), errors: all.errors, timeouts: all.timeouts },
    cpuUsPerRequest: { instances: cpu(instances), postgres: cpu((s) => s.postgresCpuS) },
  };
}

/** The audits, the figures, and every reason to fail (none: PASS). */
async function judge(w: SoakWorkload, servers: Server[], run: Run) {
  await database.waitForQuiescence(db.pool, w.allOptions());
  const acknowledged = [...w.purchaseIds, ...Array<string>(w.purchasesWithoutId).fill('')];
  const audit = await database.auditPurchases(db.pool, w.allOptions(), acknowledged);
  const idempotencyAudit = await auditIdempotency(w);
  const after = await takeSample(servers, DURATION_S);
  const acceptedTotal = after.instances.reduce((n, i) => n + (i.accepted ?? NaN), 0);
  const figures = totals(run.windows, run.samples);
  const names = servers.map((s) => s.proc.name);
  const memory = sr.memoryVerdict(run.samples, DURATION_S, names);
  const anomalies = [...w.anomalies.entries()].map(([what, a]) => ({ what, ...a }));
  const exited = servers.filter((s) => s.proc.hasExited()).map((s) => s.proc.name);
  const ratio = (r: number | null) => r?.toFixed(3) ?? 'n/a';
  const failures = [
    audit.ok ? '' : `audit: ${audit.summary}`,
    ...idempotencyAudit.problems,
    figures.fiveXx ? `${figures.fiveXx} answers were 5xx` : '',
    figures.errors ? `${figures.errors} transport errors or timeouts` : '',
    anomalies.length
      ? `answers outside the contract: ${anomalies.map((a) => a.what).join(', ')}`
      : '',
    ...memory.instances.map((i) =>
      i.pass
        ? ''
        : `RSS not flat on ${i.name} (peak ${ratio(i.peakRatio)}, level ${ratio(i.levelRatio)})`,
    ),
    exited.length ? `${exited.join(', ')} exited during the run` : '',
  ].filter(Boolean);
  const verdict = { pass: failures.length === 0, failures };
  return { ...figures, audit, idempotencyAudit, memory, anomalies, verdict, acceptedTotal };
}

type Run = Awaited<ReturnType<typeof soak>>;
type Sample = Awaited<ReturnType<typeof takeSample>>;
export type SoakReport = ReturnType<typeof assemble>;

/** The rate: SOAK_RATE, or LOAD_PERCENT of the probe; then the limited hot option for it. */
async function calibrate(load: PacedLoad, w: SoakWorkload, servers: Server[]) {
  const capacity = FIXED_RATE === null ? await probe(load, w) : null;
  const perS = FIXED_RATE ?? Math.max(10, Math.round(((capacity ?? 0) * LOAD_PERCENT) / 100));
  const probed = `${LOAD_PERCENT}% of the ${fmt(capacity ?? 0)} answers/s a ${PROBE.durationS} s probe measured`;
  const source = FIXED_RATE ? 'SOAK_RATE' : probed;
  h.say(`soak rate ${perS}/s: ${source}`);
  // Sized to sell out around the middle of the run.
  const limited = Math.round((perS * WORKLOAD.limitedTicketsPerRequest * DURATION_S) / 2);
  w.limited = await createOption(servers[0].url, 'soak hot limited', Math.max(100, limited));
  return { perS, source, limited };
}

type Parts = { servers: Server[]; w: SoakWorkload; run: Run; limited: number };

/** The report: the machine, the figures and the verdict, the workload, every sample. */
function assemble({ servers, w, run, limited }: Parts, rate: Rate, judged: Judged) {
  const settings = ['SOAK_RATE', 'SOAK_DURATION_S'].filter((k) => process.env[k]);
  const command = [...settings.map((k) => `${k}=${process.env[k]}`), 'npm run bench:soak'];
  const seconds = (i: number) => Math.min(MINUTE_S, DURATION_S - i * MINUTE_S);
  return {
    ...machine(command.join(' '), db.description, h),
    ...judged,
    ...{ durationS: DURATION_S, rate, samples: run.samples, idempotency: w.idempotency },
    instances: servers.map((s) => ({ name: s.proc.name, url: s.url, pid: s.proc.pid })),
    workload: { ...WORKLOAD, COLD_OPTIONS, limited, createdDuringRun: w.createdDuringRun },
    load: { ...run.summary, achievedPerS: run.summary.sent / (run.summary.elapsedMs / 1000) },
    minutes: run.windows.map((x, i) => sr.minuteRow(i + 1, seconds(i), x, run.samples)),
    notes: [...run.notes, ...(DURATION_S < 300 ? [sr.SHORT_RUN] : [])],
  };
}

type Rate = Omit<Awaited<ReturnType<typeof calibrate>>, 'limited'>;
type Judged = Awaited<ReturnType<typeof judge>>;

async function main(): Promise<boolean> {
  h.say(`${DURATION_S} s of soak load on 3 instances; logs in ${logDir}`);
  const { servers, w } = await start();
  const load = new PacedLoad(
    servers.map((s) => new URL(s.url)),
    10_000,
    MAX_IN_FLIGHT,
  );
  h.onCleanup(() => load.close());
  const { limited, ...rate } = await calibrate(load, w, servers);
  const run = await soak(load, w, servers, rate.perS);
  h.say(`load done: ${run.summary.sent} sent, ${run.summary.dropped} dropped; audits ...`);
  const judged = await judge(w, servers, run);
  const report = assemble({ servers, w, run, limited }, rate, judged);
  const dir = process.env.SOAK_RESULTS_DIR?.trim() || join(ROOT, 'bench', 'results');
  const written = writeResults(dir, { 'soak.md': sr.renderSoak(report), 'soak.json': report });
  const { pass, failures } = report.verdict;
  h.say(`verdict: ${pass ? 'PASS' : `FAIL: ${failures.join('; ')}`}; in ${written.join(', ')}`);
  return pass;
}

h.run('SOAK_TIMEOUT_S', main);
