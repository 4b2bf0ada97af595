/**
 * The soak's figures: per-minute windows of latency (perf_hooks histograms) and answers, the 10 s
 * samples of every instance, the memory verdict, and the soak's page for the report writer.
 */
import { createHistogram, RecordableHistogram } from 'node:perf_hooks';
import type { SoakReport } from '../soak';
import { environment, fmt, fmtInt, table } from './report';
import { KINDS, type Kind } from './soak-workload';

/** Answers of some kinds of request: latency in µs, counts by status label, failures. */
export class Stats {
  readonly latency: RecordableHistogram = createHistogram();
  readonly statuses: Record<string, number> = {};
  errors = 0;
  timeouts = 0;

  add(other: Stats): this {
    this.latency.add(other.latency);
    for (const [label, n] of Object.entries(other.statuses)) {
      this.statuses[label] = (this.statuses[label] ?? 0) + n;
    }
    this.errors += other.errors;
    this.timeouts += other.timeouts;
    return this;
  }
}

/** What was answered during one minute (by completion time), per kind of request. */
export class Window {
  readonly kinds = new Map<Kind, Stats>(KINDS.map((kind) => [kind, new Stats()]));
  dropped = 0;

  of(...kinds: Kind[]): Stats {
    return kinds.reduce((total, kind) => total.add(this.kinds.get(kind)!), new Stats());
  }
}

export function figures({ statuses, latency }: Stats, seconds: number) {
  const requests = Object.values(statuses).reduce((a, b) => a + b, 0);
  const ms = (us: number) => (latency.count > 0 ? Math.round(us / 10) / 100 : null);
  const q = (p: number) => latency.percentile(p);
  const [p50Ms, p99Ms, maxMs] = [q(50), q(99), latency.max].map(ms);
  return { requests, perS: requests / seconds, statuses: { ...statuses }, p50Ms, p99Ms, maxMs };
}

export const countOf = (statuses: Record<string, number>, prefix: string): number =>
  Object.entries(statuses).reduce((n, [label, c]) => (label.startsWith(prefix) ? n + c : n), 0);

/** What the figures need of a 10 s sample (soak.ts takes them). */
type Sampled = { tS: number; instances: Array<{ rssMb: number | null }> };

export type MinuteRow = ReturnType<typeof minuteRow>;

export function minuteRow(minute: number, seconds: number, w: Window, samples: Sampled[]) {
  const last = [...samples].reverse().find((s) => s.tS <= minute * 60 + 1);
  return {
    minute,
    // Replays also answer 201 but sell nothing: they are labelled "201 replayed".
    soldPerS: (w.of('purchase', 'idempotent').statuses['201'] ?? 0) / seconds,
    purchases: figures(w.of('purchase'), seconds),
    reads: figures(w.of('read-option', 'read-purchase'), seconds),
    statuses: w.of(...KINDS).statuses,
    dropped: w.dropped,
    rssMb: last?.instances.map((i) => i.rssMb) ?? [],
  };
}

// Memory verdict

export const MEMORY_TOLERANCE = 0.1;
export const SHORT_RUN =
  'A run shorter than 5 minutes has few samples in the memory windows: its memory verdict says little.';
const mean = (v: number[]) => (v.length ? v.reduce((a, b) => a + b, 0) / v.length : null);
const max = (v: number[]) => (v.length ? Math.max(...v) : null);
const ratio = (a: number | null, b: number | null) => (a === null || !b ? null : a / b);

/** Least-squares slope, per minute, of (seconds, MB) points. */
function slopePerMinute(points: Array<[number, number]>): number | null {
  const [mx, my] = [0, 1].map((k) => points.reduce((s, p) => s + p[k], 0) / points.length);
  const den = points.reduce((s, [x]) => s + (x - mx) ** 2, 0);
  const num = points.reduce((s, [x, y]) => s + (x - mx) * (y - my), 0);
  return points.length < 3 || den === 0 ? null : (num / den) * 60;
}

/**
 * "Flat after warm-up", for a run of D seconds, on every instance: the peaks do not grow (the
 * highest RSS of [D/2, D] is within +10% of the highest of the baseline [D/10, 3D/10), minutes 2–3
 * of 10) and the level does not grow (the mean of [7D/10, D] is within +10% of the baseline's
 * mean). Peaks with peaks and means with means, because RSS follows the V8 heap's sawtooth.
 */
