/**
 * The soak's figures: per-minute windows of latency and status counts, the 10-second samples of
 * each instance, the memory verdict, and their rendering (`soak.md`, `soak.json`, `soak-rss.svg`).
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { AuditResult } from './database';
import { LatencyHistogram } from './soak-load';
import type { Kind } from './soak-workload';

// ---------------------------------------------------------------------------------------------
// Windows: what was answered during one minute (by completion time), per kind of request.

export class KindStats {
  readonly latency = new LatencyHistogram();
  /** By "status code", e.g. "201", "400 invalid_purchase_quantity". */
  readonly statuses: Record<string, number> = {};
  errors = 0;
  timeouts = 0;

  merge(other: KindStats): void {
    this.latency.merge(other.latency);
    for (const [label, count] of Object.entries(other.statuses)) {
      this.statuses[label] = (this.statuses[label] ?? 0) + count;
    }
    this.errors += other.errors;
    this.timeouts += other.timeouts;
  }
}

export class Window {
  readonly kinds = new Map<Kind, KindStats>();
  dropped = 0;

  of(kind: Kind): KindStats {
    let stats = this.kinds.get(kind);
    if (!stats) {
      stats = new KindStats();
      this.kinds.set(kind, stats);
    }
    return stats;
  }

  /** The kinds merged into one (e.g. both kinds of reads). */
  merged(kinds: Kind[]): KindStats {
    const total = new KindStats();
    for (const kind of kinds) {
      const stats = this.kinds.get(kind);
      if (stats) total.merge(stats);
    }
    return total;
  }

  merge(other: Window): void {
    for (const [kind, stats] of other.kinds) this.of(kind).merge(stats);
    this.dropped += other.dropped;
  }
}

export interface KindFigures {
  requests: number;
  perS: number;
  /** Answers per status label. */
  statuses: Record<string, number>;
  p50Ms: number | null;
  p99Ms: number | null;
  maxMs: number | null;
  errors: number;
  timeouts: number;
}

export function kindFigures(stats: KindStats, seconds: number): KindFigures {
  const requests = Object.values(stats.statuses).reduce((sum, n) => sum + n, 0);
  return {
    requests,
    perS: seconds > 0 ? requests / seconds : 0,
    statuses: { ...stats.statuses },
    p50Ms: round(stats.latency.percentile(0.5)),
    p99Ms: round(stats.latency.percentile(0.99)),
    maxMs: round(stats.latency.count ? stats.latency.max : null),
    errors: stats.errors,
    timeouts: stats.timeouts,
  };
}

const round = (value: number | null, digits = 2): number | null =>
  value === null ? null : Math.round(value * 10 ** digits) / 10 ** digits;

const count5xx = (statuses: Record<string, number>): number =>
  Object.entries(statuses)
    .filter(([label]) => label.startsWith('5'))
    .reduce((sum, [, n]) => sum + n, 0);

const countStatus = (statuses: Record<string, number>, prefix: string): number =>
  Object.entries(statuses)
    .filter(([label]) => label.startsWith(prefix))
    .reduce((sum, [, n]) => sum + n, 0);

export interface MinuteRow {
  minute: number;
  fromS: number;
  toS: number;
  /** Plain purchases (201 + 400 answers): the latency figures are of these. */
  purchases: KindFigures;
  /** 201 answers of plain and first-time idempotent purchases, per second. */
  purchases201PerS: number;
  idempotent: KindFigures;
  /** GET /ticket_options/:id and GET /purchases/:id together. */
  reads: KindFigures;
  creates: KindFigures;
  /** Every answer of the minute by status label, all kinds together. */
  statuses: Record<string, number>;
  fiveXx: number;
  errors: number;
  timeouts: number;
  dropped: number;
  /** Per instance, the last 10-second sample of the minute. */
  rssMb: Array<number | null>;
  heapUsedMb: Array<number | null>;
}

