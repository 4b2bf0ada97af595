/**
 * `npm run bench`: the scenarios of bench/scenarios.ts in one run on one PostgreSQL: throughput,
 * latency, CPU per request, audit and memory of the service and of the references.
 * Settings: bench/README.md.
 */
import { randomUUID } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import ts from 'typescript';
import { findSample } from '../test/support/prometheus';
import { pidOf, processCpuUs, treeCpuUs, usPerRequest } from './lib/cpu';
import * as database from './lib/database';
import { assertPortFree, envInt, Harness, portOpen, rssMb, Server } from './lib/harness';
import { LoadSpec, purchaseBody, runLoad, scrape } from './lib/load';
import { lookUpNginx, NginxLookup, startNginx } from './lib/nginx';
import * as report from './lib/report';
import { deployments, RATIOS, Scenario, selectScenarios } from './scenarios';

const ROOT = resolve(__dirname, '..');
const PORTS = { services: [21001, 21002, 21003], reference: 21010, nginx: 21020, postgres: 25432 };
const DURATION_S = envInt('BENCH_DURATION_S', 10, 1, 120);
const WARMUP_S = envInt('BENCH_WARMUP_S', 3, 0, 60);
const REDIS = new URL(process.env.BENCH_REDIS_URL?.trim() || 'redis://127.0.0.1:6379');
const logDir = join(ROOT, '.data', 'bench-logs');
const timeoutS = envInt('BENCH_TIMEOUT_S', 570, 60, 7200);
const h = new Harness({ label: 'bench', root: ROOT, logDir, timeoutS });

/** A scenario that cannot run here, with the reason (nginx or Redis missing). */
class Skip extends Error {}

interface Deployment {
  servers: Server[];
  /** Sold per option when the target does not keep `ticket_options.purchased`. */
  sold?: database.SoldCounters;
  redisPid?: number | null;
  /** Why the deployment could not start: each of its scenarios reports it. */
  failure?: Error;
}

let db: database.BenchDatabase;
let workDir: string;
let nginx: Promise<NginxLookup> | null = null;

/** The references run as plain JavaScript, not under ts-node, whose compiler would inflate RSS. */
function compileReferences(): void {
  const dir = join(ROOT, 'bench', 'reference');
  const options = {
    module: ts.ModuleKind.CommonJS,
    target: ts.ScriptTarget.ES2022,
    esModuleInterop: true,
  };
  for (const file of readdirSync(dir).filter((f) => f.endsWith('.ts'))) {
    const source = readFileSync(join(dir, file), 'utf8');
    const { outputText } = ts.transpileModule(source, { compilerOptions: options });
    writeFileSync(join(workDir, file.replace(/\.ts$/, '.js')), outputText);
  }
}

function startService(port: number, env: Record<string, string> = {}): Promise<Server> {
  const vars = { DATABASE_URL: db.url, LOG_LEVEL: 'warn', ...env };
  return h.node(`service-${port}`, port, join(ROOT, 'dist', 'main.js'), vars);
}

/** Sold = allocation - meta.remaining, as the target's own GET /ticket_options/:id reports it. */
const soldViaApi =
  (url: string): database.SoldCounters =>
  async (ids) => {
    type Doc = { data: { attributes: { allocation: number } }; meta: { remaining: number } };
    const read = (id: string) =>
      fetch(`${url}/ticket_options/${id}`).then((r) => r.json() as Promise<Doc>);
    const docs = await Promise.all(ids.map(read));
    return new Map(
      ids.map((id, i) => [id, docs[i].data.attributes.allocation - docs[i].meta.remaining]),
    );
  };

