import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { AuditResult } from './database';

export type Target = 'service' | 'row-lock' | 'canned';

export interface ScenarioReport {
  /** "1", "2", ..., "4b", "6a": the numbering of the bench's scenario list. */
  id: string;
  title: string;
  target: Target;
  kind: 'purchases' | 'reads';
  status: 'ok' | 'skipped' | 'failed';
  /** Why it was skipped or failed. */
  reason?: string;
  instances: number;
  connections: number;
  durationS: number;
  /** Successful responses per second (201 for purchases, 200 for reads). */
  throughput: number | null;
  successes: number | null;
  p50Ms: number | null;
  p99Ms: number | null;
  meanMs: number | null;
  maxMs: number | null;
  non2xx: number | null;
  errors: number | null;
  timeouts: number | null;
  statusCounts: Record<string, number>;
  /** null: nothing to audit (reads, canned). */
  audit: AuditResult | null;
  auditNote: string;
  conflicts: number | null;
  meanBatch: number | null;
  /** Resident memory of each process that served the scenario, at its end. */
  rssMb: number[];
}

export interface RatioReport {
  label: string;
  numerator: string;
  denominator: string;
  value: number | null;
}

export interface BenchReport {
  command: string;
  date: string;
  node: string;
  cpus: number;
  cpuModel: string;
  platform: string;
  database: string;
  durationS: number;
  warmupS: number;
  connections: number;
  elapsedS: number;
  passedThroughEnv: Record<string, string>;
  scenarios: ScenarioReport[];
  ratios: RatioReport[];
  notes: string[];
}

const fmtInt = (value: number): string => Math.round(value).toLocaleString('en-US');
const fmt = (value: number | null, digits = 0): string =>
  value === null ? 'n/a' : digits === 0 ? fmtInt(value) : value.toFixed(digits);

function auditCell(scenario: ScenarioReport): string {
  if (scenario.status !== 'ok') return '—';
  if (!scenario.audit) return scenario.auditNote;
  return scenario.audit.ok ? 'ok' : `**${scenario.audit.summary}**`;
}

/** The count, and which statuses when there are any: a 503 and a 400 mean different things. */
function non2xxCell(scenario: ScenarioReport): string {
  if (!scenario.non2xx) return fmt(scenario.non2xx);
  const statuses = Object.entries(scenario.statusCounts)
    .filter(([status]) => !status.startsWith('2'))
    .map(([status, count]) => `${status}: ${fmtInt(count)}`);
  return `${fmtInt(scenario.non2xx)} (${statuses.join(', ')})`;
}

function rssCell(rss: number[]): string {
  if (rss.length === 0) return 'n/a';
  const total = rss.reduce((sum, value) => sum + value, 0);
  return rss.length === 1
    ? total.toFixed(0)
    : `${total.toFixed(0)} (${rss.map((v) => v.toFixed(0)).join(' + ')})`;
}

export function renderMarkdown(report: BenchReport): string {
  const lines: string[] = [];
  lines.push('# Benchmark results', '');
  lines.push(
    `${report.connections} connections per scenario, ${report.durationS} s measured after ` +
      `${report.warmupS} s of warm-up; loopback only; load generator (autocannon) on the same machine. ` +
      'Throughput counts successful responses only (201 for purchases, 200 for reads).',
    '',
  );
  lines.push(
    '| scenario | purchases/s (or reads/s) | p50 ms | p99 ms | non-2xx | errors/timeouts | audit | conflicts | mean batch | RSS MB |',
    '|---|---:|---:|---:|---:|---:|---|---:|---:|---:|',
  );
  for (const s of report.scenarios) {
    const name = `${s.id}. ${s.title}`;
    if (s.status !== 'ok') {
      const label = s.status === 'skipped' ? 'SKIPPED' : 'FAILED';
      lines.push(
        `| ${name} | **${label}**: ${escapeCell(truncate(s.reason ?? '', 240))} | | | | | | | | | |`,
      );
      continue;
    }
    const unit = s.kind === 'reads' ? ' reads/s' : '';
    lines.push(
      `| ${name} | ${fmt(s.throughput)}${unit} | ${fmt(s.p50Ms)} | ${fmt(s.p99Ms)} | ${non2xxCell(s)} | ` +
        `${fmt(s.errors)}/${fmt(s.timeouts)} | ${escapeCell(auditCell(s))} | ${fmt(s.conflicts)} | ` +
        `${fmt(s.meanBatch, 1)} | ${rssCell(s.rssMb)} |`,
    );
  }
  lines.push('', '## Ratios (same run)', '', '| ratio | value |', '|---|---:|');
  for (const ratio of report.ratios) {
    lines.push(
      `| ${ratio.label} | ${ratio.value === null ? 'n/a' : `${ratio.value.toFixed(2)}×`} |`,
    );
  }

  lines.push('', '## Audit details', '');
  for (const s of report.scenarios) {
    if (s.status !== 'ok' || !s.audit) continue;
    const a = s.audit;
    const counts =
      `${fmtInt(a.acknowledged)} purchases acknowledged with 201 (warm-up included), ` +
      `${fmtInt(a.rows)} rows, purchased = ${fmtInt(a.purchased)}`;
    lines.push(
      a.ok
        ? `- ${s.id}: ok — ${counts}. Every acknowledged purchase is in \`purchases\`; ` +
            `SUM(quantity) == purchased <= allocation on every option; ${fmtInt(a.unacknowledged)} ` +
            'rows were committed while the load generator was closing its connections (never read).'
        : `- ${s.id}: ${a.summary} — ${counts}.`,
    );
  }
  lines.push(
    '',
    'Mean batch = purchases per commit statement over the measured window, from the data: ' +
      'count(*) / count(DISTINCT created_at) (one statement writes its purchases, of one option or, ' +
      'coalesced, of many, with one timestamp). Conflicts come from GET /metrics when the service exposes a counter; otherwise n/a. ' +
      'RSS is VmRSS at the end of the scenario, per process (sum for 3 instances).',
  );

  if (report.notes.length > 0) {
    lines.push('', '## Notes', '');
    for (const note of report.notes) lines.push(`- ${note}`);
  }

  lines.push('', '## Environment', '');
  lines.push(`- command: \`${report.command}\``);
  lines.push(`- date: ${report.date}`);
  lines.push(`- node: ${report.node}; ${report.platform}`);
  lines.push(`- CPUs: ${report.cpus} (${report.cpuModel})`);
  lines.push(`- database: ${report.database}`);
  const passed = Object.entries(report.passedThroughEnv);
  lines.push(
    `- service tuning from the environment: ${passed.length === 0 ? 'none (defaults)' : passed.map(([k, v]) => `${k}=${v}`).join(', ')}`,
  );
  lines.push(`- bench run (after the build check): ${report.elapsedS.toFixed(0)} s`);
  lines.push('');
  return lines.join('\n');
}