export function minuteRow(
  minute: number,
  fromS: number,
  toS: number,
  window: Window,
  samples: Sample[],
): MinuteRow {
  const seconds = toS - fromS;
  const purchases = kindFigures(window.of('purchase'), seconds);
  const idempotent = kindFigures(window.of('idempotent'), seconds);
  const all = window.merged(['purchase', 'idempotent', 'read-option', 'read-purchase', 'create']);
  const last = [...samples].reverse().find((sample) => sample.tS <= toS + 1);
  return {
    minute,
    fromS,
    toS,
    purchases,
    // Replays also answer 201 but sell nothing: they are labelled "201 replayed".
    purchases201PerS:
      seconds > 0
        ? ((purchases.statuses['201'] ?? 0) + (idempotent.statuses['201'] ?? 0)) / seconds
        : 0,
    idempotent,
    reads: kindFigures(window.merged(['read-option', 'read-purchase']), seconds),
    creates: kindFigures(window.of('create'), seconds),
    statuses: { ...all.statuses },
    fiveXx: count5xx(all.statuses),
    errors: all.errors,
    timeouts: all.timeouts,
    dropped: window.dropped,
    rssMb: last ? last.instances.map((instance) => instance.rssMb) : [],
    heapUsedMb: last ? last.instances.map((instance) => instance.heapUsedMb) : [],
  };
}

// ---------------------------------------------------------------------------------------------
// Samples every 10 s

export interface InstanceSample {
  rssMb: number | null;
  heapUsedMb: number | null;
  heapTotalMb: number | null;
  actorsLive: number | null;
  queueDepth: number | null;
  poolUsed: number | null;
  poolFree: number | null;
  poolPendingAcquires: number | null;
  eventLoopLagP99Ms: number | null;
  purchasesAccepted: number | null;
  purchasesRefused: number | null;
  /** process_cpu_seconds_total: CPU time used since the process started. */
  cpuSeconds: number | null;
}

export interface Sample {
  /** Seconds since the soak load started. */
  tS: number;
  instances: InstanceSample[];
  /** The load generator's own process. */
  generatorRssMb: number;
  generatorCpuSeconds: number;
}

// ---------------------------------------------------------------------------------------------
// Memory verdict

export const MEMORY_TOLERANCE = 0.1;

export interface MemoryFigures {
  name: string;
  startMb: number | null;
  endMb: number | null;
  maxMb: number | null;
  /** RSS over the baseline window [D/10, 3D/10) (minutes 2–3 of a 10-minute run): mean, max. */
  baselineMeanMb: number | null;
  baselineMaxMb: number | null;
  /** Highest RSS of the second half [D/2, D]. */
  lateMaxMb: number | null;
  /** Mean RSS of the last 3/10 [7D/10, D] (the last 3 minutes of a 10-minute run). */
  endMeanMb: number | null;
  /** lateMax / baselineMax: do the peaks grow? */
  peakRatio: number | null;
  /** endMean / baselineMean: does the level grow? */
  levelRatio: number | null;
  /** Least-squares slope of RSS over the last two thirds, MB per minute. */
  slopeMbPerMin: number | null;
  heapBaselineMeanMb: number | null;
  heapEndMeanMb: number | null;
  heapSlopeMbPerMin: number | null;
  pass: boolean;
}

export interface MemoryVerdict {
  definition: string;
  baselineWindowS: [number, number];
  lateWindowS: [number, number];
  endWindowS: [number, number];
  instances: MemoryFigures[];
  pass: boolean;
}

const mean = (values: number[]): number | null =>
  values.length === 0 ? null : values.reduce((sum, v) => sum + v, 0) / values.length;

const maxOf = (values: number[]): number | null =>
  values.length === 0 ? null : Math.max(...values);

const ratioOf = (a: number | null, b: number | null): number | null =>
  a === null || b === null || b === 0 ? null : a / b;

function slopePerMinute(points: Array<[number, number]>): number | null {
  if (points.length < 3) return null;
  const mx = mean(points.map(([x]) => x))!;
  const my = mean(points.map(([, y]) => y))!;
  let num = 0;
  let den = 0;
  for (const [x, y] of points) {
    num += (x - mx) * (y - my);
    den += (x - mx) ** 2;
  }
  return den === 0 ? null : (num / den) * 60;
}

/**
 * "Flat after warm-up", for a run of D seconds, on every instance: the peaks do not grow (the
 * highest RSS of the second half [D/2, D] is within +10% of the highest of the baseline window
 * [D/10, 3D/10), minutes 2–3 of a 10-minute run, after a minute of warm-up) and the level does not
 * grow (the mean RSS of the last 3/10 of the run is within +10% of the baseline's mean). Peaks are
 * compared with peaks and means with means because RSS follows the V8 heap's sawtooth (tens of MB
 * between two collections): a max against a mean would fail a flat sawtooth.
 */