async function deploy(s: Scenario, instances: number): Promise<Deployment> {
  if (s.target === 'service') {
    const ports = PORTS.services.slice(0, instances);
    return { servers: await Promise.all(ports.map((port) => startService(port, s.env))) };
  }
  const redis = s.target === 'redis-gate';
  if (redis && !(await portOpen(Number(REDIS.port || 6379), REDIS.hostname))) {
    throw new Skip(`Redis not reachable at ${REDIS.host} (BENCH_REDIS_URL)`);
  }
  const prefix = `bench:${randomUUID().slice(0, 8)}:`;
  const env = {
    NODE_PATH: join(ROOT, 'node_modules'),
    DATABASE_URL: db.url,
    REDIS_URL: REDIS.href,
    REDIS_PREFIX: prefix,
  };
  const server = await h.node(s.target, PORTS.reference, join(workDir, `${s.target}.js`), env);
  const sold = ['buckets', 'redis-gate'].includes(s.target) ? soldViaApi(server.url) : undefined;
  return { servers: [server], sold, redisPid: redis ? pidOf('redis-server') : null };
}

async function balancer(d: Deployment): Promise<Server> {
  const found = await (nginx ??= lookUpNginx(process.env.BENCH_INSTALL === '1', h.say));
  if ('skipped' in found) throw new Skip(found.skipped);
  const template = readFileSync(join(ROOT, 'deploy', 'nginx.conf'), 'utf8');
  const upstreams = [0, 1, 2].map((i) => d.servers[i % d.servers.length].port);
  return startNginx(h, found.binary, template, join(workDir, 'nginx'), PORTS.nginx, upstreams);
}

// ---------------------------------------------------------------------------------------------
// One scenario: seed, sample, warm up, measure (CPU around the window), audit.

function loadSpec(s: Scenario, urls: string[], options: string[]): LoadSpec {
  let next = 0;
  const each = s.pick === 'each-once';
  const index = () => (each ? next++ % options.length : Math.floor(Math.random() * options.length));
  const purchase = s.request === 'purchase';
  return {
    urls,
    connections: s.connections,
    durationS: DURATION_S,
    amount: each ? options.length : undefined,
    method: purchase ? 'POST' : 'GET',
    path: () => `/ticket_options/${options[index()]}${purchase ? '/purchases' : ''}`,
    body: purchase ? purchaseBody(randomUUID()) : undefined,
    successStatus: purchase ? 201 : 200,
    collectIds: purchase && s.target !== 'canned',
  };
}

/** CPU µs of each process group the scenario uses, read now. */
function cpuNow(s: Scenario, d: Deployment, servers: Server[], nginxPid?: number) {
  const { user, system } = process.cpuUsage();
  const cpu: Record<string, number | null> = {
    server: processCpuUs(servers.map((x) => x.proc.pid)),
  };
  cpu.generator = user + system;
  if (s.target !== 'canned') cpu.postgres = db.postmaster ? treeCpuUs(db.postmaster) : null;
  if (nginxPid) cpu.nginx = treeCpuUs(nginxPid);
  if (d.redisPid) cpu.redis = processCpuUs([d.redisPid]);
  return cpu;
}

/** Version conflicts and live actors, summed over the instances; null for the references. */
async function gauges(s: Scenario, servers: Server[]) {
  const on = s.target === 'service' ? await Promise.all(servers.map((x) => scrape(x.url))) : [null];
  const sum = (name: string) =>
    on.every((m) => m && findSample(m, name) !== undefined)
      ? on.reduce((n, m) => n + findSample(m!, name)!, 0)
      : null;
  return {
    conflicts: sum('ticket_actor_version_conflicts_total'),
    actorsLive: sum('ticket_actors_live'),
  };
}