export function memoryVerdict(samples: Sampled[], d: number, names: string[]) {
  const instances = names.map((name, index) => {
    const rss = samples.flatMap((s): Array<[number, number]> => {
      const v = s.instances[index]?.rssMb;
      return v === null || v === undefined ? [] : [[s.tS, v]];
    });
    const within =
      (from: number, to: number, end = true) =>
      (t: number) =>
        t >= from - 0.5 && (end ? t <= to + 1 : t < to - 0.5);
    const at = (from: number, to: number, end = true) =>
      rss.filter(([t]) => within(from, to, end)(t)).map(([, v]) => v);
    const baseline = at(d / 10, (3 * d) / 10, false);
    const [baselineMeanMb, baselineMaxMb] = [mean(baseline), max(baseline)];
    const [lateMaxMb, endMeanMb] = [max(at(d / 2, d)), mean(at((7 * d) / 10, d))];
    const peakRatio = ratio(lateMaxMb, baselineMaxMb);
    const levelRatio = ratio(endMeanMb, baselineMeanMb);
    const pass = [peakRatio, levelRatio].every((r) => r !== null && r <= 1 + MEMORY_TOLERANCE);
    const [startMb, endMb] = [rss[0]?.[1] ?? null, rss[rss.length - 1]?.[1] ?? null];
    const slopeMbPerMin = slopePerMinute(rss.filter(([t]) => t >= d / 3 - 0.5));
    const windows = { baselineMeanMb, baselineMaxMb, lateMaxMb, endMeanMb, peakRatio, levelRatio };
    return { name, startMb, endMb, ...windows, slopeMbPerMin, pass };
  });
  return { durationS: d, instances, pass: instances.every((i) => i.pass) };
}

// The report

const range = (values: Array<number | null>): string => {
  const known = values.filter((v): v is number => v !== null);
  return known.length ? `${fmt(Math.min(...known), 1)}–${fmt(Math.max(...known), 1)}` : 'n/a';
};
const answers = (s: Record<string, number>) =>
  Object.entries(s)
    .map(([label, n]) => `${label}: ${fmtInt(n)}`)
    .join(', ');

function tables(r: SoakReport): string {
  const n = (m: { statuses: Record<string, number> }, prefix: string) =>
    fmtInt(countOf(m.statuses, prefix));
  const minutes = r.minutes.map(
    ({ purchases: p, ...m }) =>
      `| ${m.minute} | ${fmt(m.soldPerS)} | ${fmt(p.perS)} | ${fmt(p.p50Ms, 1)} | ${fmt(p.p99Ms, 1)} | ${fmt(m.reads.perS)} | ${fmt(m.reads.p99Ms, 1)} | ${n(m, '400')} | ${n(m, '409')} / ${n(m, '422')} | ${n(m, '5')} | ${fmtInt(m.dropped)} | ${m.rssMb.map((v) => fmt(v)).join(' / ')} |`,
  );
  const totals = Object.entries(r.totals).map(
    ([kind, f]) =>
      `| ${kind} | ${fmtInt(f.requests)} | ${fmt(f.perS)} | ${fmt(f.p50Ms, 1)} | ${fmt(f.p99Ms, 1)} | ${fmt(f.maxMs, 1)} | ${answers(f.statuses)} |`,
  );
  const memory = r.memory.instances.map(
    (i) =>
      `| ${i.name} | ${fmt(i.startMb)} → ${fmt(i.endMb)} | ${fmt(i.baselineMeanMb, 1)} / ${fmt(i.baselineMaxMb, 1)} | ${fmt(i.lateMaxMb, 1)} | ${fmt(i.peakRatio, 3)} | ${fmt(i.endMeanMb, 1)} | ${fmt(i.levelRatio, 3)} | ${fmt(i.slopeMbPerMin, 2)} | ${i.pass ? 'yes' : '**no**'} |`,
  );
  const percent = MEMORY_TOLERANCE * 100;
  return `## Per minute

${table(`min | sold/s (201) | purchase req/s | p50 ms | p99 ms | reads/s | read p99 ms | 400 | 409 / 422 | 5xx | dropped | RSS MB (${r.instances.map((i) => i.name).join(' / ')})`, minutes)}

sold/s: 201s that sold (plain, and the first of each idempotency key; replays sell nothing); purchase req/s, p50, p99: plain purchases (201 or 400); reads: both GETs; 400, 409, 422, 5xx: answers of every kind; RSS: the last 10 s sample of the minute.

## Whole run

${table('requests | count | per s | p50 ms | p99 ms | max ms | answers', totals)}

5xx: **${fmtInt(r.fiveXx)}**; transport errors: ${fmtInt(r.errors)} (timeouts ${fmtInt(r.timeouts)}); abandoned at the end: ${fmtInt(r.load.abandoned)}.

## Memory

**${r.memory.pass ? 'Flat after warm-up' : 'NOT flat'}.** RSS (VmRSS, every 10 s) is flat on an instance when the highest RSS of the second half is at most ${percent}% above the highest of the baseline [D/10, 3D/10) (minutes 2–3 of 10, after a minute of warm-up), and the mean of the last 3/10 at most ${percent}% above the baseline's mean: peaks with peaks, means with means, as RSS follows the V8 heap's sawtooth. The slope over the last two thirds is reported, not judged. Every 10 s sample (heap, actors, queue depth, pool, loop lag, CPU, of every instance) is in soak.json.

${table('instance | RSS start → end MB | baseline mean / max | late max | peak ratio | end mean | level ratio | slope MB/min | flat', memory)}`;
}

