import { MikroORM } from '@mikro-orm/postgresql';
import { Inject, Injectable } from '@nestjs/common';
import type { QueryConfig, QueryResultRow } from 'pg';
import { APP_CONFIG } from '../config/config.module';
import type { AppConfig } from '../config/app-config';
import { runStatement } from '../database/sql';
import { CommitCoalescer } from './commit-coalescer';
import {
  AllocationState,
  CommitMode,
  CommitOutcome,
  CommitRequest,
  TicketOptionStore,
} from './ticket-option.store';

/** Most purchase rows in one coalesced statement (one actor batch is always taken whole). */
const MAX_ROWS_PER_STATEMENT = 4096;

/**
 * PostgreSQL errors that mean "nothing was written, try again": deadlock, serialization, and the
 * keyed statement's own division-by-zero guard (a claim neither locked nor reported lost).
 */
const RETRYABLE_SQLSTATES = new Set(['40P01', '40001', '22012']);

const LOAD_STATE: Omit<QueryConfig, 'values'> = {
  name: 'allocation-load-state',
  text: 'SELECT allocation, purchased, version FROM ticket_options WHERE id = $1',
};

/**
 * The SQL of the purchase hot path, in one place: ONE statement (one round trip, one transaction,
 * one WAL flush) commits the batches of one or many options. Per option it is all or nothing:
 * the option row is bumped only if its guard holds, and only the purchases (and idempotency
 * completions) of bumped options are inserted. Options whose guard failed come back without a row.
 *
 * - `$1..$3`: per option: id, tickets taken, the version the actor decided against.
 * - `$4..$7`: per purchase: id, option id, user id, quantity (`$8..$10`: idempotency key, claim
 *   and the answer to record for it).
 *
 * The capacity guard adds in `bigint`: with a stale cache, `purchased + taken` of two values near
 * 2^31 would overflow `integer` and abort the statement; in `bigint` it is just a refused guard,
 * and the actor re-decides against the fresh row.
 *
 * With several options, rows are locked in id order first, so that two instances committing
 * overlapping sets of options cannot deadlock. The UPDATE re-checks its guard on the newest row
 * version (READ COMMITTED re-evaluation), which is what makes both guards safe without a lock wait
 * before the statement.
 */
function commitStatement(
  mode: CommitMode,
  multiOption: boolean,
  keyed: boolean,
): Omit<QueryConfig, 'values'> {
  const guard =
    mode === 'guarded'
      ? 't.purchased::bigint + d.taken <= t.allocation'
      : 't.version = d.expected_version';
  const lock = multiOption
    ? `, locked AS (
      SELECT t.id FROM ticket_options t JOIN d ON d.id = t.id ORDER BY t.id FOR UPDATE OF t
    )`
    : '';
  const purchaseColumns = keyed
    ? `unnest($4::uuid[], $5::uuid[], $6::uuid[], $7::int[], $8::text[], $9::uuid[], $10::text[])
         AS p(id, option_id, user_id, quantity, idem_key, idem_claim, idem_body)`
    : 'unnest($4::uuid[], $5::uuid[], $6::uuid[], $7::int[]) AS p(id, option_id, user_id, quantity)';
  // A keyed purchase commits only with its claim. The claims still held are locked first (a
  // takeover after our snapshot is seen: FOR UPDATE re-reads the newest row); an option with a
  // purchase whose claim was taken over is not bumped at all, and that purchase comes back as
  // `lost`, so the other options of the statement still commit and the option re-decides without it.
  const claims = keyed
    ? `, held AS (
      SELECT k.key FROM idempotency_keys k JOIN p ON k.key = p.idem_key
       WHERE k.claim = p.idem_claim AND k.completed_at IS NULL
       ORDER BY k.key FOR UPDATE OF k
    ), lost AS (
      SELECT p.id, p.option_id FROM p
       WHERE p.idem_key IS NOT NULL AND p.idem_key NOT IN (SELECT key FROM held)
    )`
    : '';
  const notLost = keyed ? ' AND t.id NOT IN (SELECT option_id FROM lost)' : '';
  // Every claim of a bumped option was locked above, so this completes all of them; if it ever
  // did not, the division by zero aborts the statement (nothing written; every batch re-decides).
  const keyedCte = keyed
    ? `, keyed AS (
      UPDATE idempotency_keys k
         SET purchase_id = p.id, response_status = 201, response_body = p.idem_body::json,
             completed_at = now()
        FROM p JOIN bumped b ON b.id = p.option_id
       WHERE p.idem_key IS NOT NULL AND k.key = p.idem_key AND k.claim = p.idem_claim
         AND k.completed_at IS NULL
      RETURNING 1
    )`
    : '';
  const keyedCheck = keyed
    ? `WHERE 1 / (CASE WHEN (SELECT count(*) FROM keyed) =
        (SELECT count(*) FROM p JOIN bumped b ON b.id = p.option_id WHERE p.idem_key IS NOT NULL)
        THEN 1 ELSE 0 END) = 1`
    : '';
  const lostRows = keyed
    ? `
    UNION ALL
    SELECT l.option_id, NULL, NULL, NULL, NULL, l.id FROM lost l`
    : '';
  return {
    name: `allocation-commit-${mode}${multiOption ? '-multi' : ''}${keyed ? '-keyed' : ''}`,
    text: `
    WITH d AS (
      SELECT * FROM unnest($1::uuid[], $2::int[], $3::int[]) AS d(id, taken, expected_version)
    ), p AS (
      SELECT * FROM ${purchaseColumns}
    )${lock}${claims}, bumped AS (
      UPDATE ticket_options t
         SET purchased = t.purchased + d.taken, version = t.version + 1, updated_at = now()
        FROM d${multiOption ? ' JOIN locked l ON l.id = d.id' : ''}
       WHERE t.id = d.id AND ${guard}${notLost}
      RETURNING t.id, t.purchased, t.version, t.updated_at
    ), inserted AS (
      INSERT INTO purchases (id, ticket_option_id, user_id, quantity, created_at, updated_at)
      SELECT p.id, p.option_id, p.user_id, p.quantity, b.updated_at, b.updated_at
        FROM p JOIN bumped b ON b.id = p.option_id
      RETURNING ticket_option_id
    )${keyedCte}
    SELECT b.id, b.purchased, b.version, b.updated_at,
           (SELECT count(*) FROM inserted i WHERE i.ticket_option_id = b.id)::int AS inserted,
           NULL::uuid AS lost_purchase_id
      FROM bumped b
    ${keyedCheck}${lostRows}`,
  };
}

