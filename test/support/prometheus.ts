/**
 * The one Prometheus text-format parser of the repository, shared by the tests (test/metrics) and
 * the bench (bench/lib/load.ts scrapes /metrics with it).
 */

/** One sample of a Prometheus text exposition: `name{label="value",…} number [timestamp]`. */
export interface PromSample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

const SAMPLE = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?[ \t]+(\S+)(?:[ \t]+-?\d+)?$/;
const LABEL = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g;
const SPECIAL: Record<string, number> = { '+Inf': Infinity, '-Inf': -Infinity, NaN: NaN };

/** Every sample; a line that is neither a comment nor a sample throws (a broken exposition is a bug). */
export function parsePrometheus(text: string): PromSample[] {
  const samples: PromSample[] = [];
  for (const line of text.split('\n')) {
    if (line.trim() === '' || line.startsWith('#')) continue;
    const match = SAMPLE.exec(line);
    if (!match) throw new Error(`not a Prometheus sample: ${line}`);
    const labels: Record<string, string> = {};
    for (const [, key, value] of (match[2] ?? '').matchAll(LABEL)) {
      labels[key] = value.replace(/\\(.)/g, (_, c: string) => (c === 'n' ? '\n' : c));
    }
    samples.push({ name: match[1], labels, value: SPECIAL[match[3]] ?? Number(match[3]) });
  }
  return samples;
}

/** The value of the sample with exactly these labels; `undefined` when there is none. */
export function findSample(
  samples: PromSample[],
  name: string,
  labels: Record<string, string> = {},
): number | undefined {
  const wanted = Object.entries(labels);
  return samples.find(
    (s) =>
      s.name === name &&
      Object.keys(s.labels).length === wanted.length &&
      wanted.every(([key, value]) => s.labels[key] === value),
  )?.value;
}

/** As `findSample`, but 0 when absent (a series not yet created). */
export function valueOf(
  samples: PromSample[],
  name: string,
  labels: Record<string, string> = {},
): number {
  return findSample(samples, name, labels) ?? 0;
}
