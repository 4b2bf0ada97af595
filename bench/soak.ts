/**
 * `npm run bench:soak`: stability over time. SOAK_DURATION_S (600) of steady, moderate, mixed
 * load on 3 instances sharing one PostgreSQL: a sample of every instance every 10 s, latency and
 * answers per minute, then the audits and the memory verdict. Settings: bench/README.md.
 */
import { execFileSync } from 'node:child_process';
import { join, resolve } from 'node:path';
import { performance } from 'node:perf_hooks';
import { findSample, PromSample } from '../test/support/prometheus';
import { processCpuUs, treeCpuUs } from './lib/cpu';
import * as database from './lib/database';
import { envInt, Harness, rssMb, Server, sleep } from './lib/harness';
import { idOf, JSON_API, purchaseBody, scrape } from './lib/load';
import { machine, writeResults } from './lib/report';
import { Outcome, PacedLoad, PlannedRequest } from './lib/soak-load';
import * as sr from './lib/soak-report';
import { Kind, KINDS, SoakWorkload, statusLabel, WORKLOAD } from './lib/soak-workload';

const ROOT = resolve(__dirname, '..');
const PORTS = [21101, 21102, 21103];
const [SAMPLE_S, MINUTE_S, MAX_IN_FLIGHT, TIMEOUT_MS] = [10, 60, 256, 10_000];
const PROBE = { inFlight: 64, durationS: 15, skipS: 5 };
const DURATION_S = envInt('SOAK_DURATION_S', 600, 30, 3600);
const FIXED_RATE = process.env.SOAK_RATE?.trim() ? envInt('SOAK_RATE', 0, 10, 20_000) : null;
const LOAD_PERCENT = envInt('SOAK_LOAD_PERCENT', 60, 10, 90);
const COLD_OPTIONS = envInt('SOAK_COLD_OPTIONS', 3000, 100, 100_000);
const logDir = join(ROOT, '.data', 'soak-logs');
const timeoutS = envInt('SOAK_TIMEOUT_S', DURATION_S + 900, 120, 7200);
const h = new Harness({ label: 'soak', root: ROOT, logDir, timeoutS });

let db: database.BenchDatabase;

async function post(url: string, path: string, body: string): Promise<string> {
  const [headers, signal] = [{ 'content-type': JSON_API }, AbortSignal.timeout(10_000)];
  const response = await fetch(`${url}${path}`, { method: 'POST', headers, body, signal });
  const text = await response.text();
  const id = response.status === 201 ? idOf(text) : null;
  if (!id) throw new Error(`POST ${url}${path} answered ${response.status}: ${text.slice(0, 300)}`);
  return id;
}

function createOption(url: string, name: string, allocation: number): Promise<string> {
  const attributes = { name, description: 'created by the soak', allocation };
  return post(
    url,
    '/ticket_options',
    JSON.stringify({ data: { type: 'ticket_options', attributes } }),
  );
}

function instanceSample(pid: number, m: PromSample[] | null): sr.InstanceSample {
  const value = (name: string, labels?: Record<string, string>) =>
    (m && findSample(m, name, labels)) ?? null;
  const [heap, lag, cpu] = [
    value('nodejs_heap_size_used_bytes'),
    value('nodejs_eventloop_lag_p99_seconds'),
    processCpuUs([pid]),
  ];
  return {
    rssMb: rssMb(pid),
    heapUsedMb: heap === null ? null : Math.round(heap / 104857.6) / 10,
    actorsLive: value('ticket_actors_live'),
    queueDepth: value('ticket_actor_queue_depth'),
    poolUsed: value('db_pool_connections', { state: 'used' }),
    poolPendingAcquires: value('db_pool_pending_acquires'),
    eventLoopLagP99Ms: lag === null ? null : Math.round(lag * 10_000) / 10,
    cpuS: cpu === null ? null : cpu / 1e6,
  };
}

