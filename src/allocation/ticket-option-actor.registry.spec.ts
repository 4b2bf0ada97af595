import { UnavailableError } from '../common/domain.error';
import { loadConfig } from '../config/app-config';
import { TicketOptionActorRegistry } from './ticket-option-actor.registry';
import {
  AllocationState,
  CommitOutcome,
  CommitRequest,
  RefreshedState,
  TicketOptionStore,
} from './ticket-option.store';

const USER = '6f1f7b5e-8c1e-4a52-9d8e-0a4f6f7c1b11';

/** Options named `missing-*` do not exist; the others have 1,000 tickets. Commits can be held. */
class MemoryStore implements TicketOptionStore {
  private readonly states = new Map<string, AllocationState>();
  private gate: Promise<void> | null = null;
  private open: (() => void) | null = null;

  hold(): void {
    this.gate = new Promise((resolve) => (this.open = resolve));
  }

  release(): void {
    this.open?.();
    this.gate = null;
  }

  load(id: string): Promise<AllocationState | null> {
    if (id.startsWith('missing-')) return Promise.resolve(null);
    const state = this.states.get(id) ?? { allocation: 1000, purchased: 0, held: 0, version: 1 };
    this.states.set(id, state);
    return Promise.resolve({ ...state });
  }

  async refresh(id: string): Promise<RefreshedState | null> {
    const state = await this.load(id);
    return state && { ...state, expiredHolds: 0 };
  }

  async commit({ optionId, expected, taken }: CommitRequest): Promise<CommitOutcome> {
    if (this.gate) await this.gate;
    const state = this.states.get(optionId)!;
    if (state.version !== expected.version) return { committed: false, lostClaims: [] };
    const next = { ...state, purchased: state.purchased + taken, version: state.version + 1 };
    this.states.set(optionId, next);
    return {
      committed: true,
      purchased: next.purchased,
      held: next.held,
      version: next.version,
      createdAt: new Date(),
      holds: new Map(),
      targets: new Map(),
    };
  }
}

function registryWith(env: Record<string, string> = {}) {
  const store = new MemoryStore();
  const registry = new TicketOptionActorRegistry(store, loadConfig(env));
  return { store, registry };
}

const buy = (registry: TicketOptionActorRegistry, id: string, quantity = 1) =>
  registry.get(id).purchase({ userId: USER, quantity });

describe('TicketOptionActorRegistry', () => {
  it('gives one actor per option', () => {
    const { registry } = registryWith();
    expect(registry.get('a')).toBe(registry.get('a'));
    expect(registry.get('a')).not.toBe(registry.get('b'));
    expect(registry.size).toBe(2);
  });

  it('does not keep actors for options that do not exist', async () => {
    const { registry } = registryWith();
    await expect(buy(registry, 'missing-1')).rejects.toThrow(/does not exist/);
    expect(registry.size).toBe(0);
  });

  it('keeps at most ACTOR_MAX_LIVE actors, passivating the least recently used first', async () => {
    const { registry } = registryWith({ ACTOR_MAX_LIVE: '3' });
    for (const id of ['a', 'b', 'c']) await buy(registry, id);
    registry.get('a'); // now b is the least recently used
    await buy(registry, 'd');

    expect(registry.size).toBe(3);
    expect(registry.stats()).toMatchObject({ liveActors: 3, passivations: 1, activations: 4 });
    const b = registry.get('b'); // reactivated: a fresh actor
    expect(b.cachedState).toBeNull();
  });

  it('keeps the recency order when the most recent actor is asked for again and again', async () => {
    const { registry } = registryWith({ ACTOR_MAX_LIVE: '3' });
    for (const id of ['a', 'b', 'c']) await buy(registry, id);
    const c = registry.get('c');
    expect(registry.get('c')).toBe(c); // the newest already: no reordering needed
    registry.get('a');
    registry.get('a'); // order now b, c, a
    await buy(registry, 'd'); // passivates b, the least recently used
    expect(registry.get('c')).toBe(c);
    expect(registry.get('b').cachedState).toBeNull(); // b was passivated: a fresh actor
    expect(registry.stats()).toMatchObject({ passivations: 2, activations: 5 });
  });

  it('stays within the bound after touching many distinct options', async () => {
    const { registry } = registryWith({ ACTOR_MAX_LIVE: '100' });
    for (let i = 0; i < 5000; i++) await buy(registry, `option-${i}`);
    expect(registry.size).toBe(100);
    expect(registry.stats()).toMatchObject({ purchasesCommitted: 5000, commits: 5000 });
  });

  it('never passivates an actor with queued purchases', async () => {
    const { store, registry } = registryWith({ ACTOR_MAX_LIVE: '1' });
    store.hold();
    const busy = buy(registry, 'busy');
    const other = registry.get('other');
    expect(registry.size).toBe(2); // over the bound rather than dropping work
    store.release();
    await Promise.all([busy, other.purchase({ userId: USER, quantity: 1 })]);
  });

  it('passivates actors idle for longer than ACTOR_IDLE_MS and keeps their counters', async () => {
    const { registry } = registryWith({ ACTOR_IDLE_MS: '1000' });
    await buy(registry, 'a', 2);
    await buy(registry, 'a', 3);
    const actor = registry.get('a');
    await actor.whenIdle(); // its commit loop has finished
    // Times relative to its last use, not to the wall clock: however long the lines above
    // took, it has been idle for 500 ms, then for 1,500 ms.
    const lastUsed = actor.lastUsedAt;
    registry.passivateIdle(lastUsed + 500);
    expect(registry.size).toBe(1);
    registry.passivateIdle(lastUsed + 999);
    expect(registry.size).toBe(1);

    registry.passivateIdle(lastUsed + 1500);
    expect(registry.size).toBe(0);
    expect(registry.stats()).toMatchObject({
      liveActors: 0,
      commits: 2,
      purchasesCommitted: 2,
      meanBatchSize: 1,
    });
  });

  it('drains: queued purchases are committed and answered, new ones get 503', async () => {
    const { store, registry } = registryWith();
    store.hold();
    const queued = Promise.all([buy(registry, 'a'), buy(registry, 'a'), buy(registry, 'b')]);
    const drained = registry.drain();

    expect(() => registry.get('a')).toThrow(UnavailableError);
    store.release();
    await Promise.all([drained, expect(queued).resolves.toHaveLength(3)]);
    expect(registry.stats().queueDepth).toBe(0);
  });
});