function escapeCell(text: string): string {
  return text.replace(/\|/g, '\\|').replace(/\n/g, ' ');
}

const COLORS: Record<Target, string> = {
  service: '#2563eb',
  'row-lock': '#dc2626',
  canned: '#6b7280',
};
const LEGEND: Record<Target, string> = {
  service: 'the service',
  'row-lock': 'row-lock reference (SELECT … FOR UPDATE per purchase)',
  canned: 'canned 201, no database (HTTP ceiling)',
};

function xml(text: string): string {
  return text
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;')
    .replace(/"/g, '&quot;');
}

/** A horizontal bar chart, linear scale, value printed on every bar: no dependency needed. */
export function renderSvg(report: BenchReport): string {
  const width = 960;
  const labelWidth = 380;
  const valueWidth = 130;
  const barArea = width - labelWidth - valueWidth - 20;
  const rowHeight = 34;
  const top = 64;
  const rows = report.scenarios;
  const legendTop = top + rows.length * rowHeight + 16;
  const height = legendTop + 3 * 20 + 24;
  const max = Math.max(1, ...rows.map((s) => (s.status === 'ok' ? (s.throughput ?? 0) : 0)));

  const parts: string[] = [];
  parts.push(
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="Helvetica, Arial, sans-serif" font-size="13">`,
    `<rect width="${width}" height="${height}" fill="#ffffff"/>`,
    `<text x="20" y="28" font-size="18" font-weight="bold">Throughput per scenario (successful responses per second)</text>`,
    `<text x="20" y="48" fill="#555">${xml(
      `${report.date.slice(0, 10)} · ${report.cpus} CPUs · node ${report.node} · ${report.connections} connections · ${report.durationS} s per scenario`,
    )}</text>`,
  );
  rows.forEach((s, index) => {
    const y = top + index * rowHeight;
    const label = `${s.id}. ${s.title}`;
    parts.push(
      `<text x="${labelWidth - 10}" y="${y + 21}" text-anchor="end">${xml(truncate(label, 56))}</text>`,
    );
    if (s.status !== 'ok' || s.throughput === null) {
      parts.push(
        `<text x="${labelWidth}" y="${y + 21}" fill="#b45309" font-style="italic">${xml(
          s.status === 'skipped' ? 'skipped' : 'failed',
        )}</text>`,
      );
      return;
    }
    const barWidth = Math.max(1, (s.throughput / max) * barArea);
    parts.push(
      `<rect x="${labelWidth}" y="${y + 6}" width="${barWidth.toFixed(1)}" height="${rowHeight - 12}" fill="${COLORS[s.target]}" rx="2"/>`,
      `<text x="${(labelWidth + barWidth + 8).toFixed(1)}" y="${y + 21}" font-weight="bold">${xml(
        `${fmtInt(s.throughput)}${s.kind === 'reads' ? ' reads/s' : '/s'}`,
      )}</text>`,
    );
  });
  (['service', 'row-lock', 'canned'] as Target[]).forEach((target, index) => {
    const y = legendTop + index * 20;
    parts.push(
      `<rect x="${labelWidth}" y="${y}" width="14" height="14" fill="${COLORS[target]}"/>`,
      `<text x="${labelWidth + 22}" y="${y + 12}">${xml(LEGEND[target])}</text>`,
    );
  });
  parts.push('</svg>', '');
  return parts.join('\n');
}

function truncate(text: string, length: number): string {
  return text.length <= length ? text : `${text.slice(0, length - 1)}…`;
}

export function writeReports(directory: string, report: BenchReport): void {
  writeFileSync(join(directory, 'latest.md'), renderMarkdown(report));
  writeFileSync(join(directory, 'latest.json'), `${JSON.stringify(report, null, 2)}\n`);
  writeFileSync(join(directory, 'throughput.svg'), renderSvg(report));
}
