/**
 * `npm run bench:soak`: stability over time. 10 minutes (SOAK_DURATION_S) of steady, moderate,
 * mixed load — creates, reads, purchases over thousands of options with a few hot ones, idempotent
 * purchases with replays, refusals — on 3 instances sharing one PostgreSQL; every 10 s each
 * instance's memory and gauges are sampled, every minute latency and status counts are summed up;
 * at the end the database is audited and the memory verdict computed. Writes bench/results/soak.md,
 * soak.json and soak-rss.svg.
 *
 * Env: SOAK_DURATION_S (600, 30..3600), SOAK_RATE (requests/s; unset: SOAK_LOAD_PERCENT of a
 * capacity probe), SOAK_LOAD_PERCENT (60, 10..90), SOAK_COLD_OPTIONS (3000), SOAK_DATABASE_URL
 * (else an embedded PostgreSQL on 25433, data in .data/soak-postgres), SOAK_TIMEOUT_S (duration +
 * 900: the whole run is aborted, and everything it started stopped, beyond this). Service tuning
 * variables (DB_*, ACTOR_*) are passed through to the instances and recorded in the report.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { cpus, platform, release } from 'node:os';
import { join, resolve } from 'node:path';
import { performance } from 'node:perf_hooks';
import { Pool } from 'pg';
import {
  auditPurchases,
  BenchDatabase,
  createOptions,
  openDatabase,
  resetTables,
  waitForQuiescence,
} from './lib/database';
import { MetricSample, sampleValue, scrapeSamples } from './lib/metrics';
import {
  assertPortFree,
  guardRun,
  ManagedProcess,
  rssMb,
  sleep,
  startProcess,
  stopAll,
  waitForHttp,
} from './lib/processes';
import { envInt, progress } from './lib/script';
import { Outcome, PacedLoad, PlannedRequest } from './lib/soak-load';
import {
  IdempotencyAudit,
  InstanceSample,
  kindFigures,
  memoryVerdict,
  minuteRow,
  MinuteRow,
  Sample,
  SoakReport,
  Window,
  writeSoakReports,
} from './lib/soak-report';
import {
  COLD_ALLOCATIONS,
  HOT_SHARE,
  Kind,
  MEAN_QUANTITY,
  MIX,
  SoakWorkload,
  statusLabel,
} from './lib/soak-workload';

const ROOT = resolve(__dirname, '..');
const RESULTS_DIR = join(ROOT, 'bench', 'results');
const LOG_DIR = join(ROOT, '.data', 'soak-logs');
const HOST = '127.0.0.1';
const PORTS = { services: [21101, 21102, 21103], postgres: 25433 };
const SERVICE_TUNING = /^(DB_[A-Z_]+|BODY_LIMIT_BYTES|ACTOR_[A-Z_]+|IDEMPOTENCY_[A-Z_]+)$/;
const PROBE_PATH = '/ticket_options/00000000-0000-4000-8000-000000000000';
const SAMPLE_INTERVAL_S = 10;
const MINUTE_S = 60;
/** Requests in flight at most; a paced request beyond it is dropped and counted. */
const MAX_IN_FLIGHT = 256;
const REQUEST_TIMEOUT_MS = 10_000;
const CALIBRATION = { concurrency: 64, durationS: 15, skipS: 5 };
const HOT_OPTIONS = 3;
const HOT_ALLOCATION = 2_000_000_000;

const DURATION_S = envInt('SOAK_DURATION_S', 600, 30, 3600);
const FIXED_RATE = process.env.SOAK_RATE?.trim() ? envInt('SOAK_RATE', 0, 10, 20_000) : null;
const LOAD_PERCENT = envInt('SOAK_LOAD_PERCENT', 60, 10, 90);
const COLD_OPTIONS = envInt('SOAK_COLD_OPTIONS', 3000, 100, 100_000);
const TIMEOUT_S = envInt('SOAK_TIMEOUT_S', DURATION_S + 900, 120, 7200);

