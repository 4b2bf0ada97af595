import { MikroORM } from '@mikro-orm/postgresql';
import { Injectable } from '@nestjs/common';
import type { PoolClient, QueryConfig, QueryResultRow } from 'pg';
import {
  AcceptedPurchase,
  AllocationState,
  CommitOutcome,
  TicketOptionStore,
} from './ticket-option.store';

/**
 * The SQL of the purchase hot path, in one place. Both statements are named prepared statements,
 * so PostgreSQL parses and plans them once per connection.
 */
const LOAD_STATE: Omit<QueryConfig, 'values'> = {
  name: 'allocation-load-state',
  text: 'SELECT allocation, purchased, version FROM ticket_options WHERE id = $1',
};

/**
 * One statement, hence one transaction and one round trip: the version-checked update of the
 * option and the multi-row insert of the batch. When the version does not match, `bumped` is empty,
 * so nothing is inserted and no row comes back: the caller lost the race and must reload.
 */
const COMMIT_BATCH: Omit<QueryConfig, 'values'> = {
  name: 'allocation-commit-batch',
  text: `
    WITH bumped AS (
      UPDATE ticket_options
         SET purchased = $2, version = version + 1, updated_at = now()
       WHERE id = $1 AND version = $3
      RETURNING version, updated_at
    ), inserted AS (
      INSERT INTO purchases (id, ticket_option_id, user_id, quantity, created_at, updated_at)
      SELECT p.id, $1, p.user_id, p.quantity, b.updated_at, b.updated_at
        FROM bumped b
       CROSS JOIN unnest($4::uuid[], $5::uuid[], $6::int[]) AS p(id, user_id, quantity)
      RETURNING 1
    )
    SELECT b.version, b.updated_at, (SELECT count(*) FROM inserted)::int AS inserted
      FROM bumped b`,
};

interface KnexClient {
  acquireConnection(): Promise<PoolClient>;
  releaseConnection(connection: PoolClient): Promise<void>;
}

@Injectable()
export class PostgresTicketOptionStore implements TicketOptionStore {
  constructor(private readonly orm: MikroORM) {}

  async load(optionId: string): Promise<AllocationState | null> {
    const rows = await this.query<AllocationState>({ ...LOAD_STATE, values: [optionId] });
    return rows[0] ?? null;
  }

  async commit(
    optionId: string,
    expectedVersion: number,
    purchased: number,
    purchases: AcceptedPurchase[],
  ): Promise<CommitOutcome> {
    const rows = await this.query<{ version: number; updated_at: Date; inserted: number }>({
      ...COMMIT_BATCH,
      values: [
        optionId,
        purchased,
        expectedVersion,
        purchases.map((p) => p.id),
        purchases.map((p) => p.userId),
        purchases.map((p) => p.quantity),
      ],
    });
    const row = rows[0];
    if (!row) return { committed: false };
    if (row.inserted !== purchases.length) {
      // Cannot happen inside one statement; if it ever did, it must not be acknowledged.
      throw new Error(`commit inserted ${row.inserted} of ${purchases.length} purchases`);
    }
    return { committed: true, version: row.version, createdAt: row.updated_at };
  }

  /** Runs one statement on a connection of MikroORM's own pool (no second pool to size). */
  private async query<R extends QueryResultRow>(config: QueryConfig): Promise<R[]> {
    const client = this.orm.em.getConnection().getKnex().client as KnexClient;
    const connection = await client.acquireConnection();
    try {
      const result = await connection.query<R>(config);
      return result.rows;
    } finally {
      await client.releaseConnection(connection);
    }
  }
}