export function memoryVerdict(
  samples: Sample[],
  durationS: number,
  names: string[],
): MemoryVerdict {
  const baselineWindow: [number, number] = [durationS / 10, (3 * durationS) / 10];
  const lateWindow: [number, number] = [durationS / 2, durationS];
  const endWindow: [number, number] = [(7 * durationS) / 10, durationS];
  const instances = names.map((name, index): MemoryFigures => {
    const series = (read: (s: InstanceSample) => number | null): Array<[number, number]> =>
      samples.flatMap((sample) => {
        const value = read(sample.instances[index]);
        return value === null ? [] : [[sample.tS, value] as [number, number]];
      });
    const rss = series((s) => s.rssMb);
    const heap = series((s) => s.heapUsedMb);
    // The baseline window is half-open, the others end with the run (its last sample included).
    const inWindow = (
      points: Array<[number, number]>,
      [from, to]: [number, number],
      closed: boolean,
    ): number[] =>
      points
        .filter(([t]) => t >= from - 0.5 && (closed ? t <= to + 1 : t < to - 0.5))
        .map(([, v]) => v);
    const baselineMeanMb = mean(inWindow(rss, baselineWindow, false));
    const baselineMaxMb = maxOf(inWindow(rss, baselineWindow, false));
    const lateMaxMb = maxOf(inWindow(rss, lateWindow, true));
    const endMeanMb = mean(inWindow(rss, endWindow, true));
    const peakRatio = ratioOf(lateMaxMb, baselineMaxMb);
    const levelRatio = ratioOf(endMeanMb, baselineMeanMb);
    const lastTwoThirds = (points: Array<[number, number]>) =>
      points.filter(([t]) => t >= durationS / 3 - 0.5);
    return {
      name,
      startMb: rss[0]?.[1] ?? null,
      endMb: rss[rss.length - 1]?.[1] ?? null,
      maxMb: maxOf(rss.map(([, v]) => v)),
      baselineMeanMb: round(baselineMeanMb, 1),
      baselineMaxMb,
      lateMaxMb,
      endMeanMb: round(endMeanMb, 1),
      peakRatio: round(peakRatio, 3),
      levelRatio: round(levelRatio, 3),
      slopeMbPerMin: round(slopePerMinute(lastTwoThirds(rss)), 2),
      heapBaselineMeanMb: round(mean(inWindow(heap, baselineWindow, false)), 1),
      heapEndMeanMb: round(mean(inWindow(heap, endWindow, true)), 1),
      heapSlopeMbPerMin: round(slopePerMinute(lastTwoThirds(heap)), 2),
      pass:
        peakRatio !== null &&
        levelRatio !== null &&
        peakRatio <= 1 + MEMORY_TOLERANCE &&
        levelRatio <= 1 + MEMORY_TOLERANCE,
    };
  });
  const s = (t: number): string => `${Math.round(t)} s`;
  return {
    definition:
      'RSS (VmRSS, sampled every 10 s) is "flat after warm-up" on an instance when both hold: ' +
      `the peaks do not grow — the highest RSS of [${s(lateWindow[0])}, ${s(lateWindow[1])}] is at most ` +
      `${MEMORY_TOLERANCE * 100}% above the highest of the baseline [${s(baselineWindow[0])}, ${s(baselineWindow[1])}) ` +
      '(minutes 2–3 of a 10-minute run; the first minute is warm-up) — and the level does not grow — the ' +
      `mean RSS of [${s(endWindow[0])}, ${s(endWindow[1])}] is at most ${MEMORY_TOLERANCE * 100}% above the ` +
      "baseline's mean. Peaks are compared with peaks and means with means because RSS follows the V8 " +
      "heap's sawtooth. The least-squares slope over the last two thirds of the run, and the V8 heap " +
      '(nodejs_heap_size_used_bytes), are reported alongside, not part of the verdict.',
    baselineWindowS: baselineWindow,
    lateWindowS: lateWindow,
    endWindowS: endWindow,
    instances,
    pass: instances.every((instance) => instance.pass),
  };
}

// ---------------------------------------------------------------------------------------------
// The report

export interface IdempotencyAudit {
  ok: boolean;
  keys: number;
  /** Keys whose requests got a 201 (a purchase id). */
  with201: number;
  /** Keys answered 400 invalid_purchase_quantity. */
  refused: number;
  /** Keys without a definitive answer (transport failure): at most one purchase allowed. */
  unknown: number;
  /** Most purchase rows found for one key (its own user id): must be 1. */
  maxPurchasesPerKey: number;
  problems: string[];
}

