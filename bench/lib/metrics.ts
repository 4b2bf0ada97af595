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
