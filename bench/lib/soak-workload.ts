/**
 * The soak's mixed workload: what to send next, and whether each answer is one the contract
 * allows. It holds the ticket options (a few hot ones, thousands of cold ones, more created during
 * the run), every purchase id answered with 201 (for reads and the audit), and the idempotency
 * keys with every answer each got (for the replay checks and the audit).
 */
import { randomUUID } from 'node:crypto';
import type { Answer, Outcome, PlannedRequest } from './soak-load';

export type Kind = 'purchase' | 'idempotent' | 'read-option' | 'read-purchase' | 'create';
export const KINDS: Kind[] = ['purchase', 'idempotent', 'read-option', 'read-purchase', 'create'];

/** Shares of the request rate, by kind. */
export const MIX: Record<Kind, number> = {
  purchase: 0.48,
  idempotent: 0.12,
  'read-option': 0.2,
  'read-purchase': 0.196,
  create: 0.004,
};

/** What an idempotent request does with its key. */
export type IdempotentAction = 'first' | 'replay' | 'reuse' | 'concurrent';
const IDEMPOTENT_MIX: Array<[IdempotentAction, number]> = [
  ['first', 0.55],
  ['replay', 0.3],
  ['reuse', 0.07],
  ['concurrent', 0.08],
];

/** Share of purchases that go to the hot options (the rest: uniformly over the cold ones). */
export const HOT_SHARE = 0.45;

/** Allocations of cold options (created up front and during the run), equally likely. */
export const COLD_ALLOCATIONS = [10, 100, 1_000, 1_000_000];

/** Mean quantity of a purchase (see `quantity()`): 90% 1..3, 10% 10..50. */
export const MEAN_QUANTITY = 0.9 * 2 + 0.1 * 30;

const USERS = Array.from({ length: 1000 }, () => randomUUID());

const pick = <T>(items: readonly T[]): T => items[Math.floor(Math.random() * items.length)];

function quantity(): number {
  return Math.random() < 0.9
    ? 1 + Math.floor(Math.random() * 3)
    : 10 + Math.floor(Math.random() * 41);
}

function weighted<T>(entries: Array<[T, number]>): T {
  let roll = Math.random() * entries.reduce((sum, [, weight]) => sum + weight, 0);
  for (const [value, weight] of entries) {
    roll -= weight;
    if (roll < 0) return value;
  }
  return entries[entries.length - 1][0];
}

interface IdempotencyKey {
  key: string;
  userId: string;
  optionId: string;
  quantity: number;
  nested: boolean;
  /** The purchase id of its 201 answers (all must agree). */
  purchaseId: string | null;
  /** Answered 400 invalid_purchase_quantity (then never 201). */
  refused: boolean;
  /** Requests with this key and its body now in flight. */
  inFlight: number;
  /** A `concurrent` duplicate was sent: a 409 on the first request is then expected too. */
  duplicated: boolean;
  /** Answers not marked `Idempotent-Replayed` (201 or 400): the key was processed; at most 1. */
  originals: number;
}

/** Something the contract does not allow, with a few examples. */
export interface Anomaly {
  count: number;
  examples: string[];
}

interface IdempotentExpectation {
  key: IdempotencyKey;
  action: IdempotentAction;
  /** The key's outcome was already known when this request was sent: it must be a replay. */
  knownAtSend: boolean;
}

interface Expectation {
  idempotent?: IdempotentExpectation;
}

function errorCode(body: string): string | null {
  try {
    const code = (JSON.parse(body) as { errors?: Array<{ code?: unknown }> }).errors?.[0]?.code;
    return typeof code === 'string' ? code : null;
  } catch {
    return null;
  }
}

function dataId(body: string): string | null {
  try {
    const id = (JSON.parse(body) as { data?: { id?: unknown } }).data?.id;
    return typeof id === 'string' ? id : null;
  } catch {
    return null;
  }
}

function header(answer: Answer, name: string): string | undefined {
  const value = answer.headers[name];
  return Array.isArray(value) ? value[0] : value;
}

/** `status code` of an answer, e.g. "201", "400 invalid_purchase_quantity". */
export function statusLabel(answer: Answer): string {
  if (answer.status < 300) return String(answer.status);
  const code = errorCode(answer.body);
  return code ? `${answer.status} ${code}` : String(answer.status);
}

export class SoakWorkload {
  readonly hotOptions: string[] = [];
  /** A hot option with an allocation sized to sell out around the middle of the run. */
  limitedHotOption: string | null = null;
  readonly coldOptions: string[] = [];
  /** Options created over HTTP during the run (also in `coldOptions`). */
  readonly createdOptions: string[] = [];
  /** Ids of purchases answered 201 (first answers only; replays are not new purchases). */
  readonly purchaseIds: string[] = [];
  /** 201 answers without a readable data.id (an audit failure). */
  purchasesWithoutId = 0;
  readonly keys = new Map<string, IdempotencyKey>();
  private readonly completedKeys: IdempotencyKey[] = [];
  private readonly inFlightKeys = new Set<IdempotencyKey>();
  private readonly pending = new WeakMap<PlannedRequest, Expectation>();
  readonly anomalies = new Map<string, Anomaly>();
  /** Idempotency outcomes: replays verified, 409/422 provoked on purpose. */
  readonly idempotency = {
    keysIssued: 0,
    replaysVerified: 0,
    inFlightConflicts: 0,
    reusedRejected: 0,
  };
  private keySequence = 0;
  private readonly runId = randomUUID().slice(0, 8);

