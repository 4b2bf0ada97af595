/**
 * `npm run bench`: the scenarios of bench/scenarios.ts in one run on one PostgreSQL: throughput,
 * latency, CPU per request, audit and memory of the service and of the references.
 * Settings: bench/README.md.
 */
import { randomInt, randomUUID } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import ts from 'typescript';
import { findSample } from '../test/support/prometheus';
import { pidOf, processCpuUs, treeCpuUs, usPerRequest } from './lib/cpu';
import * as database from './lib/database';
import { assertPortFree, envInt, Harness, portOpen, rssMb, Server } from './lib/harness';
import {
  confirmationDocument,
  holdDocument,
  LoadSpec,
  LoadStep,
  purchaseDocument,
  runLoad,
  scrape,
} from './lib/load';
import { lookUpNginx, NginxLookup, startNginx } from './lib/nginx';
import * as report from './lib/report';
import { deployments, RATIOS, Scenario, selectScenarios } from './scenarios';

const ROOT = resolve(__dirname, '..');
const PORTS = { services: [21001, 21002, 21003], reference: 21010, nginx: 21020 };
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
  /** Sold per option, when the target does not keep `ticket_options.purchased`. */
  sold?: database.SoldCounters;
  redisPid?: number | null;
  /** Why the deployment could not start: each of its scenarios reports it. */
  failure?: Error;
}

let db: database.BenchDatabase;
let workDir: string;
let nginx: NginxLookup | null = null;

/** The references run as plain JavaScript, not under ts-node, whose compiler would inflate RSS. */
function compileReferences(): void {
  const dir = join(ROOT, 'bench', 'reference');
  const { CommonJS: module } = ts.ModuleKind;
  const compilerOptions = { module, target: ts.ScriptTarget.ES2022, esModuleInterop: true };
  for (const file of readdirSync(dir)) {
    const source = readFileSync(join(dir, file), 'utf8');
    const { outputText } = ts.transpileModule(source, { compilerOptions });
    writeFileSync(join(workDir, file.replace(/\.ts$/, '.js')), outputText);
  }
}

function startService(port: number, env: Record<string, string> = {}): Promise<Server> {
  const vars = { DATABASE_URL: db.url, LOG_LEVEL: 'warn', ...env };
  return h.node(`service-${port}`, port, join(ROOT, 'dist', 'main.js'), vars);
}

/** Sold = allocation - meta.remaining, as the target's own GET /ticket_options/:id says. */
function soldViaApi(url: string): database.SoldCounters {
  type Document = { data: { attributes: { allocation: number } }; meta: { remaining: number } };
  const read = async (id: string) => {
    const { data, meta } = (await (await fetch(`${url}/ticket_options/${id}`)).json()) as Document;
    return [id, data.attributes.allocation - meta.remaining] as const;
  };
  return async (ids) => new Map(await Promise.all(ids.map(read)));
}

async function deploy(s: Scenario, instances: number): Promise<Deployment> {
  if (s.target === 'service') {
    const ports = PORTS.services.slice(0, instances);
    return { servers: await Promise.all(ports.map((port) => startService(port, s.env))) };
  }
  const redis = s.target === 'redis-gate';
  if (redis && !(await portOpen(Number(REDIS.port || 6379), REDIS.hostname))) {
    throw new Skip(`Redis not reachable at ${REDIS.host} (BENCH_REDIS_URL)`);
  }
  const [NODE_PATH, prefix] = [join(ROOT, 'node_modules'), `bench:${randomUUID().slice(0, 8)}:`];
  const env = { NODE_PATH, DATABASE_URL: db.url, REDIS_URL: REDIS.href, REDIS_PREFIX: prefix };
  const server = await h.node(s.target, PORTS.reference, join(workDir, `${s.target}.js`), env);
  const sold = ['buckets', 'redis-gate'].includes(s.target) ? soldViaApi(server.url) : undefined;
  return { servers: [server], sold, redisPid: redis ? pidOf('redis-server') : null };
}

/** deploy/nginx.conf in front of the deployment: its app1..app3 are the deployment's ports. */
async function balancer(d: Deployment): Promise<Server> {
  const found = (nginx ??= lookUpNginx(process.env.BENCH_INSTALL === '1', h.say));
  if ('skipped' in found) throw new Skip(found.skipped);
  const template = readFileSync(join(ROOT, 'deploy', 'nginx.conf'), 'utf8');
  const upstreams = [0, 1, 2].map((i) => d.servers[i % d.servers.length].port);
  return startNginx(h, found.binary, template, join(workDir, 'nginx'), PORTS.nginx, upstreams);
}

// One scenario: seed, warm up, measure (CPU around the window), audit.

