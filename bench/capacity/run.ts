/**
 * Capacity of one PostgreSQL primary for the service's commit statement (docs/capacity.md):
 * replays it with pgbench at 1, 10 and 100 purchases per statement on a scratch database of a
 * private cluster (bench/capacity/cluster.ts), and writes bench/results/capacity.md. Loopback
 * only; each run CAPACITY_DURATION_S (10) seconds; no run starts after DEADLINE_MS.
 *
 *   npx ts-node --transpile-only bench/capacity/run.ts
 *
 * Per run: statements/s, purchases/s (verified against the sum of `purchased`), CPU of the
 * cluster's processes, pgbench's own CPU, WAL bytes (LSN difference), records, full-page images
 * and syncs (`pg_stat_wal`), checkpoints, and what the rest of the machine used meanwhile.
 */
import { execFileSync, spawn } from 'node:child_process';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { join } from 'node:path';
import { Client } from 'pg';
import { ppidOf, treeCpuUs } from '../lib/cpu';
import { startServer } from './cluster';

const DURATION_S = Number(process.env.CAPACITY_DURATION_S ?? 10);
const DEADLINE_MS = 280_000;
const OPTIONS = 1000;
const DB = `capacity_${process.pid}`;
let dbUrl = '';
const HERE = __dirname;
const OUT = join(HERE, '..', 'results', 'capacity.md');

interface Run {
  what: string;
  script: string;
  vars: Record<string, number>;
  batch: number;
  clients: number;
}

const run = (what: string, script: string, vars: Record<string, number>, clients: number): Run => ({
  what: `${what}${script === 'arrays-only.sql' ? ' (control: arrays only)' : ''}`,
  script,
  vars,
  batch: vars.batch ?? vars.width * vars.per_option,
  clients,
});
const RUNS: Run[] = [
  ...[1, 10, 100].flatMap((batch) => [
    run('one option', 'commit-single.sql', { batch, options: 1 }, 1),
    ...[8, 32].map((c) => run('one hot option', 'commit-single.sql', { batch, options: 1 }, c)),
    ...[8, 32].map((c) =>
      run(`1 of ${OPTIONS} options`, 'commit-single.sql', { batch, options: OPTIONS }, c),
    ),
  ]),
  ...[1, 8].flatMap((per_option) =>
    [8, 32].map((c) =>
      run(
        `12 of ${OPTIONS} options`,
        'commit-multi.sql',
        { width: 12, per_option, options: OPTIONS },
        c,
      ),
    ),
  ),
  ...[1, 100].map((batch) =>
    run(`1 of ${OPTIONS} options`, 'arrays-only.sql', { batch, options: OPTIONS }, 8),
  ),
];

interface Sample {
  at: number;
  /** the postmaster's and its children's, exited ones included (bench/lib/cpu.ts) */
  cpuUs: number;
  /** wal (bytes since 0/0), records, fpi, syncs, checkpoints, tickets (sum of `purchased`). */
  c: Record<string, number>;
  machine: [busy: number, total: number];
}

function machineJiffies(): [number, number] {
  const f = readFileSync('/proc/stat', 'utf8').split('\n')[0].split(/\s+/).slice(1).map(Number);
  return [f.reduce((a, b) => a + b, 0) - f[3] - f[4], f.reduce((a, b) => a + b, 0)];
}

async function sample(db: Client, postmaster: number): Promise<Sample> {
  const { rows } = await db.query<Record<string, string>>(
    `SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), '0/0') AS wal, w.wal_records AS records,
            w.wal_fpi AS fpi, w.wal_sync AS syncs,
            (SELECT checkpoints_timed + checkpoints_req FROM pg_stat_bgwriter) AS checkpoints,
            (SELECT sum(purchased) FROM ticket_options) AS tickets
       FROM pg_stat_wal w`,
  );
  return {
    at: performance.now(),
    cpuUs: treeCpuUs(postmaster) ?? NaN,
    c: Object.fromEntries(Object.entries(rows[0]).map(([k, v]) => [k, Number(v)])),
    machine: machineJiffies(),
  };
}

