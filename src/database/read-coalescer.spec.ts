import { ReadCoalescer } from './read-coalescer';

/** A read per call that the test finishes by hand, in any order. */
function controlledReads() {
  const calls: Array<{ key: string; resolve(v: number): void; reject(e: Error): void }> = [];
  const read = (key: string) =>
    new Promise<number>((resolve, reject) => calls.push({ key, resolve, reject }));
  return { calls, read };
}

/** Lets every settled promise's callbacks run. */
const settle = () => new Promise((resolve) => setImmediate(resolve));

describe('ReadCoalescer', () => {
  it('runs the first request at once, on its own read', async () => {
    const { calls, read } = controlledReads();
    const reads = new ReadCoalescer(read);
    const first = reads.get('a');
    expect(calls.map((c) => c.key)).toEqual(['a']);
    calls[0].resolve(7);
    await expect(first).resolves.toBe(7);
    expect(reads.stats).toEqual({ reads: 1, requests: 1 });
  });

  it('never answers a request with a read that started before it arrived', async () => {
    const { calls, read } = controlledReads();
    const reads = new ReadCoalescer(read);
    const early = reads.get('a');
    const late = [reads.get('a'), reads.get('a'), reads.get('a')];
    const answered: number[] = [];
    for (const request of late) void request.then((v) => answered.push(v));
    expect(calls).toHaveLength(1); // the late ones wait for the next read, not this one
    calls[0].resolve(1);
    await expect(early).resolves.toBe(1);
    await settle();
    expect(answered).toEqual([]);
    expect(calls).toHaveLength(2);
    calls[1].resolve(2);
    await expect(Promise.all(late)).resolves.toEqual([2, 2, 2]);
    expect(reads.stats).toEqual({ reads: 2, requests: 4 });
  });

  it('keeps keys apart: another key has its own read in flight', async () => {
    const { calls, read } = controlledReads();
    const reads = new ReadCoalescer(read);
    const a = reads.get('a');
    const b = reads.get('b');
    expect(calls.map((c) => c.key)).toEqual(['a', 'b']);
    calls[1].resolve(20);
    calls[0].resolve(10);
    await expect(Promise.all([a, b])).resolves.toEqual([10, 20]);
  });

  it('fails only the requests that shared the failed read; the next read runs', async () => {
    const { calls, read } = controlledReads();
    const reads = new ReadCoalescer(read);
    const first = reads.get('a');
    const second = reads.get('a');
    const failure = new Error('connection lost');
    calls[0].reject(failure);
    await expect(first).rejects.toBe(failure);
    await settle();
    calls[1].resolve(5);
    await expect(second).resolves.toBe(5);
    // Nothing is left behind: a new request starts a read of its own at once.
    const third = reads.get('a');
    expect(calls).toHaveLength(3);
    calls[2].resolve(6);
    await expect(third).resolves.toBe(6);
  });

  it('turns a read that throws synchronously into a rejection of its requests', async () => {
    const reads = new ReadCoalescer<string, number>(() => {
      throw new Error('no pool');
    });
    await expect(reads.get('a')).rejects.toThrow('no pool');
    await expect(reads.get('a')).rejects.toThrow('no pool');
  });
});
