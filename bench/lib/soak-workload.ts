/**
 * The soak's mixed workload: what to send next, and whether each answer is one the contract
 * allows. It holds the options (a few hot, thousands of cold, more created during the run), every
 * purchase id answered 201 (for reads and the audit), and the idempotency keys with their answers.
 */
import { randomUUID } from 'node:crypto';
import { idOf } from './load';
import type { Answer, Outcome, PlannedRequest } from './soak-load';

export type Kind = 'purchase' | 'idempotent' | 'read-option' | 'read-purchase' | 'create';
/** Shares of the request rate, by kind. */
const MIX: Record<Kind, number> = {
  purchase: 0.48,
  idempotent: 0.12,
  'read-option': 0.2,
  'read-purchase': 0.196,
  create: 0.004,
};
export const KINDS = Object.keys(MIX) as Kind[];
/** What an idempotent request does with its key: a new one, a replay, another body, a duplicate. */
type Action = 'first' | 'replay' | 'reuse' | 'concurrent';
const ACTIONS: Record<Action, number> = { first: 0.55, replay: 0.3, reuse: 0.07, concurrent: 0.08 };
const [HOT_SHARE, COLD_ALLOCATIONS] = [0.45, [10, 100, 1_000, 1_000_000]];
/** Mean quantity of a purchase (see `quantity`): 90% 1..3, 10% 10..50. */
const MEAN_QUANTITY = 0.9 * 2 + 0.1 * 30;
/** The workload, as the report records it. */
export const WORKLOAD = {
  mix: MIX,
  idempotentActions: ACTIONS,
  hotShare: HOT_SHARE,
  hotOptions: 3,
  coldAllocations: COLD_ALLOCATIONS,
  /** Tickets per request going to the limited hot option (a quarter of the hot share). */
  limitedTicketsPerRequest:
    (MIX.purchase + MIX.idempotent * ACTIONS.first) * HOT_SHARE * 0.25 * MEAN_QUANTITY,
};
const REFUSED = '400 invalid_purchase_quantity';
/** What the contract allows besides the 201s counted: a refusal, or a read. */
const EXPECTED: Record<string, string> = {
  purchase: REFUSED,
  'read-option': '200',
  'read-purchase': '200',
};

const USERS = Array.from({ length: 1000 }, () => randomUUID());
const pick = <T>(items: readonly T[]): T => items[Math.floor(Math.random() * items.length)];
const quantity = (): number =>
  Math.random() < 0.9 ? 1 + Math.floor(Math.random() * 3) : 10 + Math.floor(Math.random() * 41);
function weighted<T extends string>(weights: Record<T, number>): T {
  let roll = Math.random();
  const entries = Object.entries(weights) as Array<[T, number]>;
  return entries.find(([, w]) => (roll -= w) < 0)?.[0] ?? entries[0][0];
}

/** `status code` of an answer, e.g. "201", "400 invalid_purchase_quantity". */
export function statusLabel(answer: Answer): string {
  if (answer.status < 300) return String(answer.status);
  try {
    const { errors } = JSON.parse(answer.body) as { errors?: Array<{ code?: string }> };
    return `${answer.status} ${errors?.[0]?.code ?? ''}`.trim();
  } catch {
    return String(answer.status);
  }
}

export interface IdempotencyKey {
  key: string;
  /** One user per key: the audit counts the purchases of each key by its user. */
  userId: string;
  optionId: string;
  quantity: number;
  nested: boolean;
  /** The purchase of its 201 answers (all must agree), or refused (400), once known. */
  purchaseId: string | null;
  refused: boolean;
  inFlight: number;
  /** A duplicate was sent while it was in flight: a 409 (or a replay) is then expected too. */
  duplicated: boolean;
  /** Answers not marked as replays: the key was processed once, so at most 1. */
  originals: number;
}