async function takeSample(servers: Server[], tS: number): Promise<sr.Sample> {
  const scraped = await Promise.all(servers.map((s) => scrape(s.url)));
  const [{ user, system }, postgres] = [
    process.cpuUsage(),
    db.postmaster && treeCpuUs(db.postmaster),
  ];
  return {
    tS: Math.round(tS * 10) / 10,
    instances: servers.map((s, i) => instanceSample(s.proc.pid, scraped[i])),
    postgresCpuS: postgres ? postgres / 1e6 : null,
    generator: {
      rssMb: Math.round(process.memoryUsage().rss / 1048576),
      cpuS: (user + system) / 1e6,
    },
  };
}

/** The workload checks the answer; the window counts it (replays marked), latency in µs. */
function recorder(w: SoakWorkload, window: () => sr.Window, measured = () => true) {
  return (request: PlannedRequest, outcome: Outcome): void => {
    w.record(request, outcome);
    const stats = window().kinds.get(request.kind as Kind)!;
    if (!outcome.answer) {
      stats.errors++;
      stats.timeouts += outcome.error === 'timeout' ? 1 : 0;
      return;
    }
    const replayed = outcome.answer.headers['idempotent-replayed'] === 'true' ? ' replayed' : '';
    const label = `${statusLabel(outcome.answer)}${replayed}`;
    if (measured()) stats.statuses[label] = (stats.statuses[label] ?? 0) + 1;
    stats.latency.record(Math.max(1, Math.round(outcome.answer.latencyMs * 1000)));
  };
}

/** Per key: the purchases of the key's own user, and its `idempotency_keys` row. */
async function auditIdempotency(w: SoakWorkload): Promise<sr.IdempotencyAudit> {
  type Row = {
    user_id: string;
    n: number;
    id: string | null;
    status: number | null;
    named: string | null;
  };
  const { rows } = await db.pool.query<Row>(
    `SELECT u.user_id, count(p.id)::int AS n, min(p.id::text) AS id, k.response_status AS status, k.purchase_id::text AS named
       FROM unnest($1::uuid[], $2::text[]) AS u(user_id, key) LEFT JOIN purchases p ON p.user_id = u.user_id
       LEFT JOIN idempotency_keys k ON k.key = u.key GROUP BY u.user_id, k.response_status, k.purchase_id`,
    [w.keys.map((k) => k.userId), w.keys.map((k) => k.key)],
  );
  const byUser = new Map(rows.map((row) => [row.user_id, row]));
  const wrong = w.keys.flatMap((key) => {
    const [r, id] = [byUser.get(key.userId)!, key.purchaseId];
    const sold = r.n === 1 && r.id === id && r.status === 201 && r.named === id;
    const fine = id !== null ? sold : key.refused ? r.n === 0 && r.status === 400 : r.n <= 1;
    const answered = id ?? (key.refused ? 'refused' : 'nothing');
    return fine
      ? []
      : [`${key.key}: answered ${answered}, ${r.n} purchase(s), key row ${r.status}`];
  });
  const count = (test: (k: SoakWorkload['keys'][number]) => boolean) => w.keys.filter(test).length;
  return {
    ok: wrong.length === 0,
    keys: w.keys.length,
    with201: count((k) => k.purchaseId !== null),
    refused: count((k) => k.refused),
    unknown: count((k) => k.purchaseId === null && !k.refused),
    maxPurchasesPerKey: Math.max(0, ...rows.map((row) => row.n)),
    problems: wrong.length
      ? [
          `${wrong.length} keys whose rows differ from their answers (${wrong.slice(0, 3).join('; ')})`,
        ]
      : [],
  };
}

