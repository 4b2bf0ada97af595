import type { Pool } from 'pg';
import { auditLedger } from '../../src/audit/ledger-audit';
import type { ApiResponse } from './jsonapi-client';

export interface PurchaseAttempt {
  quantity: number;
  /** null when the client never got an answer (e.g. the instance was killed): outcome unknown. */
  response: ApiResponse | null;
  /** Unique per attempt; required when `response` may be null (rows are matched by it). */
  userId?: string;
}

/**
 * The audit of docs/design.md, Invariant after a burst of purchases against one option: the database holds exactly
 * the acknowledged purchases, within the allocation, and every refusal was justified. The whole
 * ledger of the database (every option, holds and confirmations included) must pass
 * auditLedger (src/audit/ledger-audit.ts) too.
 */
export async function auditOption(
  sql: Pool,
  optionId: string,
  attempts: PurchaseAttempt[],
): Promise<void> {
  const option = (
    await sql.query('SELECT allocation, purchased FROM ticket_options WHERE id = $1', [optionId])
  ).rows[0] as { allocation: number; purchased: number };
  const rows = (
    await sql.query(
      'SELECT id, user_id, quantity, status FROM purchases WHERE ticket_option_id = $1',
      [optionId],
    )
  ).rows as Array<{ id: string; user_id: string; quantity: number; status: string }>;
  const stored = new Map(rows.map((row) => [row.id, row.quantity]));
  // A cancelled purchase returned its tickets: it is kept, but no longer counts as sold.
  const sum = rows
    .filter((row) => row.status === 'completed')
    .reduce((total, row) => total + row.quantity, 0);

  // 0 <= SUM(quantity of completed purchases) == ticket_options.purchased <= ticket_options.allocation
  expect(sum).toBe(option.purchased);
  expect(option.purchased).toBeLessThanOrEqual(option.allocation);

  const accepted = attempts.filter((a) => a.response?.status === 201);
  const refused = attempts.filter((a) => a.response?.status === 400);
  const unknown = attempts.filter((a) => a.response === null);
  // Nothing but acknowledgements, justified refusals and answers that never arrived.
  expect(accepted.length + refused.length + unknown.length).toBe(attempts.length);

  // Every 201 is persisted with its quantity.
  const acknowledged = new Set<string>();
  for (const attempt of accepted) {
    const id = attempt.response!.body.data.id as string;
    acknowledged.add(id);
    expect(stored.get(id)).toBe(attempt.quantity);
  }
  // Nothing else is, except purchases whose answer was lost: each of those is committed exactly
  // once or not at all (matched by its user, which is unique per attempt).
  expect(unknown.filter((a) => typeof a.userId !== 'string')).toEqual([]);
  const unknownByUser = new Map(unknown.map((a) => [a.userId, a.quantity]));
  const claimed = new Set<string>();
  for (const row of rows) {
    if (acknowledged.has(row.id)) continue;
    expect({ row, unknownOutcome: unknownByUser.has(row.user_id) }).toEqual({
      row,
      unknownOutcome: true,
    });
    expect(row.quantity).toBe(unknownByUser.get(row.user_id));
    expect({ user: row.user_id, committedTwice: claimed.has(row.user_id) }).toEqual({
      user: row.user_id,
      committedTwice: false,
    });
    claimed.add(row.user_id);
  }
  expect(rows.length).toBe(accepted.length + claimed.size);

  const ledger = await auditLedger(sql);
  expect(ledger.violations).toEqual([]);
  expect(ledger.ok).toBe(true);

  // Every refusal is justified: without holds and cancellations (the loads that use this audit)
  // availability only shrinks, so the final remainder bounds it.
  const remaining = option.allocation - option.purchased;
  for (const attempt of refused) {
    expect(attempt.response!.body.errors[0].code).toBe('invalid_purchase_quantity');
    expect(attempt.quantity).toBeGreaterThan(remaining);
  }
}