  constructor(private readonly instances: number) {}

  /** The next request of the mix. */
  next(): PlannedRequest {
    const kind = weighted(KINDS.map((k) => [k, MIX[k]] as [Kind, number]));
    switch (kind) {
      case 'purchase':
        return this.purchase();
      case 'idempotent':
        return this.idempotent();
      case 'read-option':
        return this.get('read-option', `/ticket_options/${this.anyOption()}`);
      case 'read-purchase':
        return this.purchaseIds.length === 0
          ? this.get('read-option', `/ticket_options/${this.anyOption()}`)
          : this.get('read-purchase', `/purchases/${pick(this.purchaseIds)}`);
      case 'create':
        return this.create();
    }
  }

  /** Checks one outcome against the contract and records what it created. */
  record(request: PlannedRequest, outcome: Outcome): void {
    const expectation = this.pending.get(request);
    const answer = outcome.answer;
    if (expectation?.idempotent) {
      this.recordIdempotent(request, expectation.idempotent, answer);
      return;
    }
    if (!answer) return; // transport failures are counted by the caller
    const label = statusLabel(answer);
    switch (request.kind) {
      case 'purchase':
        if (answer.status === 201) this.acknowledge(answer);
        else if (label !== '400 invalid_purchase_quantity')
          this.anomaly(`purchase answered ${label}`, request, answer);
        break;
      case 'read-option':
      case 'read-purchase':
        if (answer.status !== 200)
          this.anomaly(`${request.kind} answered ${label}`, request, answer);
        break;
      case 'create': {
        const id = answer.status === 201 ? dataId(answer.body) : null;
        if (id) {
          this.coldOptions.push(id);
          this.createdOptions.push(id);
        } else this.anomaly(`create answered ${label}`, request, answer);
        break;
      }
    }
  }

  anomaly(what: string, request: PlannedRequest, answer?: Answer): void {
    const entry = this.anomalies.get(what) ?? { count: 0, examples: [] };
    entry.count++;
    if (entry.examples.length < 3) {
      entry.examples.push(
        `${request.method} ${request.path} on instance ${request.target + 1}` +
          (answer ? `: ${answer.status} ${answer.body.slice(0, 200)}` : ''),
      );
    }
    this.anomalies.set(what, entry);
  }

  /** Every option purchases can go to. */
  allOptions(): string[] {
    return [
      ...this.hotOptions,
      ...(this.limitedHotOption ? [this.limitedHotOption] : []),
      ...this.coldOptions,
    ];
  }

  /** Idempotency keys whose outcome is known: for the audit. */
  keyOutcomes(): Array<{
    key: string;
    userId: string;
    purchaseId: string | null;
    refused: boolean;
  }> {
    return [...this.keys.values()].map(({ key, userId, purchaseId, refused }) => ({
      key,
      userId,
      purchaseId,
      refused,
    }));
  }

  private target(): number {
    return Math.floor(Math.random() * this.instances);
  }

  private anyOption(): string {
    const all = this.hotOptions.length + this.coldOptions.length;
    const index = Math.floor(Math.random() * all);
    return index < this.hotOptions.length
      ? this.hotOptions[index]
      : this.coldOptions[index - this.hotOptions.length];
  }

  private purchaseOption(): string {
    if (Math.random() < HOT_SHARE) {
      // The limited hot option takes a quarter of the hot share once it exists.
      if (this.limitedHotOption && Math.random() < 0.25) return this.limitedHotOption;
      return pick(this.hotOptions);
    }
    return pick(this.coldOptions);
  }

  private get(kind: Kind, path: string): PlannedRequest {
    return { kind, target: this.target(), method: 'GET', path };
  }

  private purchaseRequest(
    kind: Kind,
    optionId: string,
    userId: string,
    amount: number,
    nested: boolean,
    target: number,
  ): PlannedRequest {
    const relationships: Record<string, unknown> = {
      user: { data: { type: 'users', id: userId } },
    };
    if (!nested) {
      relationships.ticket_option = { data: { type: 'ticket_options', id: optionId } };
    }
    return {
      kind,
      target,
      method: 'POST',
      path: nested ? `/ticket_options/${optionId}/purchases` : '/purchases',
      body: JSON.stringify({
        data: { type: 'purchases', attributes: { quantity: amount }, relationships },
      }),
    };
  }

  private purchase(): PlannedRequest {
    return this.purchaseRequest(
      'purchase',
      this.purchaseOption(),
      pick(USERS),
      quantity(),
      Math.random() < 0.5,
      this.target(),
    );
  }

