import type { MikroORM } from '@mikro-orm/postgresql';
import type { PoolClient, QueryConfig, QueryResultRow } from 'pg';
import { isConnectionBroken } from './database-errors';

type DisposableConnection = PoolClient & { __knex__disposed?: unknown };

interface KnexClient {
  acquireConnection(): Promise<PoolClient>;
  releaseConnection(connection: PoolClient): Promise<void>;
}

/**
 * Runs one statement on a connection of MikroORM's own pool (no second pool to size). For the few
 * hot or atomic statements that are clearer, and faster, as SQL than as unit-of-work flushes;
 * `config.name` makes it a prepared statement, parsed and planned once per connection.
 */
export async function runStatement<R extends QueryResultRow>(
  orm: MikroORM,
  config: QueryConfig,
): Promise<{ rows: R[]; rowCount: number }> {
  const client = orm.em.getConnection().getKnex().client as KnexClient;
  const connection = await client.acquireConnection();
  try {
    const result = await connection.query<R>(config);
    return { rows: result.rows, rowCount: result.rowCount ?? 0 };
  } catch (error) {
    // pg reports a dead connection asynchronously; mark it now so the pool destroys it instead of
    // handing it to the next statement (knex's own marker, checked when a connection is acquired).
    if (isConnectionBroken(error)) (connection as DisposableConnection).__knex__disposed = error;
    throw error;
  } finally {
    await client.releaseConnection(connection);
  }
}
