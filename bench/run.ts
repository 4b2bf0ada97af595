/**
 * `npm run bench`: throughput, latency, correctness audit and memory of the service against a
 * row-lock reference and a canned-response ceiling, all in one run on one PostgreSQL.
 *
 * Env: BENCH_DATABASE_URL (else an embedded PostgreSQL under .data/bench-postgres),
 * BENCH_DURATION_S (10), BENCH_WARMUP_S (3), BENCH_TIMEOUT_S (570: the whole run is aborted, and
 * everything it started stopped, beyond this), BENCH_NGINX=0 (skip scenario 3 without looking for
 * nginx). Service tuning variables (DB_POOL_SIZE, ACTOR_*) are passed through to the instances and
 * recorded in the report.
 */
import { randomUUID } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, platform, release, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { Pool } from 'pg';
import ts from 'typescript';
import {
  auditPurchases,
  BenchDatabase,
  createOptions,
  meanBatchSize,
  openDatabase,
  resetTables,
  waitForQuiescence,
} from './lib/database';
import { JSON_API, LoadResult, LoadSpec, purchaseBody, runLoad } from './lib/load';
import { delta, scrapeConflicts, scrapeMetric } from './lib/metrics';
import { benchNginxConfig, findOrInstallNginx, NginxLookup } from './lib/nginx';
import {
  assertPortFree,
  guardRun,
  ManagedProcess,
  rssMb,
  startProcess,
  stopAll,
  stopProcess,
  waitForHttp,
} from './lib/processes';
import { envInt, progress } from './lib/script';
import { BenchReport, RatioReport, ScenarioReport, Target, writeReports } from './lib/report';

const ROOT = resolve(__dirname, '..');
const RESULTS_DIR = join(ROOT, 'bench', 'results');
const LOG_DIR = join(ROOT, '.data', 'bench-logs');
const HOST = '127.0.0.1';
const PORTS = {
  services: [21001, 21002, 21003],
  rowLock: 21010,
  canned: 21011,
  nginx: 21020,
  postgres: 25432,
};
const CONNECTIONS = 64;
/** Large enough that no scenario sells out: the bench measures selling, not refusing. */
const HOT_ALLOCATION = 100_000_000;
const MANY_OPTIONS = 1000;
const MANY_ALLOCATION = 1_000_000;
/** Answers 404 from every server: any HTTP answer means "up". */
const PROBE_PATH = '/ticket_options/00000000-0000-4000-8000-000000000000';
const SERVICE_TUNING = /^(DB_[A-Z_]+|BODY_LIMIT_BYTES|ACTOR_[A-Z_]+)$/;
/** Scenario 7: distinct options touched once each (memory must stay bounded). */
const TOUCHED_OPTIONS = 100_000;

const DURATION_S = envInt('BENCH_DURATION_S', 10, 1, 120);
const WARMUP_S = envInt('BENCH_WARMUP_S', 3, 0, 60);
const TIMEOUT_S = envInt('BENCH_TIMEOUT_S', 570, 60, 7200);

const startedAt = Date.now();
const say = progress('bench');

// ---------------------------------------------------------------------------------------------
// Cleanup: whatever happens (error, Ctrl-C, deadline), everything started here is stopped.

let database: BenchDatabase | null = null;
let pool: Pool | null = null;
let workDir: string | null = null;
let cleanup: Promise<void> | null = null;

function cleanUp(): Promise<void> {
  cleanup ??= (async () => {
    await stopAll().catch((error: unknown) => console.error('stopping processes failed:', error));
    await pool?.end().catch(() => undefined);
    await database
      ?.stop()
      .catch((error: unknown) => console.error('stopping PostgreSQL failed:', error));
    if (workDir) rmSync(workDir, { recursive: true, force: true });
  })();
  return cleanup;
}

const deadline = guardRun({
  label: 'bench',
  timeoutVariable: 'BENCH_TIMEOUT_S',
  timeoutS: TIMEOUT_S,
  cleanUp,
});

// ---------------------------------------------------------------------------------------------
// Servers

