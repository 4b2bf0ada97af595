import { MikroORM } from '@mikro-orm/postgresql';
import { Inject, Injectable } from '@nestjs/common';
import type { QueryConfig, QueryResultRow } from 'pg';
import { APP_CONFIG } from '../config/config.module';
import type { AppConfig } from '../config/app-config';
import { runStatement } from '../database/sql';
import { CommitCoalescer } from './commit-coalescer';
import {
  EXPIRE_DUE,
  LedgerShape,
  ledgerGroups,
  ledgerStatement,
  LOAD_STATE,
  NamedStatement,
  purchaseStatement,
  REFRESH_STATE,
  RESERVATION_STATES,
} from './ledger-statements';
import {
  AllocationState,
  CommitMode,
  CommitOutcome,
  CommitRequest,
  RefreshedState,
  TargetOutcome,
  TicketOptionStore,
} from './ticket-option.store';

/** Most rows in one coalesced statement (one actor batch is always taken whole). */
const MAX_ROWS_PER_STATEMENT = 4096;

/**
 * PostgreSQL errors that mean "nothing was written, try again": deadlock, serialization, and the
 * keyed statement's own division-by-zero guard (a claim neither locked nor reported lost).
 */
const RETRYABLE_SQLSTATES = new Set(['40P01', '40001', '22012']);

/** One row of a commit statement (docs/design.md, Actor and commit): which kind says which columns. */
interface CommitRow {
  kind: 'option' | 'lost' | 'hold' | 'target';
  id: string;
  option_id: string | null;
  purchased: number | null;
  held: number | null;
  version: number | null;
  /** Times as ISO 8601 text in UTC (`toISOString`'s form), from the database clock. */
  at: string | null;
  created_at: string | null;
  status: string | null;
  inserted: number | null;
}

/** What the expiry sweep gave back, per option. */
export interface ExpiredHolds {
  optionId: string;
  tickets: number;
  holds: number;
}

function rowsOf(request: CommitRequest): number {
  return (
    request.purchases.length +
    (request.holds?.length ?? 0) +
    (request.confirms?.length ?? 0) +
    (request.releases?.length ?? 0) +
    (request.cancels?.length ?? 0)
  );
}

@Injectable()
export class PostgresTicketOptionStore implements TicketOptionStore {
  private readonly coalescer: CommitCoalescer<CommitRequest, CommitOutcome>;
  private readonly mode: CommitMode;
  private readonly statements = new Map<string, NamedStatement>();

  constructor(
    private readonly orm: MikroORM,
    @Inject(APP_CONFIG) config: AppConfig,
  ) {
    this.mode = config.actor.commitMode;
    this.coalescer = new CommitCoalescer((requests) => this.commitMany(requests), {
      maxInFlight: config.actor.maxWritesInFlight,
      slowWriteMs: config.actor.slowWriteMs,
      maxWeightPerWrite: MAX_ROWS_PER_STATEMENT,
      weight: rowsOf,
    });
  }

  /** Statements written and batches they carried, for metrics and the benchmark. */
  get writeStats() {
    return this.coalescer.stats;
  }

  async load(optionId: string): Promise<AllocationState | null> {
    const rows = await this.query<AllocationState>({ ...LOAD_STATE, values: [optionId] });
    return rows[0] ?? null;
  }

  async refresh(optionId: string): Promise<RefreshedState | null> {
    const rows = await this.query<RefreshedState>({ ...REFRESH_STATE, values: [optionId] });
    return rows[0] ?? null;
  }

  /** Expires up to `limit` due holds (the oldest first) and gives their tickets back. */
  async expireDue(limit: number): Promise<ExpiredHolds[]> {
    return this.query<ExpiredHolds>({ ...EXPIRE_DUE, values: [limit] });
  }

  commit(request: CommitRequest): Promise<CommitOutcome> {
    return this.coalescer.submit(request);
  }

  private async commitMany(requests: CommitRequest[]): Promise<CommitOutcome[]> {
    const statement = requests.every((r) => rowsOf(r) === r.purchases.length)
      ? this.purchaseCommit(requests)
      : this.ledgerCommit(requests);
    let rows: CommitRow[];
    try {
      rows = await this.query<CommitRow>(statement);
    } catch (error) {
      // Nothing was written: every batch of the statement re-decides, as after a lost race.
      if (RETRYABLE_SQLSTATES.has((error as { code?: string }).code ?? '')) {
        return requests.map(() => ({ committed: false, lostClaims: [] }));
      }
      throw error;
    }
    await this.classifyRechecks(rows);
    return outcomesOf(requests, rows);
  }

  /**
   * Confirms and releases that changed nothing: why, from the rows as committed now (their
   * states are final, so what this read sees is what the commit met or later the same).
   */
  private async classifyRechecks(rows: CommitRow[]): Promise<void> {
    const rechecks = rows.filter((row) => row.status?.startsWith('recheck-'));
    if (rechecks.length === 0) return;
    const states = new Map(
      (
        await this.query<{ id: string; status: string; due: boolean }>({
          ...RESERVATION_STATES,
          values: [rechecks.map((row) => row.id)],
        })
      ).map((state) => [state.id, state]),
    );
    for (const row of rechecks) {
      const state = states.get(row.id);
      const confirm = row.status === 'recheck-confirm';
      if (!state) row.status = 'missing';
      else if (state.status === 'confirmed') row.status = 'confirmed';
      else if (!confirm) row.status = 'unchanged';
      else row.status = state.status === 'released' ? 'released' : 'expired';
    }
  }