  private create(): PlannedRequest {
    return {
      kind: 'create',
      target: this.target(),
      method: 'POST',
      path: '/ticket_options',
      body: JSON.stringify({
        data: {
          type: 'ticket_options',
          attributes: {
            name: `soak created ${this.createdOptions.length + 1}`,
            description: 'created by npm run bench:soak',
            allocation: pick(COLD_ALLOCATIONS),
          },
        },
      }),
    };
  }

  private idempotent(): PlannedRequest {
    let action = weighted(IDEMPOTENT_MIX);
    if (action !== 'first' && this.completedKeys.length === 0) action = 'first';
    if (action === 'concurrent' && this.inFlightKeys.size === 0) action = 'replay';
    if (action === 'replay' && this.completedKeys.length === 0) action = 'first';

    let key: IdempotencyKey;
    if (action === 'first') {
      key = {
        key: `soak-${this.runId}-${++this.keySequence}`,
        // One user per key: the audit counts the purchases of each key by its user.
        userId: randomUUID(),
        optionId: this.purchaseOption(),
        quantity: quantity(),
        nested: Math.random() < 0.5,
        purchaseId: null,
        refused: false,
        inFlight: 0,
        duplicated: false,
        originals: 0,
      };
      this.keys.set(key.key, key);
      this.idempotency.keysIssued++;
    } else if (action === 'concurrent') {
      key = pick([...this.inFlightKeys].slice(0, 64));
      key.duplicated = true;
    } else {
      key = pick(this.completedKeys);
    }
    // `reuse`: the same key with another body must be refused (422), whichever instance.
    const amount = action === 'reuse' ? key.quantity + 1 : key.quantity;
    const request = this.purchaseRequest(
      'idempotent',
      key.optionId,
      key.userId,
      amount,
      key.nested,
      this.target(),
    );
    request.headers = { 'idempotency-key': key.key };
    if (action !== 'reuse') {
      key.inFlight++;
      this.inFlightKeys.add(key);
    }
    const knownAtSend = key.purchaseId !== null || key.refused;
    this.pending.set(request, { idempotent: { key, action, knownAtSend } });
    return request;
  }

  private recordIdempotent(
    request: PlannedRequest,
    { key, action, knownAtSend }: IdempotentExpectation,
    answer: Answer | undefined,
  ): void {
    if (action !== 'reuse') {
      key.inFlight--;
      if (key.inFlight === 0) this.inFlightKeys.delete(key);
    }
    if (!answer) return;
    const label = statusLabel(answer);
    const replayed = header(answer, 'idempotent-replayed') === 'true';

    if (action === 'reuse') {
      if (label === '422 idempotency_key_reused') this.idempotency.reusedRejected++;
      else
        this.anomaly(
          `key reused with another body answered ${label} (expected 422)`,
          request,
          answer,
        );
      return;
    }
    if (label === '409 idempotency_key_in_flight') {
      // Expected for a duplicate sent while the first was in flight, or for the first request
      // when its duplicate reached the server first; never once the outcome was known.
      if (key.duplicated && !knownAtSend) this.idempotency.inFlightConflicts++;
      else
        this.anomaly(`idempotent ${action} answered 409 (no concurrent request)`, request, answer);
      return;
    }
    let id: string | null = null;
    if (answer.status === 201) {
      id = dataId(answer.body);
      if (!id) {
        this.purchasesWithoutId++;
        return;
      }
    } else if (label !== '400 invalid_purchase_quantity') {
      this.anomaly(`idempotent ${action} answered ${label}`, request, answer);
      return;
    }

    // Which request of a key is processed first is decided by the server, and answers may
    // arrive in any order: so only these are checked per answer. A request sent once the outcome
    // was known must be a replay; at most one answer per key is not a replay; a request sent
    // while the key was new is a replay only if a duplicate was in flight.
    if (replayed) {
      if (!knownAtSend && !key.duplicated) {
        this.anomaly('first request with a new key answered as a replay', request, answer);
      } else if (knownAtSend) {
        this.idempotency.replaysVerified++;
      }
    } else {
      key.originals++;
      if (knownAtSend) {
        this.anomaly(
          'request for a completed key answered without Idempotent-Replayed: true',
          request,
          answer,
        );
      } else if (key.originals > 1) {
        this.anomaly('two answers of one key not marked as replays', request, answer);
      }
    }

    const wasKnown = key.purchaseId !== null || key.refused;
    if (id !== null) {
      if (key.refused) this.anomaly('idempotency key answered both 201 and 400', request, answer);
      if (key.purchaseId === null) {
        key.purchaseId = id;
        this.purchaseIds.push(id);
      } else if (key.purchaseId !== id) {
        this.anomaly('replay returned another purchase id', request, answer);
      }
    } else {
      if (key.purchaseId !== null) {
        this.anomaly('idempotency key answered both 201 and 400', request, answer);
      }
      key.refused = true;
    }
    if (!wasKnown) this.completedKeys.push(key);
  }

  private acknowledge(answer: Answer): void {
    const id = dataId(answer.body);
    if (id) this.purchaseIds.push(id);
    else this.purchasesWithoutId++;
  }
}
