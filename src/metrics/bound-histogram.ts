import type { Histogram, Registry } from 'prom-client';

type Labels = Record<string, string>;

/** One label set's counts: per bucket (not cumulative; the last one is +Inf), sum and count. */
interface Series {
  labels: Labels;
  buckets: number[];
  sum: number;
  count: number;
}

interface ExportedValue {
  labels: Record<string, string | number>;
  sharedLabels?: Labels;
  value: number;
  metricName: string;
}

/**
 * A Prometheus histogram for the per-request observation, exposed by prom-client's registry in
 * exactly the format of prom-client's own Histogram. prom-client hashes and validates the labels
 * on every observation, even through a child from `labels()`; here a label set is looked up once
 * ({@link series}) and an observation is then a bucket search and three additions.
 */
export class BoundHistogram {
  readonly type = 'histogram';
  readonly aggregator = 'sum';
  private readonly all = new Map<string, Series>();

  constructor(
    readonly name: string,
    readonly help: string,
    private readonly upperBounds: readonly number[],
    registry: Registry,
  ) {
    registry.registerMetric(this as unknown as Histogram);
  }

  /** The observer of one label set (created on first use; `key` identifies the set). */
  series(key: string, labels: () => Labels): (value: number) => void {
    let series = this.all.get(key);
    if (series === undefined) {
      const buckets = new Array<number>(this.upperBounds.length + 1).fill(0);
      series = { labels: labels(), buckets, sum: 0, count: 0 };
      this.all.set(key, series);
    }
    const target = series;
    return (value) => {
      let i = 0;
      while (i < this.upperBounds.length && value > this.upperBounds[i]) i++;
      target.buckets[i]++;
      target.sum += value;
      target.count++;
    };
  }

  /** What the registry renders as text: cumulative buckets, then +Inf, sum and count. */
  getForPromString() {
    const values: ExportedValue[] = [];
    const bucket = `${this.name}_bucket`;
    for (const { labels, buckets, sum, count } of this.all.values()) {
      let cumulative = 0;
      this.upperBounds.forEach((le, i) => {
        cumulative += buckets[i];
        values.push({
          labels: { le },
          sharedLabels: labels,
          value: cumulative,
          metricName: bucket,
        });
      });
      values.push({
        labels: { le: '+Inf' },
        sharedLabels: labels,
        value: count,
        metricName: bucket,
      });
      values.push({ labels: {}, sharedLabels: labels, value: sum, metricName: `${this.name}_sum` });
      values.push({
        labels: {},
        sharedLabels: labels,
        value: count,
        metricName: `${this.name}_count`,
      });
    }
    const { name, help, type, aggregator } = this;
    return { name, help, type, aggregator, values };
  }

  /** The JSON form (registry.getMetricsAsJSON): each value with all its labels together. */
  get() {
    const metric = this.getForPromString();
    const values = metric.values.map(({ labels, sharedLabels, value, metricName }) => ({
      labels: { ...labels, ...sharedLabels },
      value,
      metricName,
    }));
    return { ...metric, values };
  }

  /** Zeroes every series (observers keep theirs). */
  reset(): void {
    for (const series of this.all.values()) {
      series.buckets.fill(0);
      series.sum = 0;
      series.count = 0;
    }
  }
}
