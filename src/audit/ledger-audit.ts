import { IsolationLevel } from '@mikro-orm/core';
import type { Pool, PoolClient, QueryResultRow } from 'pg';
import { runStatement, Statement, StatementTarget } from '../database/sql';
import { AUDIT_CROSS_REFERENCES, AUDIT_OPTIONS, BEGIN_SNAPSHOT } from './ledger-audit.statements';

/** Every way the ledger can be wrong; the SQL of each is in ledger-audit.statements.ts. */
export const LEDGER_VIOLATION_KINDS = [
  // per option
  'purchased_counter',
  'held_counter',
  'allocation_bound',
  // a confirmed reservation and its purchase
  'confirmed_without_purchase',
  'confirmed_purchase_missing',
  'confirmed_purchase_count',
  'purchase_not_pointing_back',
  'confirmed_purchase_mismatch',
  // a reservation that is not confirmed
  'unconfirmed_reservation_with_purchase',
  // a purchase naming a reservation
  'purchase_reservation_missing',
  'purchase_of_unconfirmed_reservation',
  'reservation_not_naming_purchase',
] as const;
export type LedgerViolationKind = (typeof LEDGER_VIOLATION_KINDS)[number];

export interface LedgerViolation {
  kind: LedgerViolationKind;
  optionId: string;
  reservationId: string | null;
  purchaseId: string | null;
  /** For the per-option kinds: the counters and the sums of the rows they were compared with. */
  figures: {
    allocation: number;
    purchased: number;
    held: number;
    completedQuantity: number;
    heldQuantity: number;
    overdueHeldQuantity: number;
  } | null;
}

export interface LedgerTotals {
  allocation: number;
  /** SUM(ticket_options.purchased) against SUM(quantity) of completed purchases. */
  purchasedCounter: number;
  completedQuantity: number;
  /** SUM(ticket_options.held) against SUM(quantity) of reservations with status `held`. */
  heldCounter: number;
  heldQuantity: number;
  /** Of `heldQuantity`: holds past `expires_at` that no sweep has expired yet (not a violation). */
  overdueHeldQuantity: number;
  purchases: { completed: number; cancelled: number };
  reservations: { held: number; confirmed: number; released: number; expired: number };
}

export interface LedgerAuditReport {
  /** The database clock at the audit's snapshot. */
  checkedAt: Date;
  options: number;
  totals: LedgerTotals;
  /** Every kind, with how many violations of it were found (0 for most, one hopes). */
  counts: Record<LedgerViolationKind, number>;
  /** The violations, ordered by option; at most `maxListed` of each statement's. */
  violations: LedgerViolation[];
  /** More violations exist than are listed. */
  truncated: boolean;
  ok: boolean;
}

export interface LedgerAuditOptions {
  /** Most violations listed per check (options, cross references); counts stay complete. */
  maxListed?: number;
}

/**
 * Where the audit runs: the service's ORM (or an EntityManager, whose open transaction it then
 * joins), through runStatement; or a plain `pg` pool, for tools and tests that hold one rather
 * than an ORM (a side pool of a test, say), with the same statements.
 */
export type LedgerAuditTarget = StatementTarget | Pool;

type Run = <R extends QueryResultRow>(statement: Statement) => Promise<R[]>;

/**
 * Audits the whole ledger (docs/design.md, Reservations): every option's counters against its
 * rows, the bound `0 <= purchased + held <= allocation`, and the cross references between
 * reservations and purchases. Two grouped statements in one REPEATABLE READ, READ ONLY snapshot:
 * consistent on a live database, and it writes nothing.
 */
export async function auditLedger(
  target: LedgerAuditTarget,
  { maxListed = 1000 }: LedgerAuditOptions = {},
): Promise<LedgerAuditReport> {
  return inSnapshot(target, async (run) => {
    const [options] = await run<OptionsRow>({ ...AUDIT_OPTIONS, values: [maxListed] });
    const [cross] = await run<CheckRow>({ ...AUDIT_CROSS_REFERENCES, values: [maxListed] });
    return buildReport(options, cross);
  });
}