interface Server {
  process: ManagedProcess;
  url: string;
}

async function startServer(
  name: string,
  port: number,
  args: string[],
  env: NodeJS.ProcessEnv,
): Promise<Server> {
  await assertPortFree(port);
  const managed = startProcess({
    name,
    command: process.execPath,
    args,
    env: { ...process.env, ...env, PORT: String(port), HOST },
    cwd: ROOT,
    logDir: LOG_DIR,
  });
  const url = `http://${HOST}:${port}`;
  await waitForHttp(managed, `${url}${PROBE_PATH}`);
  return { process: managed, url };
}

function startService(
  port: number,
  databaseUrl: string,
  env: NodeJS.ProcessEnv = {},
): Promise<Server> {
  return startServer(`service-${port}`, port, [join(ROOT, 'dist', 'main.js')], {
    DATABASE_URL: databaseUrl,
    LOG_LEVEL: 'warn',
    ...env,
  });
}

/**
 * The references run as plain JavaScript (transpiled here), not under ts-node: the TypeScript
 * compiler would otherwise sit in their memory and inflate the RSS they are compared on.
 */
function compileReference(name: 'row-lock' | 'canned', directory: string): string {
  const source = readFileSync(join(ROOT, 'bench', 'reference', `${name}.ts`), 'utf8');
  const { outputText } = ts.transpileModule(source, {
    fileName: `${name}.ts`,
    compilerOptions: {
      module: ts.ModuleKind.CommonJS,
      target: ts.ScriptTarget.ES2022,
      esModuleInterop: true,
    },
  });
  const file = join(directory, `${name}.js`);
  writeFileSync(file, outputText);
  return file;
}

function startReference(
  name: 'row-lock' | 'canned',
  port: number,
  env: NodeJS.ProcessEnv = {},
): Promise<Server> {
  const file = compileReference(name, workDir!);
  // The transpiled file lives in a temp dir: it finds fastify and pg through NODE_PATH.
  return startServer(name, port, [file], { ...env, NODE_PATH: join(ROOT, 'node_modules') });
}

async function createOptionViaApi(baseUrl: string, name: string): Promise<string> {
  const response = await fetch(`${baseUrl}/ticket_options`, {
    method: 'POST',
    headers: { 'content-type': JSON_API, accept: JSON_API },
    body: JSON.stringify({
      data: {
        type: 'ticket_options',
        attributes: { name, description: 'created by npm run bench', allocation: HOT_ALLOCATION },
      },
    }),
    signal: AbortSignal.timeout(10_000),
  });
  const text = await response.text();
  const id = response.status === 201 ? idOf(text) : null;
  if (!id) {
    throw new Error(`POST /ticket_options answered ${response.status}: ${text.slice(0, 300)}`);
  }
  return id;
}

function idOf(text: string): string | null {
  try {
    const id = (JSON.parse(text) as { data?: { id?: unknown } }).data?.id;
    return typeof id === 'string' ? id : null;
  } catch {
    return null;
  }
}

/** One purchase before the load: a broken target fails with its answer, not with "0/s". */
async function samplePurchase(baseUrl: string, path: string, body: string): Promise<string> {
  const response = await fetch(`${baseUrl}${path}`, {
    method: 'POST',
    headers: { 'content-type': JSON_API, accept: JSON_API },
    body,
    signal: AbortSignal.timeout(10_000),
  });
  const text = await response.text();
  const id = response.status === 201 ? idOf(text) : null;
  if (!id) throw new Error(`POST ${path} answered ${response.status}: ${text.slice(0, 300)}`);
  return id;
}

// ---------------------------------------------------------------------------------------------
// Scenarios

interface ScenarioHeader {
  id: string;
  title: string;
  target: Target;
  kind: 'purchases' | 'reads';
  instances: number;
}

const emptyFigures = {
  throughput: null,
  successes: null,
  p50Ms: null,
  p99Ms: null,
  meanMs: null,
  maxMs: null,
  non2xx: null,
  errors: null,
  timeouts: null,
  statusCounts: {},
  audit: null,
  auditNote: 'n/a',
  conflicts: null,
  meanBatch: null,
  rssMb: [],
};