export function renderSoak(r: SoakReport): string {
  const [a, ia, i, cpu] = [r.audit, r.idempotencyAudit, r.idempotency, r.cpuUsPerRequest];
  const p = (read: (m: MinuteRow) => number | null) => range(r.minutes.map(read));
  const rss = r.memory.instances.map((x) => `${fmt(x.startMb)} → ${fmt(x.endMb)}`).join(', ');
  const odd = r.anomalies.map(
    (x) => `${x.what}: ${x.count} (e.g. \`${x.examples[0]?.replace(/[`|]/g, "'")}\`)`,
  );
  const instances = r.instances.map((x) => `${x.name} (${x.url}, pid ${x.pid})`).join(', ');
  const notes = r.notes.map((note) => `- ${note}`).join('\n');
  return `# Soak results

**Verdict: ${r.verdict.pass ? 'PASS' : 'FAIL'}**${r.verdict.failures.length ? ` — ${r.verdict.failures.join('; ')}` : ''}.

${fmtInt(r.durationS)} s of mixed load at a steady ${fmtInt(r.rate.perS)} requests/s (${r.rate.source}) on ${r.instances.length} instances sharing one PostgreSQL, loopback only; achieved ${fmt(r.load.achievedPerS)} requests/s, ${fmtInt(r.load.sent)} requests, ${fmtInt(r.load.dropped)} not sent because 256 were in flight. Latency: from writing the request to reading the answer, in the minute the answer arrived.

Headline: per-minute p99 of purchases ${p((m) => m.purchases.p99Ms)} ms (p50 ${p((m) => m.purchases.p50Ms)} ms), of reads ${p((m) => m.reads.p99Ms)} ms; ${fmtInt(r.fiveXx)} 5xx; CPU per answered request: ${fmt(cpu.instances)} µs in the instances, ${fmt(cpu.postgres)} µs in PostgreSQL; RSS start → end ${rss} MB (${r.memory.pass ? 'flat after warm-up' : 'NOT flat'}); audits ${a.ok && ia.ok ? 'ok' : 'FAILED'}.

${tables(r)}

## Audit

- Purchases: **${a.summary}** — ${fmtInt(a.acknowledged)} acknowledged with 201, ${fmtInt(a.rows)} rows, sold = ${fmtInt(a.sold)}: every acknowledged purchase is in \`purchases\` (for its option), SUM(quantity) == purchased <= allocation on every option.
- Idempotency: **${ia.ok ? 'ok' : `FAILED: ${ia.problems.join('; ')}`}** — ${fmtInt(ia.keys)} keys (${fmtInt(ia.with201)} with a 201, ${fmtInt(ia.refused)} refused, ${fmtInt(ia.unknown)} without a definitive answer); most purchases for one key (each buys with a user of its own): ${fmtInt(ia.maxPurchasesPerKey)}; each key's 201s named the purchase \`idempotency_keys\` records.
- Replays verified: ${fmtInt(i.replaysVerified)}; deliberate 409 \`idempotency_key_in_flight\`: ${fmtInt(i.inFlightConflicts)}; deliberate 422 \`idempotency_key_reused\`: ${fmtInt(i.reusedRejected)}.
- Sum of \`ticket_purchases_accepted_total\` over the instances: ${fmt(r.acceptedTotal)} (purchase rows: ${fmtInt(a.rows)}).
- Answers outside the contract: ${odd.length ? odd.join('; ') : 'none'}.

## Workload

\`\`\`json
${JSON.stringify(r.workload, null, 1)}
\`\`\`
${notes ? `\n## Notes\n\n${notes}\n` : ''}
${environment(r, [`- instances: ${instances}; LOG_LEVEL=warn`])}`;
}