/** Instances (the first runs the migrations), options, one purchase per instance before any load. */
async function start(): Promise<{ servers: Server[]; w: SoakWorkload; notes: string[] }> {
  const where = { urlVariable: 'SOAK_DATABASE_URL', port: 25433, dataDir: 'soak-postgres' };
  db = await database.openDatabase(h, { ...where, database: 'soak' });
  const env = { DATABASE_URL: db.url, LOG_LEVEL: 'warn' };
  const service = (port: number) =>
    h.node(`service-${port}`, port, join(ROOT, 'dist', 'main.js'), env);
  const first = await service(PORTS[0]);
  if (db.embedded) await database.resetTables(db.pool);
  const servers = [first, ...(await Promise.all(PORTS.slice(1).map(service)))];
  const w = new SoakWorkload(servers.length);
  for (let i = 0; i < WORKLOAD.hotOptions; i++)
    w.hot.push(await createOption(servers[i % 3].url, `soak hot ${i + 1}`, 2e9));
  for (const allocation of WORKLOAD.coldAllocations) {
    const n = Math.ceil(COLD_OPTIONS / WORKLOAD.coldAllocations.length);
    w.cold.push(
      ...(await database.createOptions(db.pool, n, allocation, `soak cold ${allocation}`)),
    );
  }
  const body = purchaseBody('00000000-0000-4000-8000-000000000001');
  for (const s of servers)
    w.purchaseIds.push(await post(s.url, `/ticket_options/${w.hot[0]}/purchases`, body));
  return {
    servers,
    w,
    notes: db.embedded
      ? []
      : ['SOAK_DATABASE_URL: existing rows were kept; the soak uses options of its own.'],
  };
}

/** The capacity probe (also the warm-up): the mix in closed loop; answers/s after its first 5 s. */
async function probe(load: PacedLoad, w: SoakWorkload, window: sr.Window): Promise<number> {
  const start = performance.now();
  const counted = () => performance.now() - start >= PROBE.skipS * 1000;
  const onOutcome = recorder(w, () => window, counted);
  const phase = {
    rate: null,
    durationMs: PROBE.durationS * 1000,
    maxRequests: 1e6,
    maxInFlight: PROBE.inFlight,
  };
  await load.run({ ...phase, next: () => w.next(), onOutcome });
  return sr.figures(window.of(...KINDS), PROBE.durationS - PROBE.skipS).perS;
}

/** The soak itself: paced load, a sample every 10 s, a progress line every minute. */
async function soak(
  load: PacedLoad,
  w: SoakWorkload,
  servers: Server[],
  rate: number,
  notes: string[],
) {
  const windows = Array.from({ length: Math.ceil(DURATION_S / MINUTE_S) }, () => new sr.Window());
  const [samples, t0] = [[] as sr.Sample[], performance.now()];
  const since = () => (performance.now() - t0) / 1000;
  const current = () => windows[Math.min(windows.length - 1, Math.floor(since() / MINUTE_S))];
  let running = true;
  const sampler = (async () => {
    for (let k = 0; k * SAMPLE_S < DURATION_S && running; k++) {
      await sleep(t0 + k * SAMPLE_S * 1000 - performance.now());
      if (running) samples.push(await takeSample(servers, since()));
      const minute = (k * SAMPLE_S) / MINUTE_S;
      if (k > 0 && Number.isInteger(minute))
        progress(sr.minuteRow(minute, MINUTE_S, windows[minute - 1], samples));
      const dead = servers.find((s) => s.proc.hasExited());
      if (dead) notes.push(`${dead.proc.name} exited during the soak; log ${dead.proc.logFile}`);
      if (dead) return load.stop();
    }
  })();
  const maxRequests = Math.ceil(rate * DURATION_S * 1.05) + 100;
  const phase = { rate, durationMs: DURATION_S * 1000, maxRequests, maxInFlight: MAX_IN_FLIGHT };
  const onDrop = () => current().dropped++;
  const summary = await load.run({
    ...phase,
    next: () => w.next(),
    onOutcome: recorder(w, current),
    onDrop,
  });
  running = false;
  await sampler;
  // The run's last sample, at its end (before the queues drained).
  samples.push(await takeSample(servers, Math.min(since(), DURATION_S)));
  return { windows, samples, summary };
}

function progress(m: sr.MinuteRow): void {
  const [p, r, rss] = [m.purchases, m.reads, m.rssMb.join(' / ')];
  h.say(
    `minute ${m.minute}: ${Math.round(m.soldPerS)} sold/s, p50 ${p.p50Ms} ms, p99 ${p.p99Ms} ms; ${Math.round(r.perS)} reads/s, p99 ${r.p99Ms} ms; 5xx ${sr.countOf(m.statuses, '5')}, dropped ${m.dropped}; RSS ${rss} MB`,
  );
}