function notRun(
  header: ScenarioHeader,
  status: 'skipped' | 'failed',
  reason: string,
): ScenarioReport {
  return {
    ...header,
    ...emptyFigures,
    status,
    reason,
    connections: CONNECTIONS,
    durationS: DURATION_S,
  };
}

/** Runs one scenario; a failure is recorded in the report and the bench goes on. */
async function scenario(
  header: ScenarioHeader,
  body: () => Promise<ScenarioReport>,
): Promise<ScenarioReport> {
  say(`scenario ${header.id}: ${header.title} ...`);
  try {
    const report = await body();
    say(
      `scenario ${header.id}: ${Math.round(report.throughput ?? 0)} ${header.kind}/s, ` +
        `p50 ${report.p50Ms} ms, p99 ${report.p99Ms} ms, non-2xx ${report.non2xx}, ` +
        `errors ${report.errors}, audit ${report.audit ? report.audit.summary : report.auditNote}` +
        (report.meanBatch !== null ? `, mean batch ${report.meanBatch.toFixed(1)}` : ''),
    );
    return report;
  } catch (error) {
    const reason = error instanceof Error ? error.message : String(error);
    say(`scenario ${header.id}: FAILED: ${reason}`);
    return notRun(header, 'failed', reason);
  }
}

interface PurchaseRun {
  /** Where the load goes (one or more instances, or the balancer). */
  urls: string[];
  /** The processes that serve it: RSS is read from these. */
  servers: Server[];
  /** Instances to read GET /metrics from (none for the references). */
  metricsFrom: string[];
  optionIds: string[];
  path: string | (() => string);
  /** false for the canned server: there is no database behind it. */
  audited: boolean;
  /** A fixed number of requests (no warm-up) instead of the timed run. */
  amount?: number;
}

/** The part of a scenario's report that comes straight from one autocannon run. */
function loadFigures(result: LoadResult) {
  return {
    status: 'ok' as const,
    connections: CONNECTIONS,
    durationS: result.durationS,
    throughput: result.throughput,
    successes: result.successes,
    p50Ms: result.p50Ms,
    p99Ms: result.p99Ms,
    meanMs: result.meanMs,
    maxMs: result.maxMs,
    non2xx: result.non2xx,
    errors: result.errors,
    timeouts: result.timeouts,
    statusCounts: result.statusCounts,
  };
}

async function measurePurchases(header: ScenarioHeader, run: PurchaseRun): Promise<ScenarioReport> {
  const body = purchaseBody(randomUUID());
  const pathFor = (): string => (typeof run.path === 'string' ? run.path : run.path());
  const sampleId = await samplePurchase(run.urls[0], pathFor(), body);

  const spec: LoadSpec = {
    urls: run.urls,
    connections: CONNECTIONS,
    durationS: DURATION_S,
    method: 'POST',
    path: run.path,
    body,
    successStatus: 201,
    collectIds: run.audited,
  };
  const conflictsBefore = run.metricsFrom.length ? await scrapeConflicts(run.metricsFrom) : null;
  const warmup =
    WARMUP_S > 0 && run.amount === undefined
      ? await runLoad({ ...spec, durationS: WARMUP_S })
      : null;
  const since = new Date();
  const result = await runLoad(
    run.amount === undefined ? spec : { ...spec, amount: run.amount, durationS: 600 },
  );
  const rss = run.servers.map((server) => rssMb(server.process.pid) ?? 0);

  let audit = null;
  let meanBatch = null;
  if (run.audited) {
    await waitForQuiescence(pool!, run.optionIds);
    audit = await auditPurchases(
      pool!,
      run.optionIds,
      [sampleId, ...(warmup?.ids ?? []), ...result.ids],
      (warmup?.successesWithoutId ?? 0) + result.successesWithoutId,
    );
    meanBatch = await meanBatchSize(pool!, run.optionIds, since);
  }
  const conflictsAfter = run.metricsFrom.length ? await scrapeConflicts(run.metricsFrom) : null;

  return {
    ...header,
    ...loadFigures(result),
    audit,
    auditNote: run.audited ? '' : 'n/a (no database)',
    conflicts: delta(conflictsBefore, conflictsAfter),
    meanBatch,
    rssMb: rss,
  };
}