/** Warm-up, then the measured window with CPU read around it, then the audit. */
async function measure(
  s: Scenario,
  d: Deployment,
  front: Server | null,
): Promise<report.ScenarioReport> {
  const servers = d.servers.slice(0, s.instances);
  const urls = front ? [front.url] : servers.map((x) => x.url);
  const { count, allocation } = s.options;
  const seeded =
    s.target === 'canned'
      ? null
      : await database.createOptions(db.pool, count, allocation, `bench ${s.id}`);
  const spec = loadSpec(s, urls, seeded ?? [randomUUID()]);
  const rssStartMb = servers.map((x) => rssMb(x.proc.pid) ?? 0);
  const warmup =
    spec.amount === undefined && WARMUP_S > 0
      ? await runLoad({ ...spec, durationS: WARMUP_S })
      : null;
  // A broken target fails here with its answers, not with "0/s".
  if (warmup?.successes === 0)
    throw new Error(`warm-up answers: ${JSON.stringify(warmup.statusCounts)}`);
  const [before, since] = [
    { ...(await gauges(s, servers)), cpu: cpuNow(s, d, servers, front?.proc.pid) },
    new Date(),
  ];
  const { ids, successesWithoutId, ...load } = await runLoad(spec);
  const cpu = cpuNow(s, d, servers, front?.proc.pid);
  const rss = servers.map((x) => rssMb(x.proc.pid) ?? 0);
  const acknowledged = {
    ids: [...(warmup?.ids ?? []), ...ids],
    withoutId: successesWithoutId + (warmup?.successesWithoutId ?? 0),
  };
  const audited = seeded && spec.collectIds ? await audit(seeded, d, acknowledged, since) : null;
  const { conflicts, actorsLive } = await gauges(s, servers);
  const perRequest = (k: string): [string, number | null] => [
    k,
    usPerRequest(before.cpu[k], cpu[k], load.completed),
  ];
  return {
    scenario: s,
    status: 'ok',
    load,
    ...(audited ?? { audit: null, meanBatch: null }),
    conflicts:
      conflicts === null || before.conflicts === null ? null : conflicts - before.conflicts,
    rssStartMb,
    rssMb: rss,
    actorsLive,
    cpuUsPerRequest: Object.fromEntries(Object.keys(cpu).map(perRequest)),
  };
}

async function audit(
  options: string[],
  d: Deployment,
  ack: { ids: string[]; withoutId: number },
  since: Date,
) {
  await database.waitForQuiescence(db.pool, options);
  const audited = await database.auditPurchases(db.pool, options, ack.ids, ack.withoutId, d.sold);
  return { audit: audited, meanBatch: await database.meanBatchSize(db.pool, options, since) };
}

async function runScenario(s: Scenario, d: Deployment): Promise<report.ScenarioReport> {
  h.say(`scenario ${s.id}: ${s.title} ...`);
  let front: Server | null = null;
  try {
    if (d.failure) throw d.failure;
    if (s.routing === 'nginx') front = await balancer(d);
    const result = await measure(s, d, front);
    const [f, cpu] = [result.load!, Object.entries(result.cpuUsPerRequest)];
    const perRequest = cpu.map(([k, v]) => `${k} ${report.fmt(v)}`).join(', ');
    h.say(
      `scenario ${s.id}: ${report.fmt(f.throughput)}/s, p50 ${f.p50Ms} ms, p99 ${f.p99Ms} ms, non-2xx ${f.non2xx}, errors ${f.errors}, audit ${result.audit?.summary ?? 'n/a'}, µs/request: ${perRequest}`,
    );
    return result;
  } catch (error) {
    const [status, reason] = [
      error instanceof Skip ? 'skipped' : 'failed',
      (error as Error).message,
    ] as const;
    h.say(`scenario ${s.id}: ${status.toUpperCase()}: ${reason}`);
    const empty = { load: null, audit: null, conflicts: null, meanBatch: null, actorsLive: null };
    return {
      scenario: s,
      status,
      reason,
      ...empty,
      rssStartMb: [],
      rssMb: [],
      cpuUsPerRequest: {},
    };
  } finally {
    if (front) await h.stop(front.proc);
  }
}

// ---------------------------------------------------------------------------------------------

