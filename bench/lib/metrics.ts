/**
 * Version conflicts, if the service exposes them on GET /metrics (Prometheus text): the sum of
 * every sample whose metric name mentions "conflict", over the given instances. `null` when any
 * instance has no such endpoint or metric, so the report says "n/a" instead of a made-up zero.
 */
export async function scrapeConflicts(baseUrls: string[]): Promise<number | null> {
  let total = 0;
  for (const baseUrl of baseUrls) {
    let text: string;
    try {
      const response = await fetch(`${baseUrl}/metrics`, { signal: AbortSignal.timeout(2000) });
      text = await response.text();
      if (!response.ok) return null;
    } catch {
      return null;
    }
    let seen = false;
    for (const line of text.split('\n')) {
      const match = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})?\s+(\S+)/.exec(line);
      // Counters only: histogram series and _created timestamps would inflate the sum.
      if (!match || !/conflict/i.test(match[1]) || /_(created|bucket|sum|count)$/.test(match[1])) {
        continue;
      }
      const value = Number(match[3]);
      if (Number.isFinite(value)) {
        total += value;
        seen = true;
      }
    }
    if (!seen) return null;
  }
  return total;
}

/** Counter growth between two scrapes; `null` unless both worked. */
export function delta(before: number | null, after: number | null): number | null {
  return before === null || after === null ? null : after - before;
}

/** The value of one unlabelled metric (e.g. a gauge) on one instance; `null` if absent. */
export async function scrapeMetric(baseUrl: string, name: string): Promise<number | null> {
  try {
    const response = await fetch(`${baseUrl}/metrics`, { signal: AbortSignal.timeout(2000) });
    if (!response.ok) return null;
    for (const line of (await response.text()).split('\n')) {
      const [metric, value] = line.split(/\s+/);
      if (metric === name && Number.isFinite(Number(value))) return Number(value);
    }
    return null;
  } catch {
    return null;
  }
}

/** One sample of the Prometheus text format: `name{label="value",…} value`. */
export interface MetricSample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

/** Parses the Prometheus text format (comments skipped; label values unescaped). */
export function parsePrometheus(text: string): MetricSample[] {
  const samples: MetricSample[] = [];
  for (const line of text.split('\n')) {
    const match = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)/.exec(line);
    if (!match) continue;
    const value = Number(match[3]);
    if (!Number.isFinite(value)) continue;
    const labels: Record<string, string> = {};
    const labelPattern = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g;
    for (const label of (match[2] ?? '').matchAll(labelPattern)) {
      labels[label[1]] = label[2].replace(/\\(.)/g, (_, c: string) => (c === 'n' ? '\n' : c));
    }
    samples.push({ name: match[1], labels, value });
  }
  return samples;
}

/** Every sample of one instance's GET /metrics; `null` when it does not answer 200. */
export async function scrapeSamples(
  baseUrl: string,
  timeoutMs = 2000,
): Promise<MetricSample[] | null> {
  try {
    const response = await fetch(`${baseUrl}/metrics`, { signal: AbortSignal.timeout(timeoutMs) });
    const text = await response.text();
    return response.ok ? parsePrometheus(text) : null;
  } catch {
    return null;
  }
}

/** The value of the first sample with this name whose labels include `labels`; `null` if none. */
export function sampleValue(
  samples: MetricSample[] | null,
  name: string,
  labels: Record<string, string> = {},
): number | null {
  const found = samples?.find(
    (sample) =>
      sample.name === name &&
      Object.entries(labels).every(([key, value]) => sample.labels[key] === value),
  );
  return found ? found.value : null;
}
