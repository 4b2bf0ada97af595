import { CommitCoalescer } from './commit-coalescer';

/** A write function whose calls are recorded and settled by hand. */
function controlledWrites() {
  const calls: Array<{
    items: number[];
    settle(): void;
    fail(error: Error): void;
  }> = [];
  const write = (items: number[]) =>
    new Promise<string[]>((resolve, reject) => {
      calls.push({
        items,
        settle: () => resolve(items.map((item) => `done ${item}`)),
        fail: reject,
      });
    });
  return { calls, write };
}

/** Resolves after pending setImmediate callbacks (the coalescer's flush) ran. */
const nextTurn = () => new Promise<void>((resolve) => setImmediate(resolve));

describe('CommitCoalescer', () => {
  it('writes everything submitted in one event-loop turn as one write, answering each in order', async () => {
    const { calls, write } = controlledWrites();
    const coalescer = new CommitCoalescer(write, {
      maxInFlight: 2,
      maxWeightPerWrite: 100,
      weight: () => 1,
    });
    const answers = [1, 2, 3].map((item) => coalescer.submit(item));
    await nextTurn();
    expect(calls.map((c) => c.items)).toEqual([[1, 2, 3]]);
    calls[0].settle();
    await expect(Promise.all(answers)).resolves.toEqual(['done 1', 'done 2', 'done 3']);
  });

  it('coalesces what arrives while maxInFlight writes run into the next write', async () => {
    const { calls, write } = controlledWrites();
    const coalescer = new CommitCoalescer(write, {
      maxInFlight: 1,
      maxWeightPerWrite: 100,
      weight: () => 1,
    });
    const first = coalescer.submit(1);
    await nextTurn();
    const later = Promise.all([2, 3, 4].map((item) => coalescer.submit(item)));
    await nextTurn();
    expect(calls).toHaveLength(1); // the bound holds: 2, 3 and 4 wait

    calls[0].settle();
    await first;
    expect(calls.map((c) => c.items)).toEqual([[1], [2, 3, 4]]);
    calls[1].settle();
    await later;
    expect(coalescer.stats).toEqual({ writes: 2, items: 4, waiting: 0, inFlight: 0 });
  });

  describe('with slowWriteMs: another write only once the latest has run that long', () => {
    let clock = 0;
    beforeEach(() => {
      clock = 0;
      // Only setTimeout is faked: the flush's setImmediate and promises run for real.
      jest.useFakeTimers({ doNotFake: ['setImmediate', 'nextTick', 'queueMicrotask'] });
    });
    afterEach(() => jest.useRealTimers());
    const staggered = (write: (items: number[]) => Promise<string[]>) =>
      new CommitCoalescer(write, {
        maxInFlight: 4,
        slowWriteMs: 5,
        now: () => clock,
        maxWeightPerWrite: 100,
        weight: () => 1,
      });

    it('keeps what arrives during a quick write for ONE next write', async () => {
      const { calls, write } = controlledWrites();
      const coalescer = staggered(write);
      const first = coalescer.submit(1);
      await nextTurn();
      const later = Promise.all([2, 3].map((item) => coalescer.submit(item)));
      clock = 4;
      jest.advanceTimersByTime(4);
      await nextTurn();
      expect(calls).toHaveLength(1); // below maxInFlight, but the first write is not slow yet
      calls[0].settle();
      await first;
      expect(calls.map((c) => c.items)).toEqual([[1], [2, 3]]);
      calls[1].settle();
      await later;
    });

    it('starts the next write once the running one has taken slowWriteMs, then one per slowWriteMs', async () => {
      const { calls, write } = controlledWrites();
      const coalescer = staggered(write);
      void coalescer.submit(1);
      await nextTurn();
      void coalescer.submit(2);
      await nextTurn();
      expect(calls).toHaveLength(1);
      clock = 5;
      jest.advanceTimersByTime(5);
      expect(calls.map((c) => c.items)).toEqual([[1], [2]]); // the first is slow: 2 goes on
      void coalescer.submit(3);
      await nextTurn();
      expect(calls).toHaveLength(2); // the latest write started just now
      clock = 10;
      jest.advanceTimersByTime(5);
      expect(calls.map((c) => c.items)).toEqual([[1], [2], [3]]);
      expect(coalescer.stats.inFlight).toBe(3);
      for (const call of calls) call.settle();
    });
  });

  it('splits by weight, but always takes at least one item even if it is heavier than the bound', async () => {
    const { calls, write } = controlledWrites();
    const coalescer = new CommitCoalescer(write, {
      maxInFlight: 10,
      maxWeightPerWrite: 5,
      weight: (item) => item,
    });
    const answers = [2, 3, 9, 1].map((item) => coalescer.submit(item));
    await nextTurn();
    expect(calls.map((c) => c.items)).toEqual([[2, 3], [9], [1]]);
    calls.forEach((c) => c.settle());
    await Promise.all(answers);
  });

  it('fails only the items of the write that failed', async () => {
    const { calls, write } = controlledWrites();
    const coalescer = new CommitCoalescer(write, {
      maxInFlight: 2,
      maxWeightPerWrite: 1,
      weight: () => 1,
    });
    const one = coalescer.submit(1);
    const two = coalescer.submit(2);
    await nextTurn();
    calls[0].fail(new Error('connection lost'));
    calls[1].settle();
    await Promise.all([
      expect(one).rejects.toThrow('connection lost'),
      expect(two).resolves.toBe('done 2'),
    ]);
  });

  it('refuses a write that answers for fewer items than it was given', async () => {
    const coalescer = new CommitCoalescer((items: number[]) => Promise.resolve(items.slice(1)), {
      maxInFlight: 1,
      maxWeightPerWrite: 10,
      weight: () => 1,
    });
    const answers = [coalescer.submit(1), coalescer.submit(2)];
    await Promise.all(answers.map((answer) => expect(answer).rejects.toThrow(/answered 1 of 2/)));
  });
});