export interface SoakReport {
  command: string;
  /** The commit measured, and whether src/ had uncommitted changes (built into dist/ too). */
  revision: string;
  date: string;
  node: string;
  cpus: number;
  cpuModel: string;
  platform: string;
  database: string;
  durationS: number;
  sampleIntervalS: number;
  instances: Array<{ name: string; url: string; pid: number; exited: string | null }>;
  rate: {
    targetPerS: number;
    source: string;
    capacityPerS: number | null;
    calibration: {
      concurrency: number;
      /** The probe's length; answers/s are counted over its last `measuredS` seconds. */
      probeS: number;
      measuredS: number;
      statuses: Record<string, number>;
    } | null;
  };
  workload: {
    mix: Record<Kind, number>;
    hotShare: number;
    hotOptions: number;
    limitedHotAllocation: number | null;
    coldOptionsUpFront: number;
    coldAllocations: number[];
    optionsCreatedDuringRun: number;
  };
  load: { sent: number; dropped: number; abandoned: number; achievedPerS: number };
  minutes: MinuteRow[];
  totals: Record<'purchases' | 'idempotent' | 'reads' | 'creates', KindFigures> & {
    statuses: Record<string, number>;
    fiveXx: number;
    errors: number;
    timeouts: number;
  };
  samples: Sample[];
  idempotency: {
    keysIssued: number;
    replaysVerified: number;
    inFlightConflicts: number;
    reusedRejected: number;
  };
  anomalies: Array<{ what: string; count: number; examples: string[] }>;
  audit: AuditResult;
  idempotencyAudit: IdempotencyAudit;
  counters: { acceptedTotal: number | null; purchaseRows: number; match: boolean | null };
  databaseAtEnd: {
    sizeMb: number | null;
    purchases: number | null;
    idempotencyKeys: number | null;
  };
  memory: MemoryVerdict;
  verdict: { pass: boolean; failures: string[] };
  passedThroughEnv: Record<string, string>;
  elapsedS: number;
  notes: string[];
}

const fmtInt = (value: number): string => Math.round(value).toLocaleString('en-US');
const fmt = (value: number | null, digits = 0): string =>
  value === null ? 'n/a' : digits === 0 ? fmtInt(value) : value.toFixed(digits);
const ms = (value: number | null): string =>
  value === null ? 'n/a' : value < 10 ? value.toFixed(1) : fmtInt(value);
const list = (values: Array<number | null>, digits = 0): string =>
  values.map((v) => fmt(v, digits)).join(' / ');

function statusesText(statuses: Record<string, number>): string {
  const entries = Object.entries(statuses).sort(([a], [b]) => a.localeCompare(b));
  return entries.length === 0
    ? '—'
    : entries.map(([label, n]) => `${label}: ${fmtInt(n)}`).join(', ');
}