interface CheckRow {
  counts: Partial<Record<LedgerViolationKind, number | string>>;
  listed: LedgerViolation[];
}

type Numeric = number | string;

interface OptionsRow extends CheckRow {
  checked_at: Date;
  options: Numeric;
  allocation: Numeric;
  purchased_counter: Numeric;
  completed_quantity: Numeric;
  held_counter: Numeric;
  held_quantity: Numeric;
  overdue_held_quantity: Numeric;
  purchases_completed: Numeric;
  purchases_cancelled: Numeric;
  reservations_held: Numeric;
  reservations_confirmed: Numeric;
  reservations_released: Numeric;
  reservations_expired: Numeric;
}

function buildReport(options: OptionsRow, cross: CheckRow): LedgerAuditReport {
  const counts = Object.fromEntries(LEDGER_VIOLATION_KINDS.map((kind) => [kind, 0])) as Record<
    LedgerViolationKind,
    number
  >;
  let found = 0;
  for (const check of [options, cross]) {
    for (const [kind, n] of Object.entries(check.counts)) {
      counts[kind as LedgerViolationKind] += Number(n);
      found += Number(n);
    }
  }
  const violations = [...options.listed, ...cross.listed];
  return {
    checkedAt: new Date(options.checked_at),
    options: Number(options.options),
    totals: {
      allocation: Number(options.allocation),
      purchasedCounter: Number(options.purchased_counter),
      completedQuantity: Number(options.completed_quantity),
      heldCounter: Number(options.held_counter),
      heldQuantity: Number(options.held_quantity),
      overdueHeldQuantity: Number(options.overdue_held_quantity),
      purchases: {
        completed: Number(options.purchases_completed),
        cancelled: Number(options.purchases_cancelled),
      },
      reservations: {
        held: Number(options.reservations_held),
        confirmed: Number(options.reservations_confirmed),
        released: Number(options.reservations_released),
        expired: Number(options.reservations_expired),
      },
    },
    counts,
    violations,
    truncated: violations.length < found,
    ok: found === 0,
  };
}

/** Runs `audit` in one REPEATABLE READ, READ ONLY transaction on `target`. */
async function inSnapshot<T>(
  target: LedgerAuditTarget,
  audit: (run: Run) => Promise<T>,
): Promise<T> {
  if (!isStatementTarget(target)) return inPoolSnapshot(target, audit);
  const em = 'getTransactionContext' in target ? target : target.em;
  // Inside the caller's transaction: its snapshot and isolation are the caller's choice.
  if (em.getTransactionContext()) return audit(on(em));
  return em.fork().transactional((trx) => audit(on(trx)), {
    isolationLevel: IsolationLevel.REPEATABLE_READ,
    readOnly: true,
  });
}

function on(within: StatementTarget): Run {
  return async <R extends QueryResultRow>(statement: Statement) =>
    (await runStatement<R>(within, statement)).rows;
}

function isStatementTarget(target: LedgerAuditTarget): target is StatementTarget {
  return 'getTransactionContext' in target || 'em' in target;
}

async function inPoolSnapshot<T>(pool: Pool, audit: (run: Run) => Promise<T>): Promise<T> {
  const client: PoolClient = await pool.connect();
  let broken: Error | undefined;
  try {
    await client.query(BEGIN_SNAPSHOT);
    const result = await audit(async <R extends QueryResultRow>(statement: Statement) => {
      const values = statement.values as unknown[] | undefined;
      return (await client.query<R>({ ...statement, values })).rows;
    });
    await client.query('COMMIT');
    return result;
  } catch (error) {
    await client.query('ROLLBACK').catch((rollback: unknown) => {
      broken = rollback instanceof Error ? rollback : new Error(String(rollback));
    });
    throw error;
  } finally {
    client.release(broken);
  }
}