async function measureReads(
  header: ScenarioHeader,
  server: Server,
  optionId: string,
): Promise<ScenarioReport> {
  const spec: LoadSpec = {
    urls: [server.url],
    connections: CONNECTIONS,
    durationS: DURATION_S,
    method: 'GET',
    path: `/ticket_options/${optionId}`,
    successStatus: 200,
    collectIds: false,
  };
  if (WARMUP_S > 0) await runLoad({ ...spec, durationS: WARMUP_S });
  const result = await runLoad(spec);
  return {
    ...header,
    ...loadFigures(result),
    audit: null,
    auditNote: 'n/a (reads)',
    conflicts: null,
    meanBatch: null,
    rssMb: [rssMb(server.process.pid) ?? 0],
  };
}

const randomOf = (ids: string[]) => (): string =>
  `/ticket_options/${ids[Math.floor(Math.random() * ids.length)]}/purchases`;
const hotPath = (id: string): string => `/ticket_options/${id}/purchases`;

// ---------------------------------------------------------------------------------------------

/** nginx with deploy/nginx.conf, its app1..app3 pointed at the given local ports. */
async function startNginx(binary: string, upstreamPorts: number[]): Promise<Server> {
  const configFile = join(workDir!, 'nginx.conf');
  writeFileSync(
    configFile,
    benchNginxConfig(readFileSync(join(ROOT, 'deploy', 'nginx.conf'), 'utf8'), {
      listenPort: PORTS.nginx,
      upstreamPorts,
      workDir: workDir!,
    }),
  );
  await assertPortFree(PORTS.nginx);
  const balancer = startProcess({
    name: 'nginx',
    command: binary,
    args: ['-e', 'stderr', '-p', workDir!, '-c', configFile],
    env: process.env,
    cwd: workDir!,
    logDir: LOG_DIR,
  });
  const url = `http://${HOST}:${PORTS.nginx}`;
  await waitForHttp(balancer, `${url}${PROBE_PATH}`, 15_000);
  return { process: balancer, url };
}

