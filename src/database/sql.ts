import type { EntityManager, MikroORM } from '@mikro-orm/postgresql';
import { CompiledQuery, type Transaction } from 'kysely';
import type { Pool, QueryResult, QueryResultRow } from 'pg';
import { isConnectionBroken } from './database-errors';

/** One SQL statement with `$1…$n` parameters; `name` makes it a prepared statement. */
export interface Statement {
  name?: string;
  text: string;
  values?: readonly unknown[];
}

export interface StatementResult<R> {
  rows: R[];
  rowCount: number;
}

/**
 * Where a statement runs: the ORM's pool, or the transaction an EntityManager has open (e.g.
 * inside `em.transactional`), so that a repository's write joins the caller's unit of work.
 */
export type StatementTarget = MikroORM | EntityManager;

/**
 * SQL for a `timestamptz` column as answers show it: RFC 3339 in UTC with milliseconds, exactly
 * what JavaScript's `toISOString` writes (a replayed answer and a fresh one read the same).
 */
export function isoUtcSql(column: string): string {
  return `to_char(${column} AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')`;
}

const pools = new WeakMap<object, Promise<Pool>>();
/** The same pools once resolved: a statement then reaches its pool without a promise turn. */
const resolvedPools = new WeakMap<object, Pool>();

/**
 * The `pg` pool behind MikroORM (`PostgreSqlConnection.getNativeClient()`, public API): one pool
 * for the ORM and for our statements, so there is no second pool to size. Looked up once per ORM
 * (at start-up, by DatabaseModule): after `orm.close()` statements fail on the ended pool rather
 * than open a new one.
 */
export function poolOf(orm: MikroORM): Promise<Pool> {
  let pool = pools.get(orm);
  if (!pool) {
    pool = orm.em.getConnection().getNativeClient();
    pools.set(orm, pool);
    void pool.then(
      (resolved) => resolvedPools.set(orm, resolved),
      () => undefined, // the caller that awaits this promise sees the failure
    );
  }
  return pool;
}

/**
 * Runs one statement: the one way this service reaches the database. On the pool, a named
 * statement is prepared once per connection (parsed and planned once), which is what the hot
 * path's commit and the buyers' reads rely on. Inside a transaction it runs on that
 * transaction's connection, unnamed.
 */
export function runStatement<R extends QueryResultRow>(
  target: StatementTarget,
  statement: Statement,
): Promise<StatementResult<R>> {
  if ('getTransactionContext' in target) return runWithin<R>(target, statement);
  const pool = resolvedPools.get(target);
  if (pool) return runOnPool<R>(pool, statement);
  return poolOf(target).then((resolved) => runOnPool<R>(resolved, statement));
}

async function runWithin<R extends QueryResultRow>(
  em: EntityManager,
  statement: Statement,
): Promise<StatementResult<R>> {
  const trx = em.getTransactionContext<Transaction<unknown>>();
  if (!trx) return runOnPool<R>(await em.getConnection().getNativeClient(), statement);
  const result = await trx.executeQuery<R>(
    CompiledQuery.raw(statement.text, [...(statement.values ?? [])]),
  );
  return { rows: result.rows, rowCount: Number(result.numAffectedRows ?? result.rows.length) };
}

/**
 * Callbacks, not promises, down to pg (pool.connect and client.query each add a promise, or two,
 * per statement otherwise): one promise per statement, for the caller.
 */
function runOnPool<R extends QueryResultRow>(
  pool: Pool,
  statement: Statement,
): Promise<StatementResult<R>> {
  const config = {
    name: statement.name,
    text: statement.text,
    values: statement.values as unknown[] | undefined,
  };
  return new Promise((resolve, reject) => {
    pool.connect((connectError, client, release) => {
      if (connectError || !client) return reject(connectError ?? new Error('no pool client'));
      const done = (error: Error | null, result?: QueryResult<R>): void => {
        // pg reports a dead connection asynchronously; releasing it with the error makes the
        // pool destroy it now instead of handing it to the next statement.
        release(error && isConnectionBroken(error) ? error : undefined);
        if (error || !result) reject(error ?? new Error('no query result'));
        else resolve({ rows: result.rows, rowCount: result.rowCount ?? 0 });
      };
      try {
        client.query<R>(config, done);
      } catch (error) {
        done(error instanceof Error ? error : new Error(String(error)));
      }
    });
  });
}