const childrenOf = (postmaster: number) =>
  readdirSync('/proc').filter((pid) => /^\d+$/.test(pid) && ppidOf(+pid) === postmaster).length;

/**
 * Waits (at most 5 s) until pgbench's backends have exited and been reaped: a child reaped between
 * the reading of the postmaster's cutime and the scan of its children would be counted nowhere.
 */
async function backendsGone(postmaster: number, before: number): Promise<void> {
  for (let i = 0; i < 100 && childrenOf(postmaster) > before; i += 1) {
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/** Runs pgbench under /usr/bin/time; its output and its own user + system CPU in µs. */
function pgbench(run: Run): Promise<{ out: string; cpuUs: number }> {
  const vars = Object.entries(run.vars).flatMap(([k, v]) => ['-D', `${k}=${v}`]);
  const args = ['-f', '%U %S', 'pgbench', '-n', '-M', 'prepared', '-c', `${run.clients}`];
  args.push('-j', '2', '-T', `${DURATION_S}`, '-f', join(HERE, run.script), ...vars, dbUrl);
  return new Promise((resolve, reject) => {
    const child = spawn('/usr/bin/time', args, { stdio: ['ignore', 'pipe', 'pipe'] });
    const kill = setTimeout(() => child.kill('SIGKILL'), (DURATION_S + 20) * 1000);
    let out = '';
    let err = '';
    child.stdout.on('data', (chunk: Buffer) => (out += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (err += chunk.toString()));
    child.on('close', (code) => {
      clearTimeout(kill);
      const times = /([\d.]+) ([\d.]+)\s*$/.exec(err);
      if (code !== 0 || !times) return reject(new Error(`pgbench failed (${code}): ${err}`));
      resolve({ out, cpuUs: (Number(times[1]) + Number(times[2])) * 1e6 });
    });
  });
}

const num = (text: string, re: RegExp) => Number(re.exec(text)?.[1] ?? NaN);
const f0 = (n: number) => (Number.isFinite(n) ? Math.round(n).toLocaleString('en-US') : '—');
const f2 = (n: number) => (Number.isFinite(n) ? n.toFixed(2) : '—');

async function measure(db: Client, postmaster: number, run: Run): Promise<string> {
  const before = childrenOf(postmaster);
  const a = await sample(db, postmaster);
  const { out, cpuUs } = await pgbench(run);
  await backendsGone(postmaster, before);
  const b = await sample(db, postmaster);
  const pgUs = b.cpuUs - a.cpuUs;
  const d = (k: string) => b.c[k] - a.c[k];
  const tps = num(out, /tps = ([\d.]+) \(without/);
  const statements = num(out, /actually processed: (\d+)/);
  const control = run.script === 'arrays-only.sql';
  const purchases = control ? statements * run.batch : d('tickets');
  if (!control && purchases !== statements * run.batch) {
    console.warn(`${run.what}: ${purchases} purchases for ${statements} × ${run.batch}`);
  }
  const wallS = (b.at - a.at) / 1000;
  const busy = (b.machine[0] - a.machine[0]) / (b.machine[1] - a.machine[1]);
  const row = [
    run.what,
    run.batch,
    run.clients,
    f0(tps),
    f0(tps * run.batch),
    f0(num(out, /latency average = ([\d.]+) ms/) * 1000),
    f0(pgUs / purchases),
    f2(pgUs / 1e6 / wallS),
    f0(cpuUs / purchases),
    f0(d('wal') / purchases),
    f2(d('records') / purchases),
    f2((d('fpi') / purchases) * 100),
    f2(d('syncs') / statements),
    d('checkpoints'),
    `${Math.round(busy * 100)}%`,
    f2(busy * cpus().length - (pgUs + cpuUs) / 1e6 / wallS),
  ];
  console.log(row.join(' | '));
  return `| ${row.join(' | ')} |`;
}

async function setUp(admin: Client): Promise<Client> {
  await admin.query(`CREATE DATABASE ${DB}`);
  execFileSync('npm', ['run', '--silent', 'migration:up'], {
    cwd: join(HERE, '..', '..'),
    env: { ...process.env, DATABASE_URL: dbUrl },
    stdio: 'pipe',
    timeout: 60_000,
  });
  const db = new Client({ connectionString: dbUrl });
  await db.connect();
  await db.query(`CREATE FUNCTION bench_option_id(n int) RETURNS uuid LANGUAGE sql IMMUTABLE
      AS $$ SELECT ('00000000-0000-4000-8000-' || lpad(n::text, 12, '0'))::uuid $$`);
  await db.query(
    `INSERT INTO ticket_options (id, name, allocation)
     SELECT bench_option_id(n), 'capacity ' || n, 2147483647 FROM generate_series(1, $1::int) n`,
    [OPTIONS],
  );
  await db.query('VACUUM ANALYZE ticket_options');
  return db;
}

const SETTINGS = (
  'server_version synchronous_commit wal_level shared_buffers fsync wal_sync_method ' +
  'full_page_writes wal_compression commit_delay max_wal_size checkpoint_timeout'
).split(' ');

async function facts(admin: Client, what: string): Promise<string[]> {
  const { rows } = await admin.query<{ s: string }>(
    `SELECT string_agg(name || '=' || current_setting(name), ', ' ORDER BY i) AS s
       FROM unnest($1::text[]) WITH ORDINALITY AS n(name, i)`,
    [SETTINGS],
  );
  const load = loadavg().map(f2).join(' ');
  return [
    `- machine: nproc ${cpus().length} (${cpus()[0]?.model ?? '?'}), load average before the runs ${load}`,
    `- PostgreSQL: ${rows[0].s}`,
    `- measured on ${what}`,
  ];
}

const COLUMNS = (
  'statement|purchases / statement|clients|statements/s|purchases/s|latency µs|' +
  'PG CPU µs / purchase|PG cores busy|pgbench CPU µs / purchase|WAL bytes / purchase|' +
  'WAL records / purchase|full-page images / 100 purchases|WAL syncs / statement|checkpoints|' +
  'machine busy|cores used by others'
).split('|');
const HEADER = [`| ${COLUMNS.join(' | ')} |`, `| --- |${' --: |'.repeat(COLUMNS.length - 1)}`];

const LEGEND = `Columns: purchases/s = statements/s × purchases per statement (checked against the
sum of \`purchased\`); PG CPU = utime + stime of the postmaster and all its children (backends,
WAL writer, checkpointer, …; exited ones through the postmaster's cutime + cstime) from /proc;
WAL bytes = \`pg_wal_lsn_diff\` over the run; records, full-page images and syncs from
\`pg_stat_wal\`; cores used by others = what the rest of the shared machine used meanwhile. The
control rows only build the arrays: their CPU is part of every commit row too.`;

async function main(): Promise<void> {
  const started = performance.now();
  const server = await startServer();
  dbUrl = server.adminUrl.replace(/\/[^/]*$/, `/${DB}`);
  const admin = new Client({ connectionString: server.adminUrl });
  const rows: string[] = [];
  let lines: string[];
  try {
    await admin.connect();
    lines = await facts(admin, server.what);
    const db = await setUp(admin);
    for (const run of RUNS) {
      if (performance.now() - started + DURATION_S * 1000 > DEADLINE_MS) break;
      rows.push(await measure(db, server.postmaster, run));
    }
    await db.end();
  } finally {
    await admin.query(`DROP DATABASE IF EXISTS ${DB} WITH (FORCE)`).catch(() => undefined);
    await admin.end().catch(() => undefined);
    server.stop();
  }
  const command = `npx ts-node --transpile-only bench/capacity/run.ts (pgbench -n -M prepared -j 2 -T ${DURATION_S} -c C -f bench/capacity/<script> -D …)`;
  writeFileSync(
    OUT,
    [
      '# PostgreSQL capacity: the commit statement replayed with pgbench',
      '',
      `Written by \`${command}\`, ${new Date().toISOString()}; ${rows.length} of ${RUNS.length} runs. Reasoning: docs/capacity.md.`,
      '',
      ...lines,
      '',
      LEGEND,
      '',
      ...HEADER,
      ...rows,
      '',
    ].join('\n'),
  );
  console.log(`wrote ${OUT}`);
}

main().catch((error: unknown) => {
  console.error(error);
  process.exitCode = 1;
});
