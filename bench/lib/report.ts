/**
 * The one report writer of the bench and the soak: markdown and JSON in the results directory,
 * the formatting both pages use, and the bench's page.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus, platform, release } from 'node:os';
import { join } from 'node:path';
import type { BenchReport } from '../run';
import type { Scenario } from '../scenarios';
import type { AuditResult } from './database';
import type { Harness } from './harness';
import type { LoadResult } from './load';

export const fmtInt = (value: number): string => Math.round(value).toLocaleString('en-US');
export const fmt = (value: number | null | undefined, digits = 0): string =>
  value === null || value === undefined || !Number.isFinite(value)
    ? 'n/a'
    : digits === 0
      ? fmtInt(value)
      : value.toFixed(digits);

/** A markdown table from `a | b | c` headers and rows; the first column left, the others right. */
export function table(headers: string, rows: string[]): string {
  const rule = headers.split(' | ').map((_, i) => (i === 0 ? '---' : '---:'));
  return [`| ${headers} |`, `| ${rule.join(' | ')} |`, ...rows].join('\n');
}

export type Machine = ReturnType<typeof machine>;

/** The commit measured, and whether src/ differs from it (the build takes the working tree). */
function revision(root: string): string {
  const git = (...args: string[]) => execFileSync('git', args, { cwd: root, encoding: 'utf8' });
  try {
    const dirty = git('status', '--porcelain', '--', 'src').split('\n').filter(Boolean).length;
    const changes = dirty ? ` + uncommitted changes in src/ (${dirty} files)` : '';
    return `${git('rev-parse', '--short', 'HEAD').trim()}${changes}`;
  } catch {
    return 'unknown (git unavailable)';
  }
}

/** Where and how a run ran; `tuning`: the service's variables passed on (DB_*, ACTOR_*, …). */
export function machine(command: string, database: string, h: Harness) {
  const settings = Object.entries(process.env).filter(
    (e): e is [string, string] => /^(DB|ACTOR|IDEMPOTENCY)_[A-Z_]+$/.test(e[0]) && !!e[1],
  );
  return {
    command: [...settings.map(([k, v]) => `${k}=${v}`), command].join(' '),
    revision: revision(h.options.root),
    date: new Date().toISOString(),
    node: process.version,
    platform: `${platform()} ${release()}`,
    cpus: `${cpus().length} (${cpus()[0]?.model.trim() ?? 'unknown'})`,
    database,
    tuning: Object.fromEntries(settings),
    elapsedS: Math.round((Date.now() - h.startedAt) / 1000),
  };
}

export function environment(m: Machine, extra: string[] = []): string {
  const tuning = Object.entries(m.tuning).map(([k, v]) => `${k}=${v}`);
  return `## Environment

- command: \`${m.command}\` at ${m.revision}; date: ${m.date}; run: ${fmtInt(m.elapsedS)} s
- node ${m.node} on ${m.platform}; CPUs: ${m.cpus}, shared by the load generator, the servers and PostgreSQL
- database: ${m.database}
${extra.map((line) => `${line}\n`).join('')}- service tuning from the environment: ${tuning.join(', ') || 'none (defaults)'}
`;
}

/** Writes the page, its JSON and its chart into `directory`; returns their paths. */
export function writeResults(directory: string, files: Record<string, string | object>): string[] {
  mkdirSync(directory, { recursive: true });
  return Object.entries(files).map(([name, content]) => {
    const text = typeof content === 'string' ? content : `${JSON.stringify(content, null, 2)}\n`;
    writeFileSync(join(directory, name), text);
    return join(directory, name);
  });
}

// The bench's page

export type Cpu = Record<string, number | null>;

export interface ScenarioReport {
  scenario: Scenario;
  status: 'ok' | 'skipped' | 'failed';
  /** Why it was skipped or failed. */
  reason?: string;
  load: Omit<LoadResult, 'ids'> | null;
  /** null: nothing to audit (reads, canned). */
  audit: AuditResult | null;
  meanBatch: number | null;
  conflicts: number | null;
  actorsLive: number | null;
  /** Per process serving the scenario, before the warm-up and after the run. */
  rssStartMb: number[];
  rssMb: number[];
  /** CPU µs per answered request over the measured window, per process group. */
  cpuUsPerRequest: Cpu;
}

export const NOT_RUN = {
  ...{ load: null, audit: null, meanBatch: null, conflicts: null, actorsLive: null },
  ...{ rssStartMb: [], rssMb: [], cpuUsPerRequest: {} },
};

export const EXTERNAL_DATABASE =
  'BENCH_DATABASE_URL: existing rows were kept and every scenario used fresh options; the ' +
  "PostgreSQL CPU covers the whole server's processes, other clients' included.";

/** One line for the progress output. */
export function summary(r: ScenarioReport): string {
  const [f, cpu] = [r.load!, Object.entries(r.cpuUsPerRequest)];
  const perRequest = cpu.map(([k, v]) => `${k} ${fmt(v)}`).join(', ');
  return `${fmt(f.throughput)}/s, p50 ${f.p50Ms} ms, p99 ${f.p99Ms} ms, non-2xx ${f.non2xx}, errors ${f.errors}, audit ${r.audit?.summary ?? 'n/a'}, µs/request: ${perRequest}`;
}