function revision(): string {
  const git = (...args: string[]) =>
    execFileSync('git', args, { cwd: ROOT, encoding: 'utf8' }).trim();
  try {
    const dirty = git('status', '--porcelain', '--', 'src').split('\n').filter(Boolean).length;
    return `${git('rev-parse', '--short', 'HEAD')}${dirty ? ` + uncommitted changes in src/ (${dirty} files)` : ''}`;
  } catch {
    return 'unknown (git unavailable)';
  }
}

/** The minutes summed up, and the whole run's µs of CPU per answered request. */
function totals(windows: sr.Window[], samples: sr.Sample[]) {
  const total = new sr.Window();
  for (const w of windows) KINDS.forEach((k) => total.kinds.get(k)!.add(w.kinds.get(k)!));
  const all = total.of(...KINDS);
  const answered = sr.figures(all, 1).requests;
  const cpu = (read: (s: sr.Sample) => number | null) => {
    const [a, b] = [read(samples[0]), read(samples[samples.length - 1])];
    return a === null || b === null || !answered ? null : ((b - a) * 1e6) / answered;
  };
  const instances = (s: sr.Sample) =>
    s.instances.some((i) => i.cpuS === null) ? null : s.instances.reduce((n, i) => n + i.cpuS!, 0);
  const kinds: Record<string, Kind[]> = {
    purchases: ['purchase'],
    idempotent: ['idempotent'],
    reads: ['read-option', 'read-purchase'],
    creates: ['create'],
  };
  return {
    totals: Object.fromEntries(
      Object.entries(kinds).map(([name, of]) => [name, sr.figures(total.of(...of), DURATION_S)]),
    ),
    fiveXx: sr.countOf(all.statuses, '5'),
    errors: all.errors,
    timeouts: all.timeouts,
    cpuUsPerRequest: { instances: cpu(instances), postgres: cpu((s) => s.postgresCpuS) },
  };
}

type Soaked = Awaited<ReturnType<typeof soak>> & {
  audit: database.AuditResult;
  idempotencyAudit: sr.IdempotencyAudit;
};

/** Every reason the soak fails (none: PASS), with the figures they come from. */
function judge(
  w: SoakWorkload,
  servers: Server[],
  run: Soaked,
  probeStatuses: Record<string, number>,
) {
  const [figures, memory] = [
    totals(run.windows, run.samples),
    sr.memoryVerdict(
      run.samples,
      DURATION_S,
      servers.map((s) => s.proc.name),
    ),
  ];
  const anomalies = [...w.anomalies.entries()].map(([what, a]) => ({ what, ...a }));
  const [fiveXx, exited] = [
    figures.fiveXx + sr.countOf(probeStatuses, '5'),
    servers.filter((s) => s.proc.hasExited()),
  ];
  const failures = [
    run.audit.ok ? '' : `audit: ${run.audit.summary}`,
    run.idempotencyAudit.ok ? '' : `idempotency audit: ${run.idempotencyAudit.problems.join('; ')}`,
    fiveXx ? `${fiveXx} answers were 5xx (capacity probe included)` : '',
    figures.errors ? `${figures.errors} transport errors or timeouts` : '',
    anomalies.length
      ? `answers outside the contract: ${anomalies.map((a) => `${a.what} (${a.count})`).join(', ')}`
      : '',
    ...memory.instances.map((i) =>
      i.pass
        ? ''
        : `RSS not flat on ${i.name} (peak ratio ${fmtRatio(i.peakRatio)}, level ratio ${fmtRatio(i.levelRatio)})`,
    ),
    exited.length ? `${exited.map((s) => s.proc.name).join(', ')} exited during the run` : '',
  ].filter(Boolean);
  return { ...figures, memory, anomalies, verdict: { pass: failures.length === 0, failures } };
}

const fmtRatio = (r: number | null) => (r === null ? 'n/a' : r.toFixed(3));

