import type { Pool } from 'pg';

/**
 * Holds the row lock of one ticket option until `release()` (idempotent), so that a commit on it
 * waits in the database meanwhile: the way tests keep a statement in flight.
 */
export async function holdOptionRowLock(sql: Pool, optionId: string): Promise<() => Promise<void>> {
  const client = await sql.connect();
  await client.query('BEGIN');
  await client.query('SELECT 1 FROM ticket_options WHERE id = $1 FOR UPDATE', [optionId]);
  let released = false;
  return async () => {
    if (released) return;
    released = true;
    await client.query('COMMIT');
    client.release();
  };
}