export function renderMarkdown(report: SoakReport): string {
  const lines: string[] = [];
  const names = report.instances.map((instance) => instance.name);
  lines.push('# Soak results', '');
  lines.push(
    `**Verdict: ${report.verdict.pass ? 'PASS' : 'FAIL'}**` +
      (report.verdict.failures.length ? ` — ${report.verdict.failures.join('; ')}` : '') +
      '.',
    '',
  );
  lines.push(
    `${fmtInt(report.durationS)} s of mixed load at a steady ${fmtInt(report.rate.targetPerS)} requests/s ` +
      `(${report.rate.source}) on ${report.instances.length} instances sharing one PostgreSQL, loopback only; ` +
      `achieved ${fmt(report.load.achievedPerS)} requests/s, ${fmtInt(report.load.sent)} requests, ` +
      `${fmtInt(report.load.dropped)} not sent because 256 were already in flight. ` +
      'Latencies are from the request being written to the answer being read, per request, in ' +
      'the minute the answer arrived.',
    '',
  );

  const range = (values: Array<number | null>): string => {
    const known = values.filter((v): v is number => v !== null);
    return known.length === 0 ? 'n/a' : `${ms(Math.min(...known))}–${ms(Math.max(...known))}`;
  };
  lines.push(
    `Headline: per-minute p99 of purchases ${range(report.minutes.map((m) => m.purchases.p99Ms))} ms ` +
      `(p50 ${range(report.minutes.map((m) => m.purchases.p50Ms))} ms), of reads ` +
      `${range(report.minutes.map((m) => m.reads.p99Ms))} ms; ` +
      `${fmtInt(report.totals.fiveXx)} 5xx; RSS start → end ` +
      `${report.memory.instances.map((i) => `${fmt(i.startMb)} → ${fmt(i.endMb)}`).join(', ')} MB ` +
      `(${report.memory.pass ? 'flat after warm-up' : 'NOT flat'}); audits ` +
      `${report.audit.ok && report.idempotencyAudit.ok ? 'ok' : 'FAILED'}.`,
    '',
  );

  lines.push('## Per minute', '');
  lines.push(
    `| min | purchases/s (201) | purchase req/s | p50 ms | p99 ms | reads/s | read p50 | read p99 | 400 refused (all kinds) | 409 / 422 (deliberate) | 5xx | errors | RSS MB (${names.join(' / ')}) | heap MB |`,
    '|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---|',
  );
  for (const m of report.minutes) {
    lines.push(
      `| ${m.minute} | ${fmt(m.purchases201PerS)} | ${fmt(m.purchases.perS)} | ${ms(m.purchases.p50Ms)} | ` +
        `${ms(m.purchases.p99Ms)} | ${fmt(m.reads.perS)} | ${ms(m.reads.p50Ms)} | ${ms(m.reads.p99Ms)} | ` +
        `${fmtInt(countStatus(m.statuses, '400 invalid_purchase_quantity'))} | ` +
        `${fmtInt(countStatus(m.statuses, '409'))} / ${fmtInt(countStatus(m.statuses, '422'))} | ` +
        `${fmtInt(m.fiveXx)} | ${fmtInt(m.errors)} | ${list(m.rssMb)} | ${list(m.heapUsedMb)} |`,
    );
  }
  lines.push(
    '',
    'purchases/s (201) counts purchases sold (plain 201s and the first 201 of each idempotency ' +
      'key; replays sell nothing); purchase req/s, p50 and p99 are of the plain purchases ' +
      '(`POST /purchases` and `POST /ticket_options/:id/purchases`, 201 or 400 answers); reads ' +
      'are `GET /ticket_options/:id` and `GET /purchases/:id` together. RSS and heap: the last ' +
      '10-second sample of the minute.',
  );

  const t = report.totals;
  lines.push('', '## Whole run', '');
  lines.push(
    '| requests | count | per s | p50 ms | p99 ms | max ms | answers |',
    '|---|---:|---:|---:|---:|---:|---|',
  );
  for (const [label, figures] of [
    ['plain purchases', t.purchases],
    ['idempotent purchases', t.idempotent],
    ['reads', t.reads],
    ['creates', t.creates],
  ] as Array<[string, KindFigures]>) {
    lines.push(
      `| ${label} | ${fmtInt(figures.requests)} | ${fmt(figures.perS)} | ${ms(figures.p50Ms)} | ${ms(figures.p99Ms)} | ` +
        `${ms(figures.maxMs)} | ${statusesText(figures.statuses)} |`,
    );
  }
  lines.push(
    '',
    `5xx: **${fmtInt(t.fiveXx)}**; transport errors: ${fmtInt(t.errors)} (timeouts ${fmtInt(t.timeouts)}); ` +
      `requests abandoned at the end: ${fmtInt(report.load.abandoned)}.`,
  );

  lines.push('', '## Memory', '');
  const mem = report.memory;
  lines.push(`**${mem.pass ? 'Flat after warm-up' : 'NOT flat'}.** ${mem.definition}`, '');
  lines.push(
    '| instance | start MB | end MB | max MB | baseline mean / max MB | late max MB | peak ratio | end mean MB | level ratio | slope MB/min | heap baseline → end mean MB | heap slope MB/min | flat |',
    '|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|',
  );
  for (const i of mem.instances) {
    lines.push(
      `| ${i.name} | ${fmt(i.startMb, 1)} | ${fmt(i.endMb, 1)} | ${fmt(i.maxMb, 1)} | ` +
        `${fmt(i.baselineMeanMb, 1)} / ${fmt(i.baselineMaxMb, 1)} | ${fmt(i.lateMaxMb, 1)} | ${fmt(i.peakRatio, 3)} | ` +
        `${fmt(i.endMeanMb, 1)} | ${fmt(i.levelRatio, 3)} | ${fmt(i.slopeMbPerMin, 2)} | ` +
        `${fmt(i.heapBaselineMeanMb, 1)} → ${fmt(i.heapEndMeanMb, 1)} | ${fmt(i.heapSlopeMbPerMin, 2)} | ${i.pass ? 'yes' : '**no**'} |`,
    );
  }
  lines.push('', '![RSS over time](soak-rss.svg)', '');

  lines.push('### Every 10 s', '');
  lines.push(
    `| t s | RSS MB (${names.join(' / ')}) | heap used MB | CPU % | live actors | queue depth | pool used / free | pending acquires | loop lag p99 ms | generator RSS MB / CPU % |`,
    '|---:|---|---|---|---|---|---|---|---|---|',
  );
  report.samples.forEach((s, index) => {
    const previous = index > 0 ? report.samples[index - 1] : null;
    const col = (read: (i: InstanceSample) => number | null, digits = 0) =>
      list(s.instances.map(read), digits);
    const cpu = (now: number | null, before: number | null | undefined): number | null =>
      previous && now !== null && before !== null && before !== undefined && s.tS > previous.tS
        ? ((now - before) / (s.tS - previous.tS)) * 100
        : null;
    lines.push(
      `| ${fmt(s.tS)} | ${col((i) => i.rssMb)} | ${col((i) => i.heapUsedMb)} | ` +
        `${list(s.instances.map((i, n) => cpu(i.cpuSeconds, previous?.instances[n]?.cpuSeconds)))} | ` +
        `${col((i) => i.actorsLive)} | ${col((i) => i.queueDepth)} | ` +
        `${s.instances.map((i) => `${fmt(i.poolUsed)}/${fmt(i.poolFree)}`).join(' · ')} | ` +
        `${col((i) => i.poolPendingAcquires)} | ${col((i) => i.eventLoopLagP99Ms, 1)} | ` +
        `${fmt(s.generatorRssMb)} / ${fmt(cpu(s.generatorCpuSeconds, previous?.generatorCpuSeconds))} |`,
    );
  });
  lines.push(
    '',
    'CPU %: CPU time used over the previous interval (100% = one core of the ' +
      `${report.cpus}); loop lag: prom-client's \`nodejs_eventloop_lag_p99_seconds\`.`,
    '',
  );

  lines.push('', '## Audit', '');
  const a = report.audit;
  lines.push(
    `- Purchases: **${a.ok ? 'ok' : a.summary}** — ${fmtInt(a.acknowledged)} purchases acknowledged with 201 ` +
      `(distinct ids), ${fmtInt(a.rows)} rows on the run's options, purchased = ${fmtInt(a.purchased)}. ` +
      'Every acknowledged purchase is in `purchases` (for its option) and on every option ' +
      'SUM(quantity) == purchased <= allocation' +
      (a.unacknowledged > 0
        ? `; ${fmtInt(a.unacknowledged)} rows were never acknowledged to the load generator.`
        : '.'),
  );
  const ia = report.idempotencyAudit;
  lines.push(
    `- Idempotency: **${ia.ok ? 'ok' : `FAILED: ${ia.problems.join('; ')}`}** — ${fmtInt(ia.keys)} keys ` +
      `(${fmtInt(ia.with201)} with a 201, ${fmtInt(ia.refused)} refused, ${fmtInt(ia.unknown)} without a definitive answer); ` +
      `most purchases for one key: ${fmtInt(ia.maxPurchasesPerKey)} (each key buys with its own user id, counted in ` +
      '`purchases`); every 201 of a key carried the same purchase id, which is the one in `idempotency_keys`.',
  );
  const idem = report.idempotency;
  lines.push(
    `- Replays verified (same status, same purchase id, \`Idempotent-Replayed: true\`, on any instance): ` +
      `${fmtInt(idem.replaysVerified)}; deliberate 409 \`idempotency_key_in_flight\`: ${fmtInt(idem.inFlightConflicts)}; ` +
      `deliberate 422 \`idempotency_key_reused\`: ${fmtInt(idem.reusedRejected)}.`,
  );
  const c = report.counters;
  lines.push(
    `- Counters: sum of \`ticket_purchases_accepted_total\` over the instances = ${fmt(c.acceptedTotal)}, ` +
      `purchase rows = ${fmtInt(c.purchaseRows)}: ${c.match === null ? 'n/a' : c.match ? 'equal' : '**different**'}.`,
  );
  if (report.anomalies.length === 0) {
    lines.push('- Answers outside the contract: none.');
  } else {
    lines.push('- Answers outside the contract:');
    for (const anomaly of report.anomalies) {
      const examples = anomaly.examples.map(
        (e) => `\`${escapeCell(e.length > 160 ? `${e.slice(0, 159)}…` : e).replace(/`/g, "'")}\``,
      );
      lines.push(`  - ${anomaly.what}: ${fmtInt(anomaly.count)} (e.g. ${examples.join('; ')})`);
    }
  }

  lines.push('', '## Workload', '');
  const w = report.workload;
  lines.push(
    `- Mix of the request rate: ${Object.entries(w.mix)
      .map(([kind, share]) => `${kind} ${+(share * 100).toFixed(1)}%`)
      .join(', ')}; each request to one of the ${report.instances.length} instances at random.`,
    `- Purchases: half on \`POST /purchases\`, half on \`POST /ticket_options/:id/purchases\`; quantity 1–3 ` +
      `(90%) or 10–50 (10%); ${(w.hotShare * 100).toFixed(0)}% go to ${w.hotOptions} hot options ` +
      `(allocation 2,000,000,000, plus one of ${fmt(w.limitedHotAllocation)} sized to sell out mid-run, ` +
      'a quarter of the hot share), the rest uniformly over the cold options: ' +
      `${fmtInt(w.coldOptionsUpFront)} created up front and ${fmtInt(w.optionsCreatedDuringRun)} created during the run, ` +
      `allocations ${w.coldAllocations.map(fmtInt).join(' / ')} equally likely (small ones sell out: 400 refusals).`,
    '- Idempotent purchases: 55% with a new key (one user id per key), 30% replays of a completed key ' +
      '(same body, any instance: same status and purchase id expected), 7% the key of a completed ' +
      'request with another quantity (422 expected), 8% a duplicate of a request still in flight ' +
      '(409 or a replay expected).',
    '- Reads: `GET /ticket_options/:id` of any option; `GET /purchases/:id` of any purchase answered ' +
      '201 so far, on any instance (must be 200: a 201 is committed).',
  );
  if (report.rate.capacityPerS !== null && report.rate.calibration) {
    lines.push(
      `- Rate: a ${report.rate.calibration.probeS} s closed-loop probe of the same mix with ` +
        `${report.rate.calibration.concurrency} requests in flight, just before the run, measured ` +
        `${fmtInt(report.rate.capacityPerS)} answers/s over its last ${report.rate.calibration.measuredS} s ` +
        `(it is also the warm-up, and its purchases are audited); the soak ran at ${fmtInt(report.rate.targetPerS)}/s.`,
    );
  }

  if (report.notes.length > 0) {
    lines.push('', '## Notes', '');
    for (const note of report.notes) lines.push(`- ${note}`);
  }

  lines.push('', '## Environment', '');
  lines.push(`- command: \`${report.command}\``);
  lines.push(`- revision: ${report.revision}`);
  lines.push(`- date: ${report.date}`);
  lines.push(`- node: ${report.node}; ${report.platform}`);
  lines.push(
    `- CPUs: ${report.cpus} (${report.cpuModel}), shared by the load generator, the instances and PostgreSQL`,
  );
  lines.push(`- database: ${report.database}`);
  const d = report.databaseAtEnd;
  lines.push(
    `- database at the end: ${fmt(d.sizeMb)} MB, ${fmt(d.purchases)} purchases, ${fmt(d.idempotencyKeys)} idempotency keys`,
  );
  lines.push(
    `- instances: ${report.instances.map((i) => `${i.name} (${i.url}, pid ${i.pid})`).join(', ')}; LOG_LEVEL=warn`,
  );
  const passed = Object.entries(report.passedThroughEnv);
  lines.push(
    `- service tuning from the environment: ${passed.length === 0 ? 'none (defaults)' : passed.map(([k, v]) => `${k}=${v}`).join(', ')}`,
  );
  lines.push(`- soak run (after the build check): ${fmtInt(report.elapsedS)} s`);
  lines.push('');
  return lines.join('\n');
}

