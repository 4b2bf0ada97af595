/**
 * What a typical implementation does: one transaction per purchase holding the option's row lock
 * (SELECT … FOR UPDATE) across its round trips. Named statements, prepared once per connection
 * as the service's are: a fair fight.
 */
import { randomUUID } from 'node:crypto';
import { listen, Outcome, PurchaseInput, serveReads, servePurchases, transaction } from './common';

const LOCK = 'SELECT allocation, purchased FROM ticket_options WHERE id = $1 FOR UPDATE';
const BUMP = `UPDATE ticket_options SET purchased = purchased + $2, version = version + 1,
                     updated_at = now() WHERE id = $1`;
const INSERT =
  'INSERT INTO purchases (id, ticket_option_id, user_id, quantity) VALUES ($1, $2, $3, $4)';

function purchase(optionId: string, input: PurchaseInput): Promise<Outcome> {
  return transaction(async (client) => {
    const query = (name: string, text: string, values: unknown[]) =>
      client.query({ name, text, values });
    const { rows } = await query('row-lock', LOCK, [optionId]);
    const row = rows[0] as { allocation: number; purchased: number } | undefined;
    if (!row) return { kind: 'not_found' };
    if (row.allocation - row.purchased < input.quantity) return { kind: 'sold_out' };
    const id = randomUUID();
    await query('row-lock-bump', BUMP, [optionId, input.quantity]);
    await query('row-lock-insert', INSERT, [id, optionId, input.userId, input.quantity]);
    return { kind: 'created', id };
  });
}

servePurchases(purchase);
serveReads();
listen();