async function main(): Promise<void> {
  mkdirSync(LOG_DIR, { recursive: true });
  mkdirSync(RESULTS_DIR, { recursive: true });
  workDir = mkdtempSync(join(tmpdir(), 'ticket-bench-'));
  const notes: string[] = [];
  const runs = 10;
  say(
    `${CONNECTIONS} connections, ${WARMUP_S} s warm-up + ${DURATION_S} s per scenario, ` +
      `${runs} runs: about ${Math.ceil((runs * (WARMUP_S + DURATION_S + 4) + 40) / 60)} min. ` +
      `Logs in ${LOG_DIR}`,
  );
  for (const port of [...PORTS.services, PORTS.rowLock, PORTS.canned, PORTS.nginx]) {
    await assertPortFree(port);
  }

  say('database ...');
  database = await openDatabase({ root: ROOT, port: PORTS.postgres, logDir: LOG_DIR });
  const db = database;
  pool = new Pool({ connectionString: db.url, max: 2 });
  say(`database: ${db.description}`);

  // Before any load: installing nginx must not overlap a measurement.
  const nginx: NginxLookup =
    process.env.BENCH_NGINX === '0'
      ? { skipped: 'disabled by BENCH_NGINX=0' }
      : await findOrInstallNginx(say);
  if ('skipped' in nginx) say(`nginx unavailable: scenario 3 will be SKIPPED (${nginx.skipped})`);
  else if (nginx.installed)
    notes.push(`nginx was installed by the bench (apt-get): ${nginx.binary}`);

  say('service instances ...');
  // The first instance runs the migrations; the others start once the tables exist.
  const first = await startService(PORTS.services[0], db.url);
  if (db.embedded) {
    await resetTables(pool);
  } else {
    notes.push('BENCH_DATABASE_URL: existing rows were kept; every scenario uses fresh options.');
  }
  const others = await Promise.all(
    PORTS.services.slice(1).map((port) => startService(port, db.url)),
  );
  const services = [first, ...others];
  const serviceUrls = services.map((service) => service.url);

  const reports: ScenarioReport[] = [];
  const header = (
    id: string,
    title: string,
    target: Target,
    instances: number,
    kind: 'purchases' | 'reads' = 'purchases',
  ): ScenarioHeader => ({ id, title, target, kind, instances });

  const h1 = header('1', 'hot option, 1 instance', 'service', 1);
  reports.push(
    await scenario(h1, async () => {
      const option = await createOptionViaApi(first.url, 'bench hot 1');
      return measurePurchases(h1, {
        urls: [first.url],
        servers: [first],
        metricsFrom: [first.url],
        optionIds: [option],
        path: hotPath(option),
        audited: true,
      });
    }),
  );

  const h2 = header('2', 'hot option, 3 instances, spread evenly', 'service', 3);
  reports.push(
    await scenario(h2, async () => {
      const option = await createOptionViaApi(first.url, 'bench hot 2');
      return measurePurchases(h2, {
        urls: serviceUrls,
        servers: services,
        metricsFrom: serviceUrls,
        optionIds: [option],
        path: hotPath(option),
        audited: true,
      });
    }),
  );

  const h3 = header('3', 'hot option, 3 instances behind nginx (hash on path)', 'service', 3);
  if ('skipped' in nginx) {
    reports.push(notRun(h3, 'skipped', nginx.skipped));
    say(`scenario 3: SKIPPED: ${nginx.skipped}`);
  } else {
    reports.push(
      await scenario(h3, async () => {
        const balancer = await startNginx(nginx.binary, PORTS.services);
        try {
          const option = await createOptionViaApi(first.url, 'bench hot 3');
          return await measurePurchases(h3, {
            urls: [balancer.url],
            servers: services,
            metricsFrom: serviceUrls,
            optionIds: [option],
            path: hotPath(option),
            audited: true,
          });
        } finally {
          await stopProcess(balancer.process);
        }
      }),
    );
  }

  const h4a = header(
    '4a',
    `${MANY_OPTIONS.toLocaleString('en-US')} options, random, 1 instance`,
    'service',
    1,
  );
  reports.push(
    await scenario(h4a, async () => {
      const options = await createOptions(pool!, MANY_OPTIONS, MANY_ALLOCATION, 'bench many 4a');
      return measurePurchases(h4a, {
        urls: [first.url],
        servers: [first],
        metricsFrom: [first.url],
        optionIds: options,
        path: randomOf(options),
        audited: true,
      });
    }),
  );

  const h5 = header('5', 'GET /ticket_options/:id, 1 instance', 'service', 1, 'reads');
  reports.push(
    await scenario(h5, async () => {
      const option = await createOptionViaApi(first.url, 'bench read 5');
      return measureReads(h5, first, option);
    }),
  );

  // The instances are idle from here on; stopped, they neither use CPU nor hold connections.
  await Promise.all(services.map((service) => stopProcess(service.process)));

  // 2b: scenario 2 again with the plain version compare-and-set, the measurement behind the
  // default commit mode (capacity-guarded increment).
  say('service instances with ACTOR_COMMIT_MODE=cas ...');
  const casServices = await Promise.all(
    PORTS.services.map((port) => startService(port, db.url, { ACTOR_COMMIT_MODE: 'cas' })),
  );
  const h2b = header(
    '2b',
    'hot option, 3 instances, spread evenly, version CAS commits',
    'service',
    3,
  );
  reports.push(
    await scenario(h2b, async () => {
      const option = await createOptionViaApi(casServices[0].url, 'bench hot 2b');
      const urls = casServices.map((service) => service.url);
      return measurePurchases(h2b, {
        urls,
        servers: casServices,
        metricsFrom: urls,
        optionIds: [option],
        path: hotPath(option),
        audited: true,
      });
    }),
  );
  await Promise.all(casServices.map((service) => stopProcess(service.process)));

  // 7: one purchase on each of 100,000 options, in order, on a fresh instance: the registry must
  // passivate (ACTOR_MAX_LIVE, default 10,000) and memory must stay bounded.
  say('fresh service instance ...');
  const fresh = await startService(PORTS.services[0], db.url);
  const h7 = header(
    '7',
    `${TOUCHED_OPTIONS.toLocaleString('en-US')} options touched once each, 1 instance`,
    'service',
    1,
  );
  reports.push(
    await scenario(h7, async () => {
      const rssBefore = rssMb(fresh.process.pid);
      const options = await createOptions(pool!, TOUCHED_OPTIONS, 10, 'bench touched 7');
      let next = 0;
      const report = await measurePurchases(h7, {
        urls: [fresh.url],
        servers: [fresh],
        metricsFrom: [fresh.url],
        optionIds: options,
        path: () => hotPath(options[next++ % options.length]),
        audited: true,
        amount: TOUCHED_OPTIONS - 1, // the sample purchase took the first option
      });
      const live = await scrapeMetric(fresh.url, 'ticket_actors_live');
      notes.push(
        `7: after ${TOUCHED_OPTIONS.toLocaleString('en-US')} distinct options: ` +
          `${live === null ? 'live actors n/a' : `${live.toLocaleString('en-US')} live actors`} ` +
          `(bound ACTOR_MAX_LIVE, default 10,000); RSS ${rssBefore ?? '?'} MB at start, ` +
          `${report.rssMb[0]} MB after (target < 300 MB).`,
      );
      return report;
    }),
  );
  await stopProcess(fresh.process);

  say('row-lock reference ...');
  const rowLock = await startReference('row-lock', PORTS.rowLock, { DATABASE_URL: db.url });
  const h4b = header(
    '4b',
    `${MANY_OPTIONS.toLocaleString('en-US')} options, random, row-lock reference`,
    'row-lock',
    1,
  );
  reports.push(
    await scenario(h4b, async () => {
      const options = await createOptions(pool!, MANY_OPTIONS, MANY_ALLOCATION, 'bench many 4b');
      return measurePurchases(h4b, {
        urls: [rowLock.url],
        servers: [rowLock],
        metricsFrom: [],
        optionIds: options,
        path: randomOf(options),
        audited: true,
      });
    }),
  );
  const h6a = header('6a', 'hot option, row-lock reference', 'row-lock', 1);
  reports.push(
    await scenario(h6a, async () => {
      const [option] = await createOptions(pool!, 1, HOT_ALLOCATION, 'bench hot 6a');
      return measurePurchases(h6a, {
        urls: [rowLock.url],
        servers: [rowLock],
        metricsFrom: [],
        optionIds: [option],
        path: hotPath(option),
        audited: true,
      });
    }),
  );
  await stopProcess(rowLock.process);

  say('canned reference ...');
  const canned = await startReference('canned', PORTS.canned);
  const h6b = header('6b', 'canned 201, no database (HTTP ceiling)', 'canned', 1);
  reports.push(
    await scenario(h6b, () =>
      measurePurchases(h6b, {
        urls: [canned.url],
        servers: [canned],
        metricsFrom: [],
        optionIds: [],
        path: hotPath(randomUUID()),
        audited: false,
      }),
    ),
  );
  // 6c: the same canned server behind the same nginx: what the balancer hop alone costs on this
  // machine (nginx shares the 2 CPUs with everything else), to read scenario 3 against.
  const h6c = header('6c', 'canned 201 behind nginx (cost of the balancer hop)', 'canned', 1);
  if ('skipped' in nginx) {
    reports.push(notRun(h6c, 'skipped', nginx.skipped));
  } else {
    reports.push(
      await scenario(h6c, async () => {
        const balancer = await startNginx(nginx.binary, [PORTS.canned, PORTS.canned, PORTS.canned]);
        try {
          return await measurePurchases(h6c, {
            urls: [balancer.url],
            servers: [canned],
            metricsFrom: [],
            optionIds: [],
            path: hotPath(randomUUID()),
            audited: false,
          });
        } finally {
          await stopProcess(balancer.process);
        }
      }),
    );
  }
  await stopProcess(canned.process);

  // Reported in the numbering of the scenario list, not in the order they ran.
  const order = ['1', '2', '2b', '3', '4a', '4b', '5', '6a', '6b', '6c', '7'];
  reports.sort((a, b) => order.indexOf(a.id) - order.indexOf(b.id));
  const byId = new Map(reports.map((report) => [report.id, report]));
  const ratio = (label: string, numerator: string, denominator: string): RatioReport => {
    const top = byId.get(numerator);
    const bottom = byId.get(denominator);
    const value =
      top?.status === 'ok' && bottom?.status === 'ok' && top.throughput && bottom.throughput
        ? top.throughput / bottom.throughput
        : null;
    return { label, numerator, denominator, value };
  };
  const ratios = [
    ratio('service, hot option (1) / row-lock, hot option (6a)', '1', '6a'),
    ratio('3 instances spread (2) / 1 instance (1)', '2', '1'),
    ratio('3 instances spread, version CAS (2b) / 1 instance (1)', '2b', '1'),
    ratio('guarded increment (2) / version CAS (2b), 3 instances spread', '2', '2b'),
    ratio('3 instances behind nginx (3) / 1 instance (1)', '3', '1'),
    ratio('canned behind nginx (6c) / canned direct (6b): the hop alone', '6c', '6b'),
    ratio('service, 1,000 options (4a) / row-lock, 1,000 options (4b)', '4a', '4b'),
    ratio('service, hot option (1) / canned ceiling (6b)', '1', '6b'),
  ];

  notes.push(
    `The load generator, every server, nginx and PostgreSQL share the same ${cpus().length} CPUs, ` +
      'so figures are relative to each other, not to a production deployment.',
  );
  const passedThroughEnv = Object.fromEntries(
    Object.entries(process.env).filter(
      (entry): entry is [string, string] => SERVICE_TUNING.test(entry[0]) && entry[1] !== undefined,
    ),
  );
  const report: BenchReport = {
    command: 'npm run bench',
    date: new Date().toISOString(),
    node: process.version,
    cpus: cpus().length,
    cpuModel: cpus()[0]?.model.trim() ?? 'unknown',
    platform: `${platform()} ${release()}`,
    database: db.description,
    durationS: DURATION_S,
    warmupS: WARMUP_S,
    connections: CONNECTIONS,
    elapsedS: (Date.now() - startedAt) / 1000,
    passedThroughEnv,
    scenarios: reports,
    ratios,
    notes,
  };
  // The exact command, with every setting that differs from the defaults.
  report.command = [
    ...(db.embedded ? [] : ['BENCH_DATABASE_URL=…']),
    ...(DURATION_S !== 10 ? [`BENCH_DURATION_S=${DURATION_S}`] : []),
    ...(WARMUP_S !== 3 ? [`BENCH_WARMUP_S=${WARMUP_S}`] : []),
    ...Object.entries(passedThroughEnv).map(([key, value]) => `${key}=${value}`),
    'npm run bench',
  ].join(' ');
  writeReports(RESULTS_DIR, report);

  console.log('');
  console.log(readFileSync(join(RESULTS_DIR, 'latest.md'), 'utf8'));
  say(`written: bench/results/latest.md, latest.json, throughput.svg`);

  const failed = reports.filter((r) => r.status === 'failed' || (r.audit !== null && !r.audit.ok));
  if (failed.length > 0) {
    say(`FAILED scenarios or audits: ${failed.map((r) => r.id).join(', ')}`);
    process.exitCode = 1;
  }
}

void main()
  .catch((error: unknown) => {
    console.error('[bench] failed:', error instanceof Error ? error.message : error);
    process.exitCode = 1;
  })
  .finally(async () => {
    clearTimeout(deadline);
    await cleanUp();
    say('done; every process the bench started is stopped');
  });