async function main(): Promise<boolean> {
  const measured = revision();
  h.say(
    `${DURATION_S} s of soak load on 3 instances (about ${Math.ceil((DURATION_S + 90) / 60)} min in all); logs in ${logDir}`,
  );
  const { servers, w, notes } = await start();
  const load = new PacedLoad(
    servers.map((s) => new URL(s.url)),
    TIMEOUT_MS,
    MAX_IN_FLIGHT,
  );
  h.onCleanup(() => load.close());
  const probeWindow = new sr.Window();
  const capacity = FIXED_RATE === null ? await probe(load, w, probeWindow) : null;
  const rate = FIXED_RATE ?? Math.max(10, Math.round(((capacity ?? 0) * LOAD_PERCENT) / 100));
  h.say(
    `${capacity === null ? '' : `capacity ≈ ${Math.round(capacity)} answers/s → `}soak rate ${rate}/s`,
  );
  // Sized to sell out around the middle of the run.
  const limited = Math.max(
    100,
    Math.round((rate * WORKLOAD.limitedTicketsPerRequest * DURATION_S) / 2),
  );
  w.limited = await createOption(servers[0].url, 'soak hot limited', limited);
  const run = await soak(load, w, servers, rate, notes);
  h.say(`load done: ${run.summary.sent} sent, ${run.summary.dropped} dropped; audit ...`);
  await database.waitForQuiescence(db.pool, w.allOptions());
  const audit = await database.auditPurchases(
    db.pool,
    w.allOptions(),
    w.purchaseIds,
    w.purchasesWithoutId,
  );
  const soaked = { ...run, audit, idempotencyAudit: await auditIdempotency(w) };
  const accepted = await Promise.all(
    servers.map(
      async (s) =>
        findSample((await scrape(s.url)) ?? [], 'ticket_purchases_accepted_total') ?? NaN,
    ),
  );
  const probeStatuses = probeWindow.of(...KINDS).statuses;
  if (run.summary.dropped > 0)
    notes.push(
      `${run.summary.dropped} paced requests were not sent because ${MAX_IN_FLIGHT} were in flight: the instances fell behind.`,
    );
  if (DURATION_S < 300)
    notes.push(
      'A run shorter than 5 minutes has few samples in the memory windows: its memory verdict says little.',
    );
  const command = [
    FIXED_RATE && `SOAK_RATE=${FIXED_RATE}`,
    DURATION_S !== 600 && `SOAK_DURATION_S=${DURATION_S}`,
    'npm run bench:soak',
  ];
  const source = FIXED_RATE
    ? 'SOAK_RATE'
    : `${LOAD_PERCENT}% of the ${Math.round(capacity ?? 0)} answers/s a ${PROBE.durationS} s closed-loop probe with ${PROBE.inFlight} in flight measured`;
  const report: sr.SoakReport = {
    ...machine(command.filter(Boolean).join(' '), db.description, h.startedAt),
    ...judge(w, servers, soaked, probeStatuses),
    revision: measured,
    durationS: DURATION_S,
    instances: servers.map((s) => ({ name: s.proc.name, url: s.url, pid: s.proc.pid })),
    rate: { perS: rate, source, probeStatuses },
    workload: {
      ...WORKLOAD,
      coldOptions: COLD_OPTIONS,
      limitedHotAllocation: limited,
      createdDuringRun: w.createdDuringRun,
    },
    load: { ...run.summary, achievedPerS: run.summary.sent / (run.summary.elapsedMs / 1000) },
    minutes: run.windows.map((x, i) =>
      sr.minuteRow(i + 1, Math.min(MINUTE_S, DURATION_S - i * MINUTE_S), x, run.samples),
    ),
    samples: run.samples,
    idempotency: w.idempotency,
    audit,
    idempotencyAudit: soaked.idempotencyAudit,
    acceptedTotal: accepted.every(Number.isFinite) ? accepted.reduce((a, b) => a + b, 0) : null,
    notes,
  };
  const dir = process.env.SOAK_RESULTS_DIR?.trim() || join(ROOT, 'bench', 'results');
  const written = writeResults(dir, {
    'soak.md': sr.renderSoak(report),
    'soak.json': report,
    'soak-rss.svg': sr.rssSvg(report),
  });
  h.say(
    `verdict: ${report.verdict.pass ? 'PASS' : `FAIL: ${report.verdict.failures.join('; ')}`}; written: ${written.join(', ')}`,
  );
  return report.verdict.pass;
}

h.run('SOAK_TIMEOUT_S', main);
