import { Histogram, Registry } from 'prom-client';
import { BoundHistogram } from './bound-histogram';

const BUCKETS = [0.001, 0.01, 0.1, 1];
const OBSERVATIONS: Array<[Record<string, string>, number]> = [
  [{ method: 'GET', route: '/a/:id', status_code: '200' }, 0.0005],
  [{ method: 'GET', route: '/a/:id', status_code: '200' }, 0.05],
  [{ method: 'POST', route: '/b', status_code: '201' }, 0.01],
  [{ method: 'GET', route: '/a/:id', status_code: '200' }, 3],
  [{ method: 'POST', route: '/b', status_code: '201' }, 0.2],
];

describe('BoundHistogram', () => {
  it("renders exactly what prom-client's Histogram renders for the same observations", async () => {
    const theirs = new Registry();
    const reference = new Histogram({
      name: 'h_seconds',
      help: 'help text',
      labelNames: ['method', 'route', 'status_code'],
      buckets: BUCKETS,
      registers: [theirs],
    });
    const ours = new Registry();
    const bound = new BoundHistogram('h_seconds', 'help text', BUCKETS, ours);
    for (const [labels, value] of OBSERVATIONS) {
      reference.observe(labels, value);
      bound.series(JSON.stringify(labels), () => labels)(value);
    }
    expect(await ours.metrics()).toBe(await theirs.metrics());
    // The JSON form too, but for prom-client's exemplar slots (exemplars are not enabled).
    const [referenceJson] = await theirs.getMetricsAsJSON();
    const values = (referenceJson.values as Array<Record<string, unknown>>).map(
      ({ labels, value, metricName }) => ({ labels, value, metricName }),
    );
    expect(await ours.getMetricsAsJSON()).toEqual([{ ...referenceJson, values }]);
  });

  it('keeps observing through its observers after a reset', async () => {
    const registry = new Registry();
    const bound = new BoundHistogram('h_seconds', 'help text', BUCKETS, registry);
    const observe = bound.series('x', () => ({ route: 'x' }));
    observe(0.5);
    bound.reset();
    observe(0.005);
    expect(await registry.metrics()).toContain('h_seconds_count{route="x"} 1');
    expect(await registry.metrics()).toContain('h_seconds_sum{route="x"} 0.005');
  });
});