const startedAt = Date.now();
const say = progress('soak');

// ---------------------------------------------------------------------------------------------
// Cleanup: whatever happens (error, Ctrl-C, deadline), everything started here is stopped.

let database: BenchDatabase | null = null;
let pool: Pool | null = null;
let load: PacedLoad | null = null;
let cleanup: Promise<void> | null = null;

function cleanUp(): Promise<void> {
  cleanup ??= (async () => {
    load?.close();
    await stopAll().catch((error: unknown) => console.error('stopping processes failed:', error));
    await pool?.end().catch(() => undefined);
    await database
      ?.stop()
      .catch((error: unknown) => console.error('stopping PostgreSQL failed:', error));
  })();
  return cleanup;
}

const deadline = guardRun({
  label: 'soak',
  timeoutVariable: 'SOAK_TIMEOUT_S',
  timeoutS: TIMEOUT_S,
  cleanUp,
});

// ---------------------------------------------------------------------------------------------

interface Instance {
  name: string;
  process: ManagedProcess;
  url: string;
}

async function startInstance(index: number, databaseUrl: string): Promise<Instance> {
  const port = PORTS.services[index];
  await assertPortFree(port);
  const name = `instance-${index + 1}`;
  const managed = startProcess({
    name: `service-${port}`,
    command: process.execPath,
    args: [join(ROOT, 'dist', 'main.js')],
    env: { ...process.env, DATABASE_URL: databaseUrl, LOG_LEVEL: 'warn', PORT: String(port), HOST },
    cwd: ROOT,
    logDir: LOG_DIR,
  });
  const url = `http://${HOST}:${port}`;
  await waitForHttp(managed, `${url}${PROBE_PATH}`);
  return { name, process: managed, url };
}