/** A bumped option (`lost_purchase_id` null), or one purchase whose claim was lost (the rest null). */
interface CommittedRow {
  id: string;
  purchased: number | null;
  version: number | null;
  updated_at: Date | null;
  inserted: number | null;
  lost_purchase_id: string | null;
}

@Injectable()
export class PostgresTicketOptionStore implements TicketOptionStore {
  private readonly coalescer: CommitCoalescer<CommitRequest, CommitOutcome>;
  private readonly statements: Record<
    `${'single' | 'multi'}-${'plain' | 'keyed'}`,
    Omit<QueryConfig, 'values'>
  >;

  constructor(
    private readonly orm: MikroORM,
    @Inject(APP_CONFIG) config: AppConfig,
  ) {
    const mode = config.actor.commitMode;
    // Built once: the statement text never changes for a mode, only its parameters.
    this.statements = {
      'single-plain': commitStatement(mode, false, false),
      'single-keyed': commitStatement(mode, false, true),
      'multi-plain': commitStatement(mode, true, false),
      'multi-keyed': commitStatement(mode, true, true),
    };
    this.coalescer = new CommitCoalescer((requests) => this.commitMany(requests), {
      maxInFlight: config.actor.maxWritesInFlight,
      maxWeightPerWrite: MAX_ROWS_PER_STATEMENT,
      weight: (request) => request.purchases.length,
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

  commit(request: CommitRequest): Promise<CommitOutcome> {
    return this.coalescer.submit(request);
  }

  private async commitMany(requests: CommitRequest[]): Promise<CommitOutcome[]> {
    const purchases = requests.flatMap((request) =>
      request.purchases.map((purchase) => ({ ...purchase, optionId: request.optionId })),
    );
    const keyed = purchases.some((purchase) => purchase.idempotency !== undefined);
    const values: unknown[] = [
      requests.map((r) => r.optionId),
      requests.map((r) => r.taken),
      requests.map((r) => r.expected.version),
      purchases.map((p) => p.id),
      purchases.map((p) => p.optionId),
      purchases.map((p) => p.userId),
      purchases.map((p) => p.quantity),
    ];
    if (keyed) {
      values.push(
        purchases.map((p) => p.idempotency?.key ?? null),
        purchases.map((p) => p.idempotency?.claim ?? null),
        purchases.map((p) => p.idempotency?.responseBody ?? null),
      );
    }
    let rows: CommittedRow[];
    try {
      rows = await this.query<CommittedRow>({
        ...this.statements[
          `${requests.length > 1 ? 'multi' : 'single'}-${keyed ? 'keyed' : 'plain'}`
        ],
        values,
      });
    } catch (error) {
      // Nothing was written: every batch of the statement re-decides, as after a lost race.
      if (RETRYABLE_SQLSTATES.has((error as { code?: string }).code ?? '')) {
        return requests.map(() => ({ committed: false, lostClaims: [] }));
      }
      throw error;
    }
    return outcomesOf(requests, rows);
  }

  private async query<R extends QueryResultRow>(config: QueryConfig): Promise<R[]> {
    return (await runStatement<R>(this.orm, config)).rows;
  }
}

/** One outcome per request, in order, from the rows of its statement. */
function outcomesOf(requests: CommitRequest[], rows: CommittedRow[]): CommitOutcome[] {
  const bumped = new Map<string, CommittedRow>();
  const lost = new Map<string, string[]>();
  for (const row of rows) {
    if (row.lost_purchase_id === null) bumped.set(row.id, row);
    else lost.set(row.id, [...(lost.get(row.id) ?? []), row.lost_purchase_id]);
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
      version: row.version!,
      createdAt: row.updated_at!,
    };
  });
}