const total = (values: number[]): number => values.reduce((a, b) => a + b, 0);
const rss = (v: number[]) =>
  v.length <= 1 ? fmt(v[0]) : `${fmt(total(v))} (${v.map((x) => fmt(x)).join(' + ')})`;
const oneLine = (text = '') => text.replace(/[|\n]/g, ' ').slice(0, 240);

function scenarioRow(r: ScenarioReport): string {
  const [{ id, title, request }, f, cpu] = [r.scenario, r.load, r.cpuUsPerRequest];
  if (!f) return `| ${id}. ${title} | **${r.status.toUpperCase()}**: ${oneLine(r.reason)} |`;
  const others = ['nginx', 'redis'].filter((k) => k in cpu).map((k) => `${k} ${fmt(cpu[k])}`);
  const codes = Object.entries(f.statusCounts).filter(([status]) => !status.startsWith('2'));
  const non2xx = [fmtInt(f.non2xx), ...codes.map(([s, n]) => `${s}: ${fmtInt(n)}`)].join(', ');
  const audit = r.audit ? (r.audit.ok ? 'ok' : `**${oneLine(r.audit.summary)}**`) : 'n/a';
  return `| ${id}. ${title} | ${fmt(f.throughput)}${request === 'read' ? ' reads/s' : ''} | ${fmt(f.p50Ms)} | ${fmt(f.p99Ms)} | ${non2xx} | ${f.errors}/${f.timeouts} | ${audit} | ${fmt(cpu.server)} | ${fmt(cpu.postgres)} | ${others.join(', ') || '—'} | ${fmt(r.conflicts)} | ${fmt(r.meanBatch, 1)} | ${rss(r.rssMb)} |`;
}

function auditLines(report: BenchReport): string {
  const lines = report.scenarios.flatMap(({ scenario: s, audit: a }) =>
    a
      ? [
          `- ${s.id}: ${a.summary} — ${fmtInt(a.acknowledged)} purchases acknowledged with 201 (warm-up included), ${fmtInt(a.rows)} rows, sold = ${fmtInt(a.sold)}; ${fmtInt(a.unacknowledged)} rows committed while the load generator was closing its connections (never read).`,
        ]
      : [],
  );
  for (const r of report.scenarios.filter((x) => x.scenario.rssLimitMb && x.load)) {
    const [s, limit] = [r.scenario, r.scenario.rssLimitMb!];
    const verdict = total(r.rssMb) < limit ? 'within' : '**over**';
    lines.push(
      `- ${s.id}: after ${fmtInt(s.options.count)} distinct options, ${fmt(r.actorsLive)} live actors (bound ACTOR_MAX_LIVE); RSS ${rss(r.rssStartMb)} MB before, ${rss(r.rssMb)} MB after: ${verdict} the ${limit} MB target.`,
    );
  }
  return lines.join('\n');
}

export function renderBench(report: BenchReport): string {
  const x = (v: number | null) => (v === null ? 'n/a' : `${v.toFixed(2)}×`);
  const ratios = report.ratios.map(
    (r) => `| ${r.label} | ${x(r.throughput)} | ${x(r.server)} | ${x(r.postgres)} |`,
  );
  const notes = report.notes.map((note) => `- ${note}`).join('\n');
  return `# Benchmark results

Closed loop (autocannon on the same machine), ${report.durationS} s measured after ${report.warmupS} s of warm-up, 64 connections per scenario; loopback only. Throughput counts successful answers (201 for purchases, 200 for reads); CPU per request is explained below the tables.

${table('scenario | purchases/s (or reads/s) | p50 ms | p99 ms | non-2xx | errors/timeouts | audit | server µs/req | PostgreSQL µs/req | other µs/req | conflicts | mean batch | RSS MB', report.scenarios.map(scenarioRow))}

## Ratios (same run)

${table('ratio | throughput | server CPU per request | PostgreSQL CPU per request', ratios)}

## Audit details

${auditLines(report)}

Audit: every purchase answered 201 is in \`purchases\`, and on every option SUM(quantity) == sold <= allocation (sold: \`purchased\`; for the bucketed counters and the Redis gate, allocation - the remaining their own GET /ticket_options/:id reports). Mean batch: purchases per commit statement over the measured window, count(*) / count(DISTINCT created_at). Conflicts: growth of \`ticket_actor_version_conflicts_total\` (service only). RSS: VmRSS after the run, per process.

CPU per request: utime + stime from \`/proc/<pid>/stat\` (clock ticks, \`getconf CLK_TCK\`), read just before and just after the measured window, divided by the answers completed in it (any status). server: the process(es) serving the scenario; PostgreSQL: the postmaster (with its reaped children's time) and every process whose parent it is; nginx: its master and workers; redis: redis-server. The load generator's own CPU is in latest.json (\`generator\`).
${notes ? `\n## Notes\n\n${notes}\n` : ''}
${environment(report)}`;
}