function benchReport(scenarios: report.ScenarioReport[], notes: string[]): report.BenchReport {
  const byId = new Map(scenarios.map((r) => [r.scenario.id, r]));
  const quotient = (
    a: string,
    b: string,
    read: (r: report.ScenarioReport) => number | null | undefined,
  ) => {
    const [top, bottom] = [byId.get(a), byId.get(b)].map((r) =>
      r?.status === 'ok' ? read(r) : null,
    );
    return top && bottom ? top / bottom : null;
  };
  const settings = ['BENCH_DURATION_S', 'BENCH_WARMUP_S', 'BENCH_SCENARIOS'].filter(
    (k) => process.env[k],
  );
  const command = [
    ...(db.embedded ? [] : ['BENCH_DATABASE_URL=…']),
    ...settings.map((k) => `${k}=${process.env[k]}`),
  ];
  const byNumber = (a: report.ScenarioReport, b: report.ScenarioReport) =>
    a.scenario.id.localeCompare(b.scenario.id, 'en', { numeric: true });
  return {
    ...report.machine([...command, 'npm run bench'].join(' '), db.description, h.startedAt),
    durationS: DURATION_S,
    warmupS: WARMUP_S,
    scenarios: scenarios.sort(byNumber),
    ratios: RATIOS.map((r) => ({
      ...r,
      throughput: quotient(r.numerator, r.denominator, (x) => x.load?.throughput),
      server: quotient(r.numerator, r.denominator, (x) => x.cpuUsPerRequest.server),
      postgres: quotient(r.numerator, r.denominator, (x) => x.cpuUsPerRequest.postgres),
    })),
    notes,
  };
}

/** Migrations (one instance, whatever the scenarios), an empty embedded database, nginx. */
async function prepare(scenarios: Scenario[]): Promise<string[]> {
  workDir = mkdtempSync(join(tmpdir(), 'ticket-bench-'));
  h.onCleanup(() => rmSync(workDir, { recursive: true, force: true }));
  for (const port of [...PORTS.services, PORTS.reference, PORTS.nginx]) await assertPortFree(port);
  const where = {
    urlVariable: 'BENCH_DATABASE_URL',
    port: PORTS.postgres,
    dataDir: 'bench-postgres',
  };
  db = await database.openDatabase(h, { ...where, database: 'bench' });
  h.say(`database: ${db.description}`);
  h.onCleanup(() => db.pool.query('DROP TABLE IF EXISTS bench_ticket_option_buckets'));
  await h.stop((await startService(PORTS.services[0])).proc);
  if (db.embedded) await database.resetTables(db.pool);
  compileReferences();
  // Before any load: installing nginx must not overlap a measurement.
  if (scenarios.some((s) => s.routing === 'nginx'))
    await (nginx = lookUpNginx(process.env.BENCH_INSTALL === '1', h.say));
  const notes = db.embedded
    ? []
    : [
        'BENCH_DATABASE_URL: existing rows kept, fresh options per scenario; PostgreSQL CPU covers the whole server, other clients too.',
      ];
  return db.postmaster === null
    ? [...notes, 'PostgreSQL runs elsewhere: its CPU per request is n/a.']
    : notes;
}

async function main(): Promise<boolean> {
  const scenarios = selectScenarios(process.env.BENCH_SCENARIOS);
  h.say(
    `${scenarios.length} scenarios, ${WARMUP_S} s warm-up + ${DURATION_S} s each; logs in ${logDir}`,
  );
  const notes = await prepare(scenarios);
  const reports: report.ScenarioReport[] = [];
  for (const group of deployments(scenarios)) {
    const instances = Math.max(...group.map((s) => s.instances));
    const d = await deploy(group[0], instances).catch((failure: Error): Deployment => ({
      servers: [],
      failure,
    }));
    for (const s of group) reports.push(await runScenario(s, d));
    await Promise.all(d.servers.map((x) => h.stop(x.proc)));
  }
  const bench = benchReport(reports, notes);
  const markdown = report.renderBench(bench);
  const dir = process.env.BENCH_RESULTS_DIR?.trim() || join(ROOT, 'bench', 'results');
  const files = {
    'latest.md': markdown,
    'latest.json': bench,
    'throughput.svg': report.throughputSvg(bench),
  };
  const written = report.writeResults(dir, files);
  console.log(`\n${markdown}`);
  const failed = reports
    .filter((r) => r.status === 'failed' || (r.audit && !r.audit.ok))
    .map((r) => r.scenario.id);
  h.say(`written: ${written.join(', ')}${failed.length ? `; FAILED: ${failed.join(', ')}` : ''}`);
  return failed.length === 0;
}

h.run('BENCH_TIMEOUT_S', main);
