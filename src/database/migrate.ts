import { MikroORM } from '@mikro-orm/core';
import { Client } from 'pg';

/** Arbitrary constant shared by every instance: the key of the migration advisory lock. */
const MIGRATION_LOCK_KEY = 7_141_981_203;

/**
 * Applies pending migrations while holding a session-level PostgreSQL advisory lock on a dedicated
 * connection, so that many instances starting at once run them exactly once: the first takes the
 * lock and migrates, the others wait, then find nothing pending.
 */
export async function migrateUnderLock(
  orm: MikroORM,
  databaseUrl: string,
  connectTimeoutMs = 0,
): Promise<string[]> {
  const lockClient = new Client({
    connectionString: databaseUrl,
    connectionTimeoutMillis: connectTimeoutMs,
  });
  await lockClient.connect();
  try {
    await lockClient.query('SELECT pg_advisory_lock($1)', [MIGRATION_LOCK_KEY]);
    const applied = await orm.migrator.up();
    return applied.map((migration) => migration.name);
  } finally {
    // Closing the session releases the lock even if the unlock itself fails.
    await lockClient
      .query('SELECT pg_advisory_unlock($1)', [MIGRATION_LOCK_KEY])
      .catch(() => undefined);
    await lockClient.end().catch(() => undefined);
  }
}