function loadSpec(s: Scenario, urls: string[], options: string[]): LoadSpec {
  let next = 0;
  const each = s.pick === 'each-once';
  const option = () => options[each ? next++ % options.length : randomInt(options.length)];
  const purchase = s.request === 'purchase';
  if (s.request === 'hold-confirm' || s.request === 'hold-mix') {
    return { ...holdSpec(s, option), urls, path: () => '', method: 'POST' };
  }
  return {
    urls,
    connections: s.connections,
    durationS: DURATION_S,
    amount: each ? options.length : undefined,
    method: purchase ? 'POST' : 'GET',
    path: () => `/ticket_options/${option()}${purchase ? '/purchases' : ''}`,
    body: purchase ? JSON.stringify(purchaseDocument(randomUUID())) : undefined,
    successStatus: purchase ? 201 : 200,
    collectIds: purchase && s.target !== 'canned',
  };
}

/** The request sequences of the reservation scenarios (bench/README.md, 8a and 8b). */
function holdSpec(s: Scenario, option: () => string) {
  const hold: LoadStep = {
    method: 'POST',
    path: () => `/ticket_options/${option()}/reservations`,
    body: () => JSON.stringify(holdDocument(randomUUID())),
    successStatus: 201,
  };
  const confirm: LoadStep = {
    method: 'POST',
    path: () => '/purchases',
    body: (reservationId) => JSON.stringify(confirmationDocument(reservationId)),
    successStatus: 201,
    collect: true,
  };
  const release: LoadStep = {
    method: 'DELETE',
    path: (reservationId) => `/reservations/${reservationId}`,
    successStatus: 204,
  };
  const steps = s.request === 'hold-confirm' ? [hold, confirm] : [hold, confirm, hold, release];
  return {
    connections: s.connections,
    durationS: DURATION_S,
    successStatus: 201,
    collectIds: true,
    steps,
  };
}

/** CPU µs of each process group the scenario uses, now. */
function cpuNow(s: Scenario, d: Deployment, servers: Server[], front: Server | null) {
  const { user, system } = process.cpuUsage();
  const server = processCpuUs(servers.map((x) => x.proc.pid));
  const cpu: Record<string, number | null> = { server, generator: user + system };
  if (s.target !== 'canned') cpu.postgres = db.postmaster ? treeCpuUs(db.postmaster) : null;
  if (front) cpu.nginx = treeCpuUs(front.proc.pid);
  if (d.redisPid) cpu.redis = processCpuUs([d.redisPid]);
  return cpu;
}

/** Version conflicts and live actors, summed over the instances; null for the references. */
async function gauges(s: Scenario, servers: Server[]) {
  const all = s.target === 'service' ? await Promise.all(servers.map((x) => scrape(x.url))) : [];
  const sum = (name: string) => {
    const values = all.map((samples) => samples && findSample(samples, name));
    const numbers = values.filter((v) => typeof v === 'number');
    return all.length && numbers.length === all.length ? numbers.reduce((a, b) => a + b, 0) : null;
  };
  return {
    conflicts: sum('ticket_actor_version_conflicts_total'),
    live: sum('ticket_actors_live'),
  };
}

async function measure(s: Scenario, d: Deployment, front: Server | null) {
  const servers = d.servers.slice(0, s.instances);
  const { count, allocation } = s.options;
  const seeded =
    s.target === 'canned' ? null : await database.createOptions(db.pool, count, allocation, s.id);
  const spec = loadSpec(s, front ? [front.url] : servers.map((x) => x.url), seeded ?? ['canned']);
  const rssStartMb = servers.map((x) => rssMb(x.proc.pid) ?? 0);
  const warmup = spec.amount || !WARMUP_S ? null : await runLoad({ ...spec, durationS: WARMUP_S });
  // A broken target fails here with its answers, not with "0/s".
  if (warmup?.successes === 0) throw new Error(`answers: ${JSON.stringify(warmup.statusCounts)}`);
  const before = { ...(await gauges(s, servers)), cpu: cpuNow(s, d, servers, front) };
  const since = new Date();
  const { ids, ...load } = await runLoad(spec);
  const cpu = cpuNow(s, d, servers, front);
  const rssMbAfter = servers.map((x) => rssMb(x.proc.pid) ?? 0);
  const acknowledged = [...(warmup?.ids ?? []), ...ids];
  const audited = seeded && (await audit(seeded, d, acknowledged, since));
  const after = await gauges(s, servers);
  const perRequest = (k: string) => [k, usPerRequest(before.cpu[k], cpu[k], load.completed)];
  const [was, is] = [before.conflicts, after.conflicts];
  const conflicts = was === null || is === null ? null : is - was;
  return {
    ...{ load, audit: null, meanBatch: null, ...audited, conflicts, actorsLive: after.live },
    ...{ rssStartMb, rssMb: rssMbAfter },
    cpuUsPerRequest: Object.fromEntries(Object.keys(cpu).map(perRequest)) as report.Cpu,
  };
}

