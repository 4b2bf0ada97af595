/**
 * What a typical implementation does: one transaction per purchase holding the option's row lock
 * (SELECT … FOR UPDATE) across its round trips. Named statements, prepared once per connection
 * as the service's are: a fair fight.
 */
import { randomUUID } from 'node:crypto';
import { listen, Outcome, pool, PurchaseInput, serveReads, servePurchases } from './common';

const LOCK = 'SELECT allocation, purchased FROM ticket_options WHERE id = $1 FOR UPDATE';
const BUMP = `UPDATE ticket_options SET purchased = purchased + $2, version = version + 1,
                     updated_at = now() WHERE id = $1`;
const INSERT =
  'INSERT INTO purchases (id, ticket_option_id, user_id, quantity) VALUES ($1, $2, $3, $4)';

async function purchase(optionId: string, input: PurchaseInput): Promise<Outcome> {
  const client = await pool.connect();
  const query = (name: string, text: string, values: unknown[]) =>
    client.query({ name, text, values });
  let broken: Error | undefined;
  try {
    await client.query('BEGIN');
    const row = (await query('row-lock', LOCK, [optionId])).rows[0] as
      { allocation: number; purchased: number } | undefined;
    if (!row || row.allocation - row.purchased < input.quantity) {
      await client.query('ROLLBACK');
      return { kind: row ? 'sold_out' : 'not_found' };
    }
    const id = randomUUID();
    await query('row-lock-bump', BUMP, [optionId, input.quantity]);
    await query('row-lock-insert', INSERT, [id, optionId, input.userId, input.quantity]);
    await client.query('COMMIT');
    return { kind: 'created', id };
  } catch (failure) {
    broken = failure as Error;
    throw failure;
  } finally {
    // A connection that failed mid-transaction is discarded rather than reused.
    client.release(broken);
  }
}

servePurchases('row-lock reference', purchase);
serveReads();
listen('row-lock reference');
