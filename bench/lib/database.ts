/** The bench's PostgreSQL: opening it, seeding options, and auditing what the load left in it. */
import { randomUUID } from 'node:crypto';
import { appendFileSync } from 'node:fs';
import { join } from 'node:path';
import { Pool } from 'pg';
import { startEmbeddedPostgres } from '../../src/database/embedded-postgres';
import { ppidOf } from './cpu';
import { assertPortFree, Harness, sleep } from './harness';

export type BenchDatabase = Awaited<ReturnType<typeof openDatabase>>;

/**
 * `urlVariable` (an existing database) if set, else an embedded PostgreSQL under `.data/`; with a
 * printable description (no password), a small pool for seeding and auditing, and the
 * postmaster's pid when the server runs on this machine (its CPU is read from /proc).
 */
export async function openDatabase(
  h: Harness,
  o: { urlVariable: string; port: number; dataDir: string; database: string },
) {
  let url = process.env[o.urlVariable]?.trim() ?? '';
  let description = `embedded PostgreSQL on 127.0.0.1:${o.port} (data in .data/${o.dataDir})`;
  if (url) {
    const { hostname, port, pathname } = new URL(url);
    description = `${o.urlVariable} (${hostname}:${port || 5432}${pathname})`;
  } else {
    await assertPortFree(o.port);
    const logFile = join(h.options.logDir, 'postgres.log');
    // Durability stays PostgreSQL's default (fsync, synchronous_commit): commit cost is what
    // group commit is about, so it must not be switched off here.
    const handle = await startEmbeddedPostgres({
      dataDir: join(h.options.root, '.data', o.dataDir),
      port: o.port,
      database: o.database,
      log: (line) => appendFileSync(logFile, `${line}\n`),
    });
    h.onCleanup(() => handle.stop());
    url = handle.url;
  }
  const pool = new Pool({ connectionString: url, max: 2 });
  h.onCleanup(() => pool.end());
  const { rows } = await pool.query<{ pid: number }>('SELECT pg_backend_pid() AS pid');
  const embedded = !process.env[o.urlVariable]?.trim();
  return { url, description, embedded, pool, postmaster: ppidOf(rows[0].pid) };
}

/** Empties the tables (and those that reference them) so that every embedded run starts alike. */
export const resetTables = (pool: Pool) => pool.query('TRUNCATE purchases, ticket_options CASCADE');

/** Options inserted straight into the table (1,000 of them over HTTP would only add noise). */
export async function createOptions(pool: Pool, n: number, allocation: number, name: string) {
  const ids = Array.from({ length: n }, () => randomUUID());
  await pool.query(
    `INSERT INTO ticket_options (id, name, description, allocation)
     SELECT id, 'bench ' || $2 || ' #' || n, 'created by the bench', $3 FROM unnest($1::uuid[]) WITH ORDINALITY AS t(id, n)`,
    [ids, name, allocation],
  );
  return ids;
}

/** Waits until no more rows appear: servers finish queued purchases after the load stops. */
export async function waitForQuiescence(pool: Pool, optionIds: string[]): Promise<void> {
  const sql = 'SELECT count(*)::int AS n FROM purchases WHERE ticket_option_id = ANY($1::uuid[])';
  for (let [last, stable, tries] = [-1, 0, 0]; stable < 3 && tries < 60; tries++) {
    const { n } = (await pool.query<{ n: number }>(sql, [optionIds])).rows[0];
    [stable, last] = [n === last ? stable + 1 : 0, n];
    if (stable < 3) await sleep(250);
  }
}

export type AuditResult = Awaited<ReturnType<typeof auditPurchases>>;

/** Sold per option as the target counts it, when that is not `ticket_options.purchased`. */
export type SoldCounters = (optionIds: string[]) => Promise<Map<string, number>>;

interface OptionRow {
  id: string;
  allocation: number;
  purchased: number;
  quantity: number;
  rows: number;
}

/**
 * docs/design.md, Invariant after the fact: every purchase acknowledged with 201 ('': one without a readable
 * id) exists for its option, and per option SUM(quantity) == sold <= allocation (sold:
 * `purchased`, or the target's own counters).
 */
export async function auditPurchases(
  pool: Pool,
  optionIds: string[],
  acknowledged: string[],
  soldCounters?: SoldCounters,
) {
  const unique = [...new Set(acknowledged.filter(Boolean))];
  const { rows: missing } = await pool.query<{ id: string }>(
    `SELECT u::text AS id FROM unnest($1::uuid[]) AS u WHERE NOT EXISTS (
       SELECT 1 FROM purchases p WHERE p.id = u AND p.ticket_option_id = ANY($2::uuid[]))`,
    [unique, optionIds],
  );
  const { rows: options } = await pool.query<OptionRow>(
    `SELECT o.id, o.allocation, o.purchased, COALESCE(SUM(p.quantity), 0)::int AS quantity,
            count(p.id)::int AS rows
       FROM ticket_options o LEFT JOIN purchases p ON p.ticket_option_id = o.id
      WHERE o.id = ANY($1::uuid[]) GROUP BY o.id`,
    [optionIds],
  );
  const counters = soldCounters ? await soldCounters(optionIds) : null;
  const sold = (o: OptionRow) => (counters ? (counters.get(o.id) ?? 0) : o.purchased);
  const broken = options
    .filter((o) => o.quantity !== sold(o) || sold(o) > o.allocation || sold(o) < 0)
    .map(
      (o) => `${o.id}: SUM(quantity) ${o.quantity}, sold ${sold(o)}, allocation ${o.allocation}`,
    );
  const problems = [
    [acknowledged.length - acknowledged.filter(Boolean).length, 'answers were 201 without data.id'],
    [acknowledged.filter(Boolean).length - unique.length, 'purchase ids were acknowledged twice'],
    [
      missing.length,
      `acknowledged purchases are missing (${missing
        .slice(0, 3)
        .map((m) => m.id)
        .join(', ')})`,
    ],
    [optionIds.length - options.length, 'ticket options are missing'],
    [
      broken.length,
      `options break SUM(quantity) == sold <= allocation (${broken.slice(0, 3).join('; ')})`,
    ],
  ].flatMap(([n, what]) => (n ? [`${n} ${what}`] : []));
  const rows = options.reduce((n, o) => n + o.rows, 0);
  return {
    ok: problems.length === 0,
    /** "ok", or what failed, in one line. */
    summary: problems.length === 0 ? 'ok' : `FAILED: ${problems.join('; ')}`,
    acknowledged: acknowledged.length,
    rows,
    sold: options.reduce((n, o) => n + sold(o), 0),
    /** Rows whose 201 was never read (in flight when the generator closed its connections). */
    unacknowledged: rows - (unique.length - missing.length),
  };
}

/**
 * Purchases per commit statement, from the data alone: one statement writes its purchases with
 * created_at = the transaction's now(), so a statement is a distinct created_at.
 */
export async function meanBatchSize(pool: Pool, optionIds: string[], since: Date) {
  const { rows } = await pool.query<{ purchases: number; commits: number }>(
    `SELECT count(*)::int AS purchases, count(DISTINCT created_at)::int AS commits FROM purchases
      WHERE ticket_option_id = ANY($1::uuid[]) AND created_at >= $2`,
    [optionIds, since],
  );
  return rows[0].commits > 0 ? rows[0].purchases / rows[0].commits : null;
}