/** An idempotent request sent; `known`: the key's outcome was known then, so it must replay. */
type Sent = { key: IdempotencyKey; action: Action; known: boolean };

export class SoakWorkload {
  readonly hot: string[] = [];
  /** A hot option sized to sell out around the middle of the run. */
  limited: string | null = null;
  readonly cold: string[] = [];
  createdDuringRun = 0;
  readonly purchaseIds: string[] = [];
  purchasesWithoutId = 0;
  readonly keys: IdempotencyKey[] = [];
  private readonly completed: IdempotencyKey[] = [];
  private readonly inFlight = new Set<IdempotencyKey>();
  private readonly sent = new WeakMap<PlannedRequest, Sent>();
  readonly anomalies = new Map<string, { count: number; examples: string[] }>();
  readonly idempotency = { replaysVerified: 0, inFlightConflicts: 0, reusedRejected: 0 };
  private readonly runId = randomUUID().slice(0, 8);

  constructor(private readonly instances: number) {}

  next(): PlannedRequest {
    const kind = weighted(MIX);
    const nested = Math.random() < 0.5;
    if (kind === 'idempotent') return this.idempotent();
    if (kind === 'purchase')
      return this.purchase(kind, this.purchaseOption(), pick(USERS), quantity(), nested);
    if (kind === 'read-purchase' && this.purchaseIds.length > 0) {
      return this.request(kind, 'GET', `/purchases/${pick(this.purchaseIds)}`);
    }
    if (kind !== 'create')
      return this.request('read-option', 'GET', `/ticket_options/${this.anyOption()}`);
    const [name, allocation] = [`created ${this.createdDuringRun + 1}`, pick(COLD_ALLOCATIONS)];
    const attributes = { name, description: 'created by the soak', allocation };
    return this.request(kind, 'POST', '/ticket_options', {
      data: { type: 'ticket_options', attributes },
    });
  }

  /** Checks one outcome against the contract and records what it created. */
  record(request: PlannedRequest, outcome: Outcome): void {
    const [sent, answer] = [this.sent.get(request), outcome.answer];
    if (sent) return this.recordIdempotent(request, sent, answer);
    if (!answer) return; // transport failures are counted by the caller
    const [label, id] = [statusLabel(answer), answer.status === 201 ? idOf(answer.body) : null];
    if (request.kind === 'purchase' && answer.status === 201) {
      if (id) this.purchaseIds.push(id);
      else this.purchasesWithoutId++;
    } else if (request.kind === 'create' && id) {
      this.cold.push(id);
      this.createdDuringRun++;
    } else if (label !== EXPECTED[request.kind]) {
      this.anomaly(`${request.kind} answered ${label}`, request, answer);
    }
  }

  /** Every option purchases can go to. */
  allOptions(): string[] {
    return [...this.hot, ...(this.limited ? [this.limited] : []), ...this.cold];
  }

  private anomaly(what: string, request: PlannedRequest, answer: Answer): void {
    const entry = this.anomalies.get(what) ?? { count: 0, examples: [] };
    const where = `${request.method} ${request.path} on instance ${request.target + 1}`;
    if (entry.count++ < 3)
      entry.examples.push(`${where}: ${answer.status} ${answer.body.slice(0, 160)}`);
    this.anomalies.set(what, entry);
  }

  private anyOption(): string {
    const i = Math.floor(Math.random() * (this.hot.length + this.cold.length));
    return i < this.hot.length ? this.hot[i] : this.cold[i - this.hot.length];
  }

  private purchaseOption(): string {
    if (Math.random() >= HOT_SHARE) return pick(this.cold);
    return this.limited && Math.random() < 0.25 ? this.limited : pick(this.hot);
  }

  private request(kind: Kind, method: 'GET' | 'POST', path: string, body?: object) {
    const target = Math.floor(Math.random() * this.instances);
    return { kind, target, method, path, body: body && JSON.stringify(body) } as PlannedRequest;
  }