function escapeCell(text: string): string {
  return text.replace(/\|/g, '\\|').replace(/\n/g, ' ');
}

function xml(text: string): string {
  return text
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;')
    .replace(/"/g, '&quot;');
}

const LINE_COLORS = ['#2563eb', '#dc2626', '#059669'];

/** RSS (solid) and V8 heap used (dashed) of every instance over time, with the verdict's windows. */
export function renderSvg(report: SoakReport): string {
  const width = 960;
  const height = 420;
  const left = 64;
  const right = 24;
  const top = 70;
  const bottom = 56;
  const plotW = width - left - right;
  const plotH = height - top - bottom;
  const maxT = Math.max(report.durationS, ...report.samples.map((s) => s.tS));
  const values = report.samples.flatMap((s) =>
    s.instances.flatMap((i) => [i.rssMb, i.heapUsedMb]).filter((v): v is number => v !== null),
  );
  const step = niceStep(Math.max(1, ...values) * 1.1);
  const maxY = Math.ceil((Math.max(1, ...values) * 1.1) / step) * step;
  const x = (t: number): number => left + (t / maxT) * plotW;
  const y = (v: number): number => top + plotH - (v / maxY) * plotH;
  const mem = report.memory;

  const parts: string[] = [];
  parts.push(
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="Helvetica, Arial, sans-serif" font-size="12">`,
    `<rect width="${width}" height="${height}" fill="#ffffff"/>`,
    `<text x="20" y="26" font-size="17" font-weight="bold">Memory per instance during the soak (RSS solid, V8 heap used dashed), MB</text>`,
    `<text x="20" y="46" fill="#555">${xml(
      `${report.date.slice(0, 10)} · ${report.durationS} s at ${fmtInt(report.rate.targetPerS)} req/s · ${report.cpus} CPUs · ` +
        `memory verdict: ${mem.pass ? 'flat after warm-up' : 'NOT flat'} (criterion: peaks and level within +${MEMORY_TOLERANCE * 100}% of the baseline)`,
    )}</text>`,
  );
  // The verdict's windows.
  const band = ([from, to]: [number, number], color: string, label: string) => {
    parts.push(
      `<rect x="${x(from).toFixed(1)}" y="${top}" width="${(x(to) - x(from)).toFixed(1)}" height="${plotH}" fill="${color}" opacity="0.35"/>`,
      `<text x="${(x(from) + 4).toFixed(1)}" y="${top + 14}" fill="#555">${xml(label)}</text>`,
    );
  };
  band(mem.baselineWindowS, '#e5e7eb', 'baseline');
  band(mem.lateWindowS, '#fef3c7', 'late window');
  // Axes and grid.
  for (let v = 0; v <= maxY + 1e-9; v += step) {
    parts.push(
      `<line x1="${left}" y1="${y(v).toFixed(1)}" x2="${width - right}" y2="${y(v).toFixed(1)}" stroke="#e5e7eb"/>`,
      `<text x="${left - 8}" y="${(y(v) + 4).toFixed(1)}" text-anchor="end" fill="#555">${fmtInt(v)}</text>`,
    );
  }
  const tStep = maxT > 900 ? 300 : maxT > 300 ? 60 : maxT > 60 ? 30 : 10;
  for (let t = 0; t <= maxT + 1e-9; t += tStep) {
    parts.push(
      `<line x1="${x(t).toFixed(1)}" y1="${top + plotH}" x2="${x(t).toFixed(1)}" y2="${top + plotH + 5}" stroke="#555"/>`,
      `<text x="${x(t).toFixed(1)}" y="${top + plotH + 18}" text-anchor="middle" fill="#555">${t}</text>`,
    );
  }
  parts.push(
    `<line x1="${left}" y1="${top + plotH}" x2="${width - right}" y2="${top + plotH}" stroke="#555"/>`,
    `<line x1="${left}" y1="${top}" x2="${left}" y2="${top + plotH}" stroke="#555"/>`,
    `<text x="${left + plotW / 2}" y="${height - 14}" text-anchor="middle" fill="#555">seconds since the soak load started</text>`,
  );
  report.instances.forEach((instance, index) => {
    const color = LINE_COLORS[index % LINE_COLORS.length];
    const path = (read: (i: InstanceSample) => number | null) =>
      report.samples
        .map((s) => [s.tS, read(s.instances[index])] as const)
        .filter((point): point is readonly [number, number] => point[1] !== null)
        .map(([t, v], i) => `${i === 0 ? 'M' : 'L'}${x(t).toFixed(1)},${y(v).toFixed(1)}`)
        .join(' ');
    parts.push(
      `<path d="${path((i) => i.rssMb)}" fill="none" stroke="${color}" stroke-width="2"/>`,
      `<path d="${path((i) => i.heapUsedMb)}" fill="none" stroke="${color}" stroke-width="1.5" stroke-dasharray="5 4"/>`,
      `<rect x="${width - right - 170}" y="${top + 26 + index * 18}" width="12" height="12" fill="${color}"/>`,
      `<text x="${width - right - 152}" y="${top + 36 + index * 18}">${xml(instance.name)}</text>`,
    );
  });
  parts.push('</svg>', '');
  return parts.join('\n');
}

function niceStep(max: number): number {
  const raw = max / 6;
  const power = 10 ** Math.floor(Math.log10(raw));
  const unit = raw / power;
  return (unit <= 1 ? 1 : unit <= 2 ? 2 : unit <= 5 ? 5 : 10) * power;
}

export function writeSoakReports(directory: string, report: SoakReport): void {
  writeFileSync(join(directory, 'soak.md'), renderMarkdown(report));
  writeFileSync(join(directory, 'soak.json'), `${JSON.stringify(report, null, 2)}\n`);
  writeFileSync(join(directory, 'soak-rss.svg'), renderSvg(report));
}