  /** Direct purchases only: the lean statement of the brief's route. */
  private purchaseCommit(requests: CommitRequest[]): QueryConfig {
    // The parameter arrays in one pass over the batches (this runs for every commit).
    const [optionIds, taken, versions] = [[], [], []] as unknown[][];
    const [ids, purchaseOptions, users, quantities] = [[], [], [], []] as unknown[][];
    const [keys, claims, answers] = [[], [], []] as unknown[][];
    let keyed = false;
    for (const request of requests) {
      optionIds.push(request.optionId);
      taken.push(request.taken);
      versions.push(request.expected.version);
      for (const purchase of request.purchases) {
        ids.push(purchase.id);
        purchaseOptions.push(request.optionId);
        users.push(purchase.userId);
        quantities.push(purchase.quantity);
        const completion = purchase.idempotency;
        keyed ||= completion !== undefined;
        keys.push(completion?.key ?? null);
        claims.push(completion?.claim ?? null);
        answers.push(completion?.responseBody ?? null);
      }
    }
    const multi = requests.length > 1;
    const values = [optionIds, taken, versions, ids, purchaseOptions, users, quantities];
    if (keyed) values.push(keys, claims, answers);
    const name = `purchase-${multi}-${keyed}`;
    let statement = this.statements.get(name);
    if (!statement) {
      statement = purchaseStatement(this.mode, multi, keyed);
      this.statements.set(name, statement);
    }
    return { ...statement, values };
  }

  /** Anything with holds, confirmations, releases or cancellations: the ledger statement. */
  private ledgerCommit(requests: CommitRequest[]): QueryConfig {
    const columns = ledgerColumns(requests);
    const shape: LedgerShape = {
      purchases: columns.purchases[0].length > 0,
      holds: columns.holds[0].length > 0,
      confirms: columns.confirms[0].length > 0,
      releases: columns.releases[0].length > 0,
      cancels: columns.cancels[0].length > 0,
      keyed: columns.keyed[0].length > 0,
    };
    const name = `ledger-${JSON.stringify(shape)}`;
    let statement = this.statements.get(name);
    if (!statement) {
      statement = ledgerStatement(this.mode, shape);
      this.statements.set(name, statement);
    }
    return { ...statement, values: ledgerGroups(shape).flatMap((group) => columns[group]) };
  }

  private async query<R extends QueryResultRow>(config: QueryConfig): Promise<R[]> {
    return (await runStatement<R>(this.orm, config)).rows;
  }
}

/** The parameter arrays of a ledger statement, per group, in the order of LEDGER_PARAMETERS. */
function ledgerColumns(requests: CommitRequest[]) {
  const columns = {
    options: [[], [], [], []] as unknown[][],
    purchases: [[], [], [], []] as unknown[][],
    holds: [[], [], [], [], []] as unknown[][],
    confirms: [[], [], []] as unknown[][],
    releases: [[], []] as unknown[][],
    cancels: [[], []] as unknown[][],
    keyed: [[], [], [], [], []] as unknown[][],
  };
  const push = (group: unknown[][], ...values: unknown[]) =>
    values.forEach((value, i) => group[i].push(value));
  for (const r of requests) {
    const sold = r.purchases.reduce((sum, p) => sum + p.quantity, 0);
    push(columns.options, r.optionId, sold, r.taken - sold, r.expected.version);
    for (const p of r.purchases) {
      push(columns.purchases, p.id, r.optionId, p.userId, p.quantity);
      if (p.idempotency) push(columns.keyed, p.id, r.optionId, ...keyOf(p.idempotency));
    }
    for (const h of r.holds ?? []) {
      push(columns.holds, h.id, r.optionId, h.userId, h.quantity, h.ttlSeconds);
      if (h.idempotency) push(columns.keyed, h.id, r.optionId, ...keyOf(h.idempotency));
    }
    for (const c of r.confirms ?? []) {
      push(columns.confirms, c.reservationId, r.optionId, c.purchaseId);
      if (c.idempotency) push(columns.keyed, c.purchaseId, r.optionId, ...keyOf(c.idempotency));
    }
    for (const id of r.releases ?? []) push(columns.releases, id, r.optionId);
    for (const id of r.cancels ?? []) push(columns.cancels, id, r.optionId);
  }
  return columns;
}

function keyOf(completion: { key: string; claim: string; responseBody: string }) {
  return [completion.key, completion.claim, completion.responseBody];
}

/** One outcome per request, in order, from the rows of its statement. */
function outcomesOf(requests: CommitRequest[], rows: CommitRow[]): CommitOutcome[] {
  const bumped = new Map<string, CommitRow>();
  const lost = new Map<string, string[]>();
  const holds = new Map<string, { expiresAt: Date; createdAt: Date }>();
  const targets = new Map<string, TargetOutcome>();
  for (const row of rows) {
    if (row.kind === 'option') bumped.set(row.id, row);
    else if (row.kind === 'lost')
      lost.set(row.option_id!, [...(lost.get(row.option_id!) ?? []), row.id]);
    else if (row.kind === 'hold')
      holds.set(row.id, { expiresAt: new Date(row.at!), createdAt: new Date(row.created_at!) });
    else targets.set(row.id, row.status as TargetOutcome);
  }
  return requests.map((request): CommitOutcome => {
    const row = bumped.get(request.optionId);
    if (!row) return { committed: false, lostClaims: lost.get(request.optionId) ?? [] };
    if (row.inserted !== request.purchases.length) {
      // Cannot happen inside one statement; if it ever did, it must not be acknowledged.
      throw new Error(`commit inserted ${row.inserted} of ${request.purchases.length} purchases`);
    }
    return {
      committed: true,
      purchased: row.purchased!,
      held: row.held!,
      version: row.version!,
      createdAt: new Date(row.at!),
      holds,
      targets,
    };
  });
}
