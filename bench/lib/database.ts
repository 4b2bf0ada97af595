import { randomUUID } from 'node:crypto';
import { appendFileSync } from 'node:fs';
import { join } from 'node:path';
import { Pool } from 'pg';
import { startEmbeddedPostgres } from '../../src/database/embedded-postgres';
import { assertPortFree, sleep } from './processes';

export interface BenchDatabase {
  url: string;
  /** Printable: never the password. */
  description: string;
  embedded: boolean;
  stop(): Promise<void>;
}

/**
 * BENCH_DATABASE_URL if set, else the bench's own embedded PostgreSQL under `.data/`. The soak
 * passes its own variable, data directory and database name (defaults: the bench's).
 */
export async function openDatabase(options: {
  root: string;
  port: number;
  logDir: string;
  /** The variable naming an existing database (default BENCH_DATABASE_URL). */
  urlVariable?: string;
  /** The embedded server's data directory under `.data/` (default bench-postgres). */
  dataDirName?: string;
  /** The embedded server's database (default bench). */
  database?: string;
}): Promise<BenchDatabase> {
  const urlVariable = options.urlVariable ?? 'BENCH_DATABASE_URL';
  const dataDirName = options.dataDirName ?? 'bench-postgres';
  const external = process.env[urlVariable]?.trim();
  if (external) {
    const url = new URL(external);
    return {
      url: external,
      description: `${urlVariable} (${url.hostname}:${url.port || 5432}${url.pathname})`,
      embedded: false,
      stop: () => Promise.resolve(),
    };
  }
  await assertPortFree(options.port);
  const dataDir = join(options.root, '.data', dataDirName);
  const logFile = join(options.logDir, 'postgres.log');
  // Durability settings are PostgreSQL's defaults (fsync, synchronous_commit on): commit cost is
  // exactly what group commit is about, so it must not be switched off here.
  const handle = await startEmbeddedPostgres({
    dataDir,
    port: options.port,
    database: options.database ?? 'bench',
    log: (line) => appendFileSync(logFile, `${line}\n`),
  });
  return {
    url: handle.url,
    description: `embedded PostgreSQL on 127.0.0.1:${options.port} (data in .data/${dataDirName})`,
    embedded: true,
    stop: () => handle.stop(),
  };
}

/** Empties the bench's own tables so that every run starts from the same state. */
export async function resetTables(pool: Pool): Promise<void> {
  // CASCADE: the tables that reference these (idempotency keys) go too.
  await pool.query('TRUNCATE purchases, ticket_options CASCADE');
}

/** Inserts options straight into the table (1,000 of them over HTTP would only add noise). */
export async function createOptions(
  pool: Pool,
  count: number,
  allocation: number,
  label: string,
  description = 'created by npm run bench',
): Promise<string[]> {
  const ids = Array.from({ length: count }, () => randomUUID());
  await pool.query(
    `INSERT INTO ticket_options (id, name, description, allocation)
     SELECT id, $2 || ' #' || n, $4, $3
       FROM unnest($1::uuid[]) WITH ORDINALITY AS t(id, n)`,
    [ids, label, allocation, description],
  );
  return ids;
}

/**
 * Waits until nothing more is being sold on these options: autocannon closes its connections at
 * the end of a run while purchases are still queued, and the server finishes them anyway.
 */
export async function waitForQuiescence(pool: Pool, optionIds: string[]): Promise<void> {
  let last = -1;
  let stableFor = 0;
  const deadline = Date.now() + 15_000;
  while (Date.now() < deadline && stableFor < 3) {
    const { rows } = await pool.query<{ sold: string }>(
      'SELECT COALESCE(SUM(purchased), 0)::text AS sold FROM ticket_options WHERE id = ANY($1::uuid[])',
      [optionIds],
    );
    const sold = Number(rows[0]?.sold ?? 0);
    stableFor = sold === last ? stableFor + 1 : 0;
    last = sold;
    if (stableFor < 3) await sleep(250);
  }
}

export interface AuditResult {
  ok: boolean;
  /** "ok", or what failed, in one line. */
  summary: string;
  problems: string[];
  /** 201 responses the load generator saw. */
  acknowledged: number;
  /** Purchase rows in the database for these options. */
  rows: number;
  /** Rows whose 201 the load generator never read (in flight when it closed its connections). */
  unacknowledged: number;
  /** SUM(ticket_options.purchased) over these options. */
  purchased: number;
}

