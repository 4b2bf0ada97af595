import { Client } from 'pg';

/**
 * Holds one ticket option's row lock from a side session, as a long foreign transaction would,
 * until `release()` (idempotent): a commit on that option waits in the database meanwhile.
 */
export async function holdOptionRowLock(
  databaseUrl: string,
  optionId: string,
): Promise<() => Promise<void>> {
  const side = new Client({ connectionString: databaseUrl });
  await side.connect();
  await side.query('BEGIN');
  await side.query('SELECT 1 FROM ticket_options WHERE id = $1 FOR UPDATE', [optionId]);
  let released = false;
  return async () => {
    if (released) return;
    released = true;
    await side.query('ROLLBACK');
    await side.end();
  };
}