  /** Half on `POST /purchases`, half on the nested route. */
  private purchase(kind: Kind, optionId: string, userId: string, amount: number, nested: boolean) {
    const option = nested
      ? {}
      : { ticket_option: { data: { type: 'ticket_options', id: optionId } } };
    const relationships = { user: { data: { type: 'users', id: userId } }, ...option };
    const data = { type: 'purchases', attributes: { quantity: amount }, relationships };
    return this.request(
      kind,
      'POST',
      nested ? `/ticket_options/${optionId}/purchases` : '/purchases',
      { data },
    );
  }

  private idempotent(): PlannedRequest {
    let action = weighted(ACTIONS);
    if (action === 'concurrent' && this.inFlight.size === 0) action = 'replay';
    if (this.completed.length === 0) action = 'first';
    let key: IdempotencyKey;
    if (action === 'first') {
      const id = `soak-${this.runId}-${this.keys.length + 1}`;
      const [optionId, nested] = [this.purchaseOption(), Math.random() < 0.5];
      const answers = { purchaseId: null, refused: false, originals: 0 };
      const state = { ...answers, inFlight: 0, duplicated: false };
      key = { key: id, userId: randomUUID(), optionId, quantity: quantity(), nested, ...state };
      this.keys.push(key);
    } else if (action === 'concurrent') {
      key = pick([...this.inFlight].slice(0, 64));
      key.duplicated = true;
    } else {
      key = pick(this.completed);
    }
    // reuse: the same key with another body must be refused (422), whichever instance.
    const amount = action === 'reuse' ? key.quantity + 1 : key.quantity;
    const request = this.purchase('idempotent', key.optionId, key.userId, amount, key.nested);
    request.headers = { 'idempotency-key': key.key };
    if (action !== 'reuse') {
      key.inFlight++;
      this.inFlight.add(key);
    }
    this.sent.set(request, { key, action, known: key.purchaseId !== null || key.refused });
    return request;
  }

  private recordIdempotent(request: PlannedRequest, { key, action, known }: Sent, answer?: Answer) {
    if (action !== 'reuse' && --key.inFlight === 0) this.inFlight.delete(key);
    if (!answer) return;
    const label = statusLabel(answer);
    const fail = (what: string) => this.anomaly(what, request, answer);
    const id = answer.status === 201 ? idOf(answer.body) : null;
    const replayed = answer.headers['idempotent-replayed'] === 'true';
    if (action === 'reuse' || label === '409 idempotency_key_in_flight') {
      // 409: for a duplicate sent while the first was in flight (or for the first, when the
      // duplicate got there first); never once the outcome was known.
      if (action === 'reuse' && label === '422 idempotency_key_reused')
        this.idempotency.reusedRejected++;
      else if (action !== 'reuse' && key.duplicated && !known) this.idempotency.inFlightConflicts++;
      else fail(`idempotent ${action} answered ${label}`);
      return;
    }
    if (answer.status === 201 && !id) this.purchasesWithoutId++;
    if ((answer.status !== 201 || !id) && label !== REFUSED)
      return fail(`idempotent ${action} answered ${label}`);
    if (known && !replayed)
      fail('request for a completed key answered without Idempotent-Replayed: true');
    if (known && replayed) this.idempotency.replaysVerified++;
    if (!known && replayed && !key.duplicated)
      fail('first request with a new key answered as a replay');
    if (!replayed && ++key.originals > 1) fail('two answers of one key not marked as replays');
    if ((id && key.refused) || (!id && key.purchaseId !== null))
      fail('idempotency key answered both 201 and 400');
    if (id && key.purchaseId !== null && key.purchaseId !== id)
      fail('replay returned another purchase id');
    if (key.purchaseId === null && !key.refused) this.completed.push(key);
    if (id && key.purchaseId === null) this.purchaseIds.push((key.purchaseId = id));
    key.refused ||= id === null;
  }
}