async function audit(options: string[], d: Deployment, acknowledged: string[], since: Date) {
  if (acknowledged.length === 0) return null;
  await database.waitForQuiescence(db.pool, options);
  const audited = await database.auditPurchases(db.pool, options, acknowledged, d.sold);
  return { audit: audited, meanBatch: await database.meanBatchSize(db.pool, options, since) };
}

async function runScenario(s: Scenario, d: Deployment): Promise<report.ScenarioReport> {
  h.say(`scenario ${s.id}: ${s.title} ...`);
  let front: Server | null = null;
  try {
    if (d.failure) throw d.failure;
    if (s.routing === 'nginx') front = await balancer(d);
    const result = { scenario: s, status: 'ok' as const, ...(await measure(s, d, front)) };
    h.say(`scenario ${s.id}: ${report.summary(result)}`);
    return result;
  } catch (error) {
    const status = error instanceof Skip ? 'skipped' : 'failed';
    const reason = error instanceof Error ? error.message : String(error);
    h.say(`scenario ${s.id}: ${status.toUpperCase()}: ${reason}`);
    return { scenario: s, status, reason, ...report.NOT_RUN };
  } finally {
    if (front) await h.stop(front.proc);
  }
}

export type BenchReport = ReturnType<typeof benchReport>;

function benchReport(scenarios: report.ScenarioReport[], notes: string[]) {
  const byId = new Map(scenarios.map((r) => [r.scenario.id, r]));
  const ratio = (a: string, b: string, read: (r: report.ScenarioReport) => number | null) => {
    const [top, bottom] = [byId.get(a), byId.get(b)].map((r) => (r?.load ? read(r) : null));
    return top && bottom ? top / bottom : null;
  };
  const set = ['BENCH_DURATION_S', 'BENCH_WARMUP_S', 'BENCH_SCENARIOS'].filter(
    (k) => process.env[k],
  );
  const command = set.map((k) => `${k}=${process.env[k]}`);
  if (!db.embedded) command.unshift('BENCH_DATABASE_URL=…');
  const numeric = { numeric: true };
  scenarios.sort((a, b) => a.scenario.id.localeCompare(b.scenario.id, 'en', numeric));
  return {
    ...report.machine([...command, 'npm run bench'].join(' '), db.description, h),
    ...{ durationS: DURATION_S, warmupS: WARMUP_S, scenarios, notes },
    ratios: RATIOS.map(({ label, numerator: a, denominator: b }) => ({
      ...{ label, numerator: a, denominator: b },
      throughput: ratio(a, b, (x) => x.load?.throughput ?? null),
      server: ratio(a, b, (x) => x.cpuUsPerRequest.server ?? null),
      postgres: ratio(a, b, (x) => x.cpuUsPerRequest.postgres ?? null),
    })),
  };
}

/** Migrations (one instance, whatever the scenarios), an empty embedded database, nginx. */
async function prepare(scenarios: Scenario[]): Promise<string[]> {
  workDir = mkdtempSync(join(tmpdir(), 'ticket-bench-'));
  h.onCleanup(() => rmSync(workDir, { recursive: true, force: true }));
  for (const port of [...PORTS.services, PORTS.reference, PORTS.nginx]) await assertPortFree(port);
  const where = { urlVariable: 'BENCH_DATABASE_URL', port: 25432, dataDir: 'bench-postgres' };
  db = await database.openDatabase(h, { ...where, database: 'bench' });
  h.say(`database: ${db.description}`);
  h.onCleanup(() => db.pool.query('DROP TABLE IF EXISTS bench_ticket_option_buckets'));
  await h.stop((await startService(PORTS.services[0])).proc);
  if (db.embedded) await database.resetTables(db.pool);
  compileReferences();
  // Before any load: installing nginx must not overlap a measurement.
  const install = process.env.BENCH_INSTALL === '1';
  if (scenarios.some((s) => s.routing === 'nginx')) nginx = lookUpNginx(install, h.say);
  const notes = db.embedded ? [] : [report.EXTERNAL_DATABASE];
  if (db.postmaster === null) notes.push('PostgreSQL runs elsewhere: its CPU per request is n/a.');
  return notes;
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
    const failed = (failure: Error): Deployment => ({ servers: [], failure });
    const d = await deploy(group[0], instances).catch(failed);
    for (const s of group) reports.push(await runScenario(s, d));
    await Promise.all(d.servers.map((x) => h.stop(x.proc)));
  }
  const bench = benchReport(reports, notes);
  const markdown = report.renderBench(bench);
  const dir = process.env.BENCH_RESULTS_DIR?.trim() || join(ROOT, 'bench', 'results');
  const written = report.writeResults(dir, { 'latest.md': markdown, 'latest.json': bench });
  console.log(`\n${markdown}`);
  const bad = reports.filter((r) => r.status === 'failed' || r.audit?.ok === false);
  h.say(
    `written: ${written.join(', ')}; failed: ${bad.map((r) => r.scenario.id).join(', ') || 'none'}`,
  );
  return bad.length === 0;
}

h.run('BENCH_TIMEOUT_S', main);