const ID_CHUNK = 10_000;

/**
 * The invariant of SPEC section 1, checked after the fact: every purchase acknowledged with 201
 * exists (for the right option), and per option SUM(purchases.quantity) == purchased <= allocation.
 */
export async function auditPurchases(
  pool: Pool,
  optionIds: string[],
  acknowledgedIds: string[],
  acknowledgedWithoutId: number,
): Promise<AuditResult> {
  const problems: string[] = [];
  if (acknowledgedWithoutId > 0) {
    problems.push(`${acknowledgedWithoutId} responses were 201 without a data.id`);
  }

  const unique = [...new Set(acknowledgedIds)];
  if (unique.length !== acknowledgedIds.length) {
    problems.push(`${acknowledgedIds.length - unique.length} purchase ids were acknowledged twice`);
  }

  let found = 0;
  const missingExamples: string[] = [];
  for (let start = 0; start < unique.length; start += ID_CHUNK) {
    const chunk = unique.slice(start, start + ID_CHUNK);
    const { rows } = await pool.query<{ found: number }>(
      `SELECT count(*)::int AS found FROM purchases
        WHERE id = ANY($1::uuid[]) AND ticket_option_id = ANY($2::uuid[])`,
      [chunk, optionIds],
    );
    const here = rows[0]?.found ?? 0;
    found += here;
    if (here < chunk.length && missingExamples.length < 5) {
      const missing = await pool.query<{ id: string }>(
        `SELECT u::text AS id FROM unnest($1::uuid[]) AS u
          WHERE NOT EXISTS (
            SELECT 1 FROM purchases p WHERE p.id = u AND p.ticket_option_id = ANY($2::uuid[]))
          LIMIT 5`,
        [chunk, optionIds],
      );
      missingExamples.push(...missing.rows.map((row) => row.id));
    }
  }
  if (found < unique.length) {
    problems.push(
      `${unique.length - found} acknowledged purchases are missing from the database ` +
        `(e.g. ${missingExamples.slice(0, 5).join(', ')})`,
    );
  }

  const { rows: options } = await pool.query<{
    id: string;
    allocation: number;
    purchased: number;
    sold: string;
    rows: string;
  }>(
    `SELECT o.id, o.allocation, o.purchased,
            COALESCE(SUM(p.quantity), 0)::text AS sold, count(p.id)::text AS rows
       FROM ticket_options o
       LEFT JOIN purchases p ON p.ticket_option_id = o.id
      WHERE o.id = ANY($1::uuid[])
      GROUP BY o.id, o.allocation, o.purchased`,
    [optionIds],
  );
  if (options.length !== optionIds.length) {
    problems.push(`${optionIds.length - options.length} ticket options are missing`);
  }
  let rows = 0;
  let purchased = 0;
  const broken: string[] = [];
  for (const option of options) {
    const sold = Number(option.sold);
    rows += Number(option.rows);
    purchased += option.purchased;
    if (sold !== option.purchased || option.purchased > option.allocation || option.purchased < 0) {
      broken.push(
        `${option.id}: SUM(quantity)=${sold}, purchased=${option.purchased}, allocation=${option.allocation}`,
      );
    }
  }
  if (broken.length > 0) {
    problems.push(
      `${broken.length} options break SUM(quantity) == purchased <= allocation (${broken
        .slice(0, 3)
        .join('; ')})`,
    );
  }

  return {
    ok: problems.length === 0,
    summary: problems.length === 0 ? 'ok' : `FAILED: ${problems.join('; ')}`,
    problems,
    acknowledged: acknowledgedIds.length,
    rows,
    unacknowledged: rows - found,
    purchased,
  };
}

/**
 * Purchases per commit statement, from the data alone: one statement writes its purchases (of one
 * or, coalesced, of many options) with created_at = the transaction's now(), so a statement is a
 * distinct created_at. Only rows created since `since` count (the measured run, not the warm-up).
 */
export async function meanBatchSize(
  pool: Pool,
  optionIds: string[],
  since: Date,
): Promise<number | null> {
  const { rows } = await pool.query<{ purchases: number; commits: number }>(
    `SELECT count(*)::int AS purchases,
            count(DISTINCT created_at)::int AS commits
       FROM purchases
      WHERE ticket_option_id = ANY($1::uuid[]) AND created_at >= $2`,
    [optionIds, since],
  );
  const row = rows[0];
  return row && row.commits > 0 ? row.purchases / row.commits : null;
}