async function post(baseUrl: string, path: string, body: unknown): Promise<string> {
  const response = await fetch(`${baseUrl}${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/vnd.api+json', accept: 'application/vnd.api+json' },
    body: JSON.stringify(body),
    signal: AbortSignal.timeout(10_000),
  });
  const text = await response.text();
  let id: unknown = null;
  try {
    id = (JSON.parse(text) as { data?: { id?: unknown } }).data?.id;
  } catch {
    // reported below
  }
  if (response.status !== 201 || typeof id !== 'string') {
    throw new Error(
      `POST ${path} on ${baseUrl} answered ${response.status}: ${text.slice(0, 300)}`,
    );
  }
  return id;
}

const createOption = (baseUrl: string, name: string, allocation: number): Promise<string> =>
  post(baseUrl, '/ticket_options', {
    data: {
      type: 'ticket_options',
      attributes: { name, description: 'created by npm run bench:soak', allocation },
    },
  });

const toMb = (bytes: number | null): number | null =>
  bytes === null ? null : Math.round((bytes / 1024 / 1024) * 10) / 10;

function instanceSample(pid: number, metrics: MetricSample[] | null): InstanceSample {
  const lag = sampleValue(metrics, 'nodejs_eventloop_lag_p99_seconds');
  return {
    rssMb: rssMb(pid),
    heapUsedMb: toMb(sampleValue(metrics, 'nodejs_heap_size_used_bytes')),
    heapTotalMb: toMb(sampleValue(metrics, 'nodejs_heap_size_total_bytes')),
    actorsLive: sampleValue(metrics, 'ticket_actors_live'),
    queueDepth: sampleValue(metrics, 'ticket_actor_queue_depth'),
    poolUsed: sampleValue(metrics, 'db_pool_connections', { state: 'used' }),
    poolFree: sampleValue(metrics, 'db_pool_connections', { state: 'free' }),
    poolPendingAcquires: sampleValue(metrics, 'db_pool_pending_acquires'),
    eventLoopLagP99Ms: lag === null ? null : Math.round(lag * 10_000) / 10,
    purchasesAccepted: sampleValue(metrics, 'ticket_purchases_accepted_total'),
    purchasesRefused: sampleValue(metrics, 'ticket_purchases_refused_total'),
    cpuSeconds: sampleValue(metrics, 'process_cpu_seconds_total'),
  };
}

async function takeSample(instances: Instance[], tS: number): Promise<Sample> {
  const scraped = await Promise.all(instances.map((instance) => scrapeSamples(instance.url)));
  return {
    tS: Math.round(tS * 10) / 10,
    instances: instances.map((instance, i) => instanceSample(instance.process.pid, scraped[i])),
    generatorRssMb: Math.round(process.memoryUsage().rss / 1024 / 1024),
    generatorCpuSeconds: (() => {
      const { user, system } = process.cpuUsage();
      return (user + system) / 1e6;
    })(),
  };
}

/** The commit, and whether src/ differs from it (the build takes the working tree). */
function revision(): string {
  try {
    const git = (...args: string[]): string =>
      execFileSync('git', args, { cwd: ROOT, encoding: 'utf8', timeout: 10_000 }).trim();
    const head = git('rev-parse', '--short', 'HEAD');
    const dirty = git('status', '--porcelain', '--', 'src');
    return dirty
      ? `${head} + uncommitted changes in src/ (${dirty.split('\n').length} files)`
      : head;
  } catch {
    return 'unknown (git unavailable)';
  }
}

/** Records one outcome into a window: status label (replays marked), latency, failures. */
function recordInto(window: Window, request: PlannedRequest, outcome: Outcome): void {
  const stats = window.of(request.kind as Kind);
  if (outcome.answer) {
    let label = statusLabel(outcome.answer);
    if (request.kind === 'idempotent' && outcome.answer.headers['idempotent-replayed'] === 'true') {
      label += ' replayed';
    }
    stats.statuses[label] = (stats.statuses[label] ?? 0) + 1;
    stats.latency.record(outcome.answer.latencyMs);
  } else if (outcome.error === 'timeout') {
    stats.timeouts++;
    stats.errors++;
  } else {
    stats.errors++;
  }
}

/** Per key: purchases with the key's own user id, and the `idempotency_keys` row. */
async function auditIdempotency(db: Pool, workload: SoakWorkload): Promise<IdempotencyAudit> {
  const outcomes = workload.keyOutcomes();
  const problems: string[] = [];
  const purchasesByUser = new Map<string, { count: number; id: string | null }>();
  const keyRows = new Map<string, { status: number | null; purchaseId: string | null }>();
  const CHUNK = 20_000;
  for (let start = 0; start < outcomes.length; start += CHUNK) {
    const chunk = outcomes.slice(start, start + CHUNK);
    const { rows } = await db.query<{ user_id: string; purchases: number; purchase_id: string }>(
      `SELECT u.user_id::text AS user_id, count(p.id)::int AS purchases, min(p.id::text) AS purchase_id
         FROM unnest($1::uuid[]) AS u(user_id)
         LEFT JOIN purchases p ON p.user_id = u.user_id
        GROUP BY u.user_id`,
      [chunk.map((outcome) => outcome.userId)],
    );
    for (const row of rows) {
      purchasesByUser.set(row.user_id, { count: row.purchases, id: row.purchase_id });
    }
    const keys = await db.query<{
      key: string;
      response_status: number | null;
      purchase_id: string | null;
    }>(
      `SELECT key, response_status, purchase_id::text AS purchase_id
         FROM idempotency_keys WHERE key = ANY($1::text[])`,
      [chunk.map((outcome) => outcome.key)],
    );
    for (const row of keys.rows) {
      keyRows.set(row.key, { status: row.response_status, purchaseId: row.purchase_id });
    }
  }
  let with201 = 0;
  let refused = 0;
  let unknown = 0;
  let maxPurchasesPerKey = 0;
  const twice: string[] = [];
  const mismatched: string[] = [];
  for (const outcome of outcomes) {
    const bought = purchasesByUser.get(outcome.userId) ?? { count: 0, id: null };
    const keyRow = keyRows.get(outcome.key);
    maxPurchasesPerKey = Math.max(maxPurchasesPerKey, bought.count);
    if (bought.count > 1) twice.push(`${outcome.key} (${bought.count} purchases)`);
    if (outcome.purchaseId !== null) {
      with201++;
      if (
        bought.count !== 1 ||
        bought.id !== outcome.purchaseId ||
        keyRow?.status !== 201 ||
        keyRow.purchaseId !== outcome.purchaseId
      ) {
        mismatched.push(
          `${outcome.key}: answered ${outcome.purchaseId}, ${bought.count} purchase(s) ${bought.id ?? ''}, ` +
            `key row ${keyRow ? `${keyRow.status} ${keyRow.purchaseId}` : 'missing'}`,
        );
      }
    } else if (outcome.refused) {
      refused++;
      if (bought.count !== 0 || keyRow?.status !== 400) {
        mismatched.push(
          `${outcome.key}: refused, ${bought.count} purchase(s), key row ${keyRow ? keyRow.status : 'missing'}`,
        );
      }
    } else {
      unknown++;
    }
  }
  if (twice.length > 0) {
    problems.push(`${twice.length} keys sold more than once (${twice.slice(0, 3).join('; ')})`);
  }
  if (mismatched.length > 0) {
    problems.push(
      `${mismatched.length} keys whose database state differs from their answers (${mismatched.slice(0, 3).join('; ')})`,
    );
  }
  return {
    ok: problems.length === 0,
    keys: outcomes.length,
    with201,
    refused,
    unknown,
    maxPurchasesPerKey,
    problems,
  };
}

// ---------------------------------------------------------------------------------------------

async function main(): Promise<void> {
  mkdirSync(LOG_DIR, { recursive: true });
  mkdirSync(RESULTS_DIR, { recursive: true });
  const notes: string[] = [];
  // Now, not at the end: what was built just before is what runs.
  const measuredRevision = revision();
  say(
    `${DURATION_S} s of soak load${FIXED_RATE ? ` at ${FIXED_RATE} requests/s` : ''} on 3 instances; ` +
      `about ${Math.ceil((DURATION_S + 90) / 60)} min in all. Logs in ${LOG_DIR}`,
  );
  for (const port of PORTS.services) await assertPortFree(port);

  say('database ...');
  database = await openDatabase({
    root: ROOT,
    port: PORTS.postgres,
    logDir: LOG_DIR,
    urlVariable: 'SOAK_DATABASE_URL',
    dataDirName: 'soak-postgres',
    database: 'soak',
  });
  const db = database;
  pool = new Pool({ connectionString: db.url, max: 2 });
  say(`database: ${db.description}`);

  say('service instances ...');
  const first = await startInstance(0, db.url);
  if (db.embedded) await resetTables(pool);
  else notes.push('SOAK_DATABASE_URL: existing rows were kept; the soak uses options of its own.');
  const instances = [
    first,
    ...(await Promise.all([1, 2].map((index) => startInstance(index, db.url)))),
  ];
  const urls = instances.map((instance) => instance.url);

  say(`options: ${HOT_OPTIONS} hot, ${COLD_OPTIONS.toLocaleString('en-US')} cold ...`);
  const workload = new SoakWorkload(instances.length);
  for (let i = 0; i < HOT_OPTIONS; i++) {
    workload.hotOptions.push(
      await createOption(urls[i % urls.length], `soak hot ${i + 1}`, HOT_ALLOCATION),
    );
  }
  const perAllocation = Math.ceil(COLD_OPTIONS / COLD_ALLOCATIONS.length);
  for (const allocation of COLD_ALLOCATIONS) {
    workload.coldOptions.push(
      ...(await createOptions(
        pool,
        perAllocation,
        allocation,
        `soak cold ${allocation}`,
        'created by npm run bench:soak',
      )),
    );
  }
  const upFront = workload.coldOptions.length;
  // One purchase per instance before any load: a broken instance fails here with its answer.
  for (const url of urls) {
    workload.purchaseIds.push(
      await post(url, `/ticket_options/${workload.hotOptions[0]}/purchases`, {
        data: {
          type: 'purchases',
          attributes: { quantity: 1 },
          relationships: {
            user: { data: { type: 'users', id: '00000000-0000-4000-8000-000000000001' } },
          },
        },
      }),
    );
  }

  load = new PacedLoad(urls, REQUEST_TIMEOUT_MS, MAX_IN_FLIGHT);

  // Capacity probe (also the warm-up): the same mix, closed loop.
  let targetRate: number;
  let capacity: number | null = null;
  let calibration: SoakReport['rate']['calibration'] = null;
  const calibrationWindow = new Window();
  if (FIXED_RATE !== null) {
    targetRate = FIXED_RATE;
  } else {
    say(
      `capacity probe: ${CALIBRATION.durationS} s closed loop, ${CALIBRATION.concurrency} in flight ...`,
    );
    const probeStart = performance.now();
    let measured = 0;
    await load.run({
      rate: null,
      durationMs: CALIBRATION.durationS * 1000,
      maxRequests: 1_000_000,
      maxInFlight: CALIBRATION.concurrency,
      next: () => workload.next(),
      onOutcome: (request, outcome) => {
        workload.record(request, outcome);
        recordInto(calibrationWindow, request, outcome);
        if (outcome.answer && performance.now() - probeStart >= CALIBRATION.skipS * 1000)
          measured++;
      },
    });
    const measuredS = CALIBRATION.durationS - CALIBRATION.skipS;
    capacity = measured / measuredS;
    targetRate = Math.max(10, Math.round((capacity * LOAD_PERCENT) / 100));
    const probeStatuses = calibrationWindow.merged([
      'purchase',
      'idempotent',
      'read-option',
      'read-purchase',
      'create',
    ]);
    calibration = {
      concurrency: CALIBRATION.concurrency,
      probeS: CALIBRATION.durationS,
      measuredS,
      statuses: probeStatuses.statuses,
    };
    say(
      `capacity ≈ ${Math.round(capacity)} answers/s → soak rate ${targetRate}/s (${LOAD_PERCENT}%)`,
    );
  }

  // The limited hot option: sized to sell out around the middle of the run.
  const purchaseShare = MIX.purchase + MIX.idempotent * 0.55;
  const limitedAllocation = Math.max(
    100,
    Math.round((targetRate * purchaseShare * HOT_SHARE * 0.25 * MEAN_QUANTITY * DURATION_S) / 2),
  );
  workload.limitedHotOption = await createOption(urls[0], 'soak hot limited', limitedAllocation);

  // The soak itself.
  say(`soak: ${DURATION_S} s at ${targetRate} requests/s ...`);
  const minutes = Math.ceil(DURATION_S / MINUTE_S);
  const windows = Array.from({ length: minutes }, () => new Window());
  const samples: Sample[] = [];
  const t0 = performance.now();
  const sinceStart = (): number => (performance.now() - t0) / 1000;
  const windowAt = (): Window =>
    windows[Math.min(minutes - 1, Math.floor(sinceStart() / MINUTE_S))];

  let soakRunning = true;
  const reported = new Set<number>();
  const reportMinute = (minute: number): void => {
    if (reported.has(minute) || minute >= minutes) return;
    reported.add(minute);
    const fromS = minute * MINUTE_S;
    const row = minuteRow(
      minute + 1,
      fromS,
      Math.min(DURATION_S, fromS + MINUTE_S),
      windows[minute],
      samples,
    );
    say(
      `minute ${row.minute}: ${Math.round(row.purchases201PerS)} purchases/s, ` +
        `p50 ${row.purchases.p50Ms} ms, p99 ${row.purchases.p99Ms} ms; ${Math.round(row.reads.perS)} reads/s, ` +
        `p99 ${row.reads.p99Ms} ms; 5xx ${row.fiveXx}, errors ${row.errors}, dropped ${row.dropped}; ` +
        `RSS ${row.rssMb.join(' / ')} MB`,
    );
  };
  const sampler = (async () => {
    // Bounded: one sample per interval until the load ends (the final one is taken after it).
    for (let k = 0; k * SAMPLE_INTERVAL_S < DURATION_S && soakRunning; k++) {
      const due = t0 + k * SAMPLE_INTERVAL_S * 1000;
      const wait = due - performance.now();
      if (wait > 0) await sleep(wait);
      if (!soakRunning) break;
      samples.push(await takeSample(instances, sinceStart()));
      if (k > 0 && (k * SAMPLE_INTERVAL_S) % MINUTE_S === 0)
        reportMinute((k * SAMPLE_INTERVAL_S) / MINUTE_S - 1);
      const dead = instances.find((instance) => instance.process.hasExited());
      if (dead) {
        notes.push(
          `${dead.name} exited during the soak (${await dead.process.exited}); log ${dead.process.logFile}`,
        );
        load?.stop();
        break;
      }
    }
  })();
  const summary = await load.run({
    rate: targetRate,
    durationMs: DURATION_S * 1000,
    maxRequests: Math.ceil(targetRate * DURATION_S * 1.05) + 100,
    maxInFlight: MAX_IN_FLIGHT,
    next: () => workload.next(),
    onOutcome: (request, outcome) => {
      workload.record(request, outcome);
      recordInto(windowAt(), request, outcome);
    },
    onDrop: () => windowAt().dropped++,
  });
  // The run's last sample, at its end (before the queues drained).
  soakRunning = false;
  await sampler;
  samples.push(await takeSample(instances, Math.min(sinceStart(), DURATION_S)));
  for (let minute = 0; minute < minutes; minute++) reportMinute(minute);
  say(
    `load done: ${summary.sent.toLocaleString('en-US')} sent, ${summary.dropped} dropped, ` +
      `${summary.abandoned} abandoned`,
  );

  // Audit.
  say('audit ...');
  const optionIds = workload.allOptions();
  await waitForQuiescence(pool, optionIds);
  const audit = await auditPurchases(
    pool,
    optionIds,
    workload.purchaseIds,
    workload.purchasesWithoutId,
  );
  const idempotencyAudit = await auditIdempotency(pool, workload);
  const finalMetrics = await Promise.all(urls.map((url) => scrapeSamples(url)));
  const accepted = finalMetrics.map((metrics) =>
    sampleValue(metrics, 'ticket_purchases_accepted_total'),
  );
  const acceptedTotal = accepted.every((value) => value !== null)
    ? accepted.reduce((sum, value) => sum + value, 0)
    : null;
  const sizes = await pool.query<{ size: string; purchases: string; keys: string }>(
    `SELECT pg_database_size(current_database())::text AS size,
            (SELECT count(*) FROM purchases)::text AS purchases,
            (SELECT count(*) FROM idempotency_keys)::text AS keys`,
  );
  say(
    `audit: ${audit.summary}; idempotency: ${idempotencyAudit.ok ? 'ok' : idempotencyAudit.problems.join('; ')}`,
  );

  // Figures.
  const minuteRows: MinuteRow[] = windows.map((window, index) =>
    minuteRow(
      index + 1,
      index * MINUTE_S,
      Math.min(DURATION_S, (index + 1) * MINUTE_S),
      window,
      samples,
    ),
  );
  const total = new Window();
  for (const window of windows) total.merge(window);
  const seconds = DURATION_S;
  const allKinds: Kind[] = ['purchase', 'idempotent', 'read-option', 'read-purchase', 'create'];
  const everything = total.merged(allKinds);
  const fiveXx = Object.entries(everything.statuses)
    .filter(([label]) => label.startsWith('5'))
    .reduce((sum, [, n]) => sum + n, 0);
  const calibrationStatuses = calibrationWindow.merged(allKinds).statuses;
  const calibration5xx = Object.entries(calibrationStatuses)
    .filter(([label]) => label.startsWith('5'))
    .reduce((sum, [, n]) => sum + n, 0);
  const names = instances.map((instance) => instance.name);
  const memory = memoryVerdict(samples, DURATION_S, names);

  const failures: string[] = [];
  if (!audit.ok) failures.push(`audit: ${audit.summary}`);
  if (!idempotencyAudit.ok)
    failures.push(`idempotency audit: ${idempotencyAudit.problems.join('; ')}`);
  if (fiveXx > 0) failures.push(`${fiveXx} answers were 5xx`);
  if (calibration5xx > 0) failures.push(`${calibration5xx} answers of the capacity probe were 5xx`);
  if (everything.errors > 0) failures.push(`${everything.errors} transport errors or timeouts`);
  if (workload.anomalies.size > 0) {
    failures.push(
      `answers outside the contract: ${[...workload.anomalies.entries()].map(([what, a]) => `${what} (${a.count})`).join(', ')}`,
    );
  }
  if (!memory.pass) {
    failures.push(
      `RSS not flat on ${memory.instances
        .filter((i) => !i.pass)
        .map((i) =>
          i.peakRatio === null || i.levelRatio === null
            ? `${i.name} (too few samples in the windows)`
            : `${i.name} (peak ratio ${i.peakRatio}, level ratio ${i.levelRatio})`,
        )
        .join(', ')}`,
    );
  }
  const exited = instances.filter((instance) => instance.process.hasExited());
  if (exited.length > 0)
    failures.push(`${exited.map((i) => i.name).join(', ')} exited during the run`);
  if (acceptedTotal !== null && acceptedTotal !== audit.rows) {
    notes.push(
      `ticket_purchases_accepted_total summed over the instances (${acceptedTotal}) differs from the purchase rows (${audit.rows}).`,
    );
  }
  if (summary.dropped > 0) {
    notes.push(
      `${summary.dropped} paced requests were not sent because ${MAX_IN_FLIGHT} were already in flight: ` +
        'the instances fell behind the rate at some point.',
    );
  }
  if (calibration) {
    notes.push(
      `Capacity probe answers (not in the tables above): ${Object.entries(calibrationStatuses)
        .map(([l, n]) => `${l}: ${n}`)
        .join(', ')}.`,
    );
  }
  if (DURATION_S < 300) {
    notes.push(
      'A run shorter than 5 minutes has few samples in the memory windows (the baseline is 10% to ' +
        '30% of the run, right after the capacity probe): its memory verdict says little.',
    );
  }
  notes.push(
    `The load generator, the 3 instances and PostgreSQL share the machine's ${cpus().length} CPUs; ` +
      'figures are relative to that machine, not a capacity plan.',
  );

  const passedThroughEnv = Object.fromEntries(
    Object.entries(process.env).filter(
      (entry): entry is [string, string] => SERVICE_TUNING.test(entry[0]) && entry[1] !== undefined,
    ),
  );
  const command = [
    ...(db.embedded ? [] : ['SOAK_DATABASE_URL=…']),
    ...(DURATION_S !== 600 ? [`SOAK_DURATION_S=${DURATION_S}`] : []),
    ...(FIXED_RATE !== null ? [`SOAK_RATE=${FIXED_RATE}`] : []),
    ...(LOAD_PERCENT !== 60 ? [`SOAK_LOAD_PERCENT=${LOAD_PERCENT}`] : []),
    ...(COLD_OPTIONS !== 3000 ? [`SOAK_COLD_OPTIONS=${COLD_OPTIONS}`] : []),
    ...Object.entries(passedThroughEnv).map(([key, value]) => `${key}=${value}`),
    'npm run bench:soak',
  ].join(' ');
  const report: SoakReport = {
    command,
    revision: measuredRevision,
    date: new Date().toISOString(),
    node: process.version,
    cpus: cpus().length,
    cpuModel: cpus()[0]?.model.trim() ?? 'unknown',
    platform: `${platform()} ${release()}`,
    database: db.description,
    durationS: DURATION_S,
    sampleIntervalS: SAMPLE_INTERVAL_S,
    instances: instances.map((instance) => ({
      name: instance.name,
      url: instance.url,
      pid: instance.process.pid,
      exited: instance.process.hasExited() ? 'exited' : null,
    })),
    rate: {
      targetPerS: targetRate,
      source:
        FIXED_RATE !== null
          ? 'SOAK_RATE'
          : `${LOAD_PERCENT}% of the ${Math.round(capacity ?? 0)} answers/s the capacity probe measured`,
      capacityPerS: capacity === null ? null : Math.round(capacity),
      calibration,
    },
    workload: {
      mix: MIX,
      hotShare: HOT_SHARE,
      hotOptions: HOT_OPTIONS,
      limitedHotAllocation: limitedAllocation,
      coldOptionsUpFront: upFront,
      coldAllocations: COLD_ALLOCATIONS,
      optionsCreatedDuringRun: workload.createdOptions.length,
    },
    load: {
      sent: summary.sent,
      dropped: summary.dropped,
      abandoned: summary.abandoned,
      achievedPerS: summary.sent / (summary.elapsedMs / 1000),
    },
    minutes: minuteRows,
    totals: {
      purchases: kindFigures(total.of('purchase'), seconds),
      idempotent: kindFigures(total.of('idempotent'), seconds),
      reads: kindFigures(total.merged(['read-option', 'read-purchase']), seconds),
      creates: kindFigures(total.of('create'), seconds),
      statuses: everything.statuses,
      fiveXx,
      errors: everything.errors,
      timeouts: everything.timeouts,
    },
    samples,
    idempotency: { ...workload.idempotency },
    anomalies: [...workload.anomalies.entries()].map(([what, a]) => ({ what, ...a })),
    audit,
    idempotencyAudit,
    counters: {
      acceptedTotal,
      purchaseRows: audit.rows,
      match: acceptedTotal === null ? null : acceptedTotal === audit.rows,
    },
    databaseAtEnd: {
      sizeMb: Math.round(Number(sizes.rows[0]?.size ?? 0) / 1024 / 1024),
      purchases: Number(sizes.rows[0]?.purchases ?? 0),
      idempotencyKeys: Number(sizes.rows[0]?.keys ?? 0),
    },
    memory,
    verdict: { pass: failures.length === 0, failures },
    passedThroughEnv,
    elapsedS: (Date.now() - startedAt) / 1000,
    notes,
  };
  writeSoakReports(RESULTS_DIR, report);
  say(
    `memory: ${memory.pass ? 'flat' : 'NOT flat'} (${memory.instances
      .map(
        (i) =>
          `${i.name} ${i.startMb} → ${i.endMb} MB, peak ratio ${i.peakRatio}, level ratio ${i.levelRatio}`,
      )
      .join('; ')})`,
  );
  say(`verdict: ${report.verdict.pass ? 'PASS' : `FAIL: ${failures.join('; ')}`}`);
  say('written: bench/results/soak.md, soak.json, soak-rss.svg');
  if (!report.verdict.pass) process.exitCode = 1;
}

void main()
  .catch((error: unknown) => {
    console.error('[soak] failed:', error instanceof Error ? error.message : error);
    process.exitCode = 1;
  })
  .finally(async () => {
    clearTimeout(deadline);
    await cleanUp();
    say('done; every process the soak started is stopped');
  });
