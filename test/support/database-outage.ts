import { withAdmin } from './test-app';
import { waitFor } from './waiting';

export function databaseNameOf(databaseUrl: string): string {
  return decodeURIComponent(new URL(databaseUrl).pathname.slice(1));
}

/**
 * Makes one database unreachable, deterministically: new connections are refused, and every
 * open one is terminated. Returns once PostgreSQL lists no session of the database any more
 * (however long the backends take to exit on a busy machine).
 */
export async function refuseConnections(databaseUrl: string): Promise<void> {
  const name = databaseNameOf(databaseUrl);
  await withAdmin(async (client) => {
    await client.query(`ALTER DATABASE ${client.escapeIdentifier(name)} ALLOW_CONNECTIONS false`);
    await waitFor(
      `every session of ${name} to end`,
      async () =>
        (
          await client.query<{ pid: number }>(
            `SELECT pid, pg_terminate_backend(pid) FROM pg_stat_activity
              WHERE datname = $1 AND pid <> pg_backend_pid()`,
            [name],
          )
        ).rowCount,
      (left) => left === 0,
    );
  });
}

export async function allowConnections(databaseUrl: string): Promise<void> {
  const name = databaseNameOf(databaseUrl);
  await withAdmin((client) =>
    client.query(`ALTER DATABASE ${client.escapeIdentifier(name)} ALLOW_CONNECTIONS true`),
  );
}

/**
 * Resolves once some session of the database waits for a lock (e.g. an actor's commit blocked by
 * a row lock the test holds), as PostgreSQL's own view of its sessions reports it.
 */
export async function untilSomeoneWaitsForALock(databaseUrl: string): Promise<void> {
  const name = databaseNameOf(databaseUrl);
  await withAdmin((client) =>
    waitFor(
      `a session of ${name} waiting for a lock`,
      async () =>
        (
          await client.query(
            `SELECT 1 FROM pg_stat_activity WHERE datname = $1 AND wait_event_type = 'Lock'`,
            [name],
          )
        ).rowCount,
      (waiting) => (waiting ?? 0) > 0,
    ),
  );
}

/** Resolves once PostgreSQL lists no session of the database (e.g. after closing every app). */
export async function untilNoSessionOf(databaseUrl: string): Promise<void> {
  const name = databaseNameOf(databaseUrl);
  await withAdmin((client) =>
    waitFor(
      `every session of ${name} to end`,
      async () =>
        (
          await client.query(
            'SELECT 1 FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()',
            [name],
          )
        ).rowCount,
      (left) => left === 0,
    ),
  );
}

/**
 * Resolves once no session of the database but ours is busy (e.g. a killed instance's last
 * statements have committed or aborted), as PostgreSQL's own view of its sessions reports it.
 */
export async function untilNoSessionIsBusy(
  sql: { query: (text: string, values: unknown[]) => Promise<{ rowCount: number | null }> },
  databaseUrl: string,
): Promise<void> {
  const name = databaseNameOf(databaseUrl);
  await waitFor(
    `the sessions of ${name} to finish`,
    async () =>
      (
        await sql.query(
          `SELECT pid FROM pg_stat_activity
            WHERE datname = $1 AND state <> 'idle' AND pid <> pg_backend_pid()`,
          [name],
        )
      ).rowCount,
    (busy) => busy === 0,
  );
}
