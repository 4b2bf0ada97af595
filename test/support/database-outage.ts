import { withAdmin } from './test-app';

export function databaseNameOf(databaseUrl: string): string {
  return decodeURIComponent(new URL(databaseUrl).pathname.slice(1));
}

/**
 * Makes one database unreachable, deterministically: new connections are refused, and every
 * open one is terminated (PostgreSQL waits until each backend has exited before returning).
 */
export async function refuseConnections(databaseUrl: string): Promise<void> {
  const name = databaseNameOf(databaseUrl);
  await withAdmin(async (client) => {
    await client.query(`ALTER DATABASE ${client.escapeIdentifier(name)} ALLOW_CONNECTIONS false`);
    const terminated = await client.query<{ done: boolean }>(
      `SELECT pg_terminate_backend(pid, 10000) AS done
         FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()`,
      [name],
    );
    if (terminated.rows.some((row) => !row.done)) {
      throw new Error(`some connections to ${name} did not end`);
    }
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
 * a row lock the test holds). Polls PostgreSQL's own view of it; the test timeout bounds the wait.
 */
export async function untilSomeoneWaitsForALock(databaseUrl: string): Promise<void> {
  const name = databaseNameOf(databaseUrl);
  await withAdmin(async (client) => {
    for (;;) {
      const waiting = await client.query(
        `SELECT 1 FROM pg_stat_activity WHERE datname = $1 AND wait_event_type = 'Lock'`,
        [name],
      );
      if (waiting.rowCount! > 0) return;
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
  });
}
