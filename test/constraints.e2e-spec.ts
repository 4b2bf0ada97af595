/**
 * The database's own last line of defence (the CHECK constraints of src/database/migrations/):
 * each one refuses a row that breaks it, written directly with SQL behind the application's
 * back, with SQLSTATE 23514 naming that constraint, and accepts the row at its boundary. A CHECK
 * added to the schema without a test here fails the inventory test. The two UNIQUE constraints
 * that make a confirmation one-to-one (a reservation has at most one purchase and a purchase at
 * most one reservation) are proven the same way, with SQLSTATE 23505.
 */
import { randomUUID } from 'node:crypto';
import type { Pool } from 'pg';
import { startTestApp, TestApp } from './support/test-app';

/** Every CHECK constraint of the schema, by table: the ones this file proves. */
const CHECKS = {
  idempotency_keys: ['idempotency_keys_answer_check', 'idempotency_keys_completion_check'],
  purchases: ['purchases_cancellation_check', 'purchases_quantity_check', 'purchases_status_check'],
  reservations: [
    'reservations_confirmation_check',
    'reservations_quantity_check',
    'reservations_status_check',
  ],
  ticket_options: [
    'ticket_options_allocation_check',
    'ticket_options_name_check',
    'ticket_options_within_allocation_check',
  ],
};

const MAX_INT32 = 2_147_483_647;

/** Rejects with check_violation (23514) naming `constraint`. */
async function expectViolation(statement: Promise<unknown>, constraint: string): Promise<void> {
  await expect(statement).rejects.toMatchObject({ code: '23514', constraint });
}

/** Rejects with unique_violation (23505) naming `constraint`. */
async function expectDuplicate(statement: Promise<unknown>, constraint: string): Promise<void> {
  await expect(statement).rejects.toMatchObject({ code: '23505', constraint });
}

const ACCEPTED = { rowCount: 1 };

describe('CHECK constraints', () => {
  let t: TestApp;
  let sql: Pool;

  beforeAll(async () => {
    t = await startTestApp();
    sql = t.sql;
  });
  afterAll(() => t.close());

  /** A ticket option row written directly; the columns not given take their defaults. */
  function insertOption(columns: Record<string, unknown>) {
    const values = { id: randomUUID(), name: 'Direct', allocation: 10, ...columns };
    const names = Object.keys(values);
    return sql.query(
      `INSERT INTO ticket_options (${names.join(', ')})
       VALUES (${names.map((_, i) => `$${i + 1}`).join(', ')}) RETURNING id`,
      Object.values(values),
    );
  }

  async function anOption(allocation = 10): Promise<string> {
    return (await insertOption({ allocation })).rows[0].id as string;
  }

  it('covers every CHECK constraint of the schema', async () => {
    const result = await sql.query<{ table: string; name: string }>(
      `SELECT c.conrelid::regclass::text AS table, c.conname AS name
         FROM pg_constraint c JOIN pg_namespace n ON n.oid = c.connamespace
        WHERE c.contype = 'c' AND n.nspname = 'public'
        ORDER BY 1, 2`,
    );
    const byTable: Record<string, string[]> = {};
    for (const { table, name } of result.rows) (byTable[table] ??= []).push(name);
    expect(byTable).toEqual(CHECKS);
  });

  describe('ticket_options_name_check: a name with something besides spaces', () => {
    it.each([
      ['empty', ''],
      ['blank', '   '],
    ])('refuses a name that is %s', async (_case, name) => {
      await expectViolation(insertOption({ name }), 'ticket_options_name_check');
    });

    it('accepts one character, even with spaces around it', async () => {
      await expect(insertOption({ name: ' x ' })).resolves.toMatchObject({ rowCount: 1 });
    });
  });

  describe('ticket_options_allocation_check: allocation >= 0', () => {
    it('refuses a negative allocation', async () => {
      await expectViolation(insertOption({ allocation: -1 }), 'ticket_options_allocation_check');
    });

    it('accepts allocation 0', async () => {
      await expect(insertOption({ allocation: 0 })).resolves.toMatchObject({ rowCount: 1 });
    });
  });

  describe('ticket_options_within_allocation_check: 0 <= purchased, 0 <= held, purchased + held <= allocation', () => {
    const WITHIN = 'ticket_options_within_allocation_check';

    it('refuses more purchased than allocated, on insert and on update', async () => {
      await expectViolation(insertOption({ allocation: 2, purchased: 3 }), WITHIN);
      const id = await anOption(2);
      await expectViolation(
        sql.query('UPDATE ticket_options SET purchased = 3 WHERE id = $1', [id]),
        WITHIN,
      );
    });

    it('refuses more purchased + held than allocated, on insert and on update', async () => {
      await expectViolation(insertOption({ allocation: 5, purchased: 3, held: 3 }), WITHIN);
      await expectViolation(insertOption({ allocation: 5, held: 6 }), WITHIN);
      const id = (await insertOption({ allocation: 5, purchased: 3 })).rows[0].id as string;
      await expectViolation(
        sql.query('UPDATE ticket_options SET held = 3 WHERE id = $1', [id]),
        WITHIN,
      );
      await expectViolation(
        sql.query('UPDATE ticket_options SET held = 1, purchased = purchased + 2 WHERE id = $1', [
          id,
        ]),
        WITHIN,
      );
    });

    it('refuses a negative purchased, on insert and on update', async () => {
      await expectViolation(insertOption({ purchased: -1 }), WITHIN);
      const id = await anOption();
      await expectViolation(
        sql.query('UPDATE ticket_options SET purchased = -1 WHERE id = $1', [id]),
        WITHIN,
      );
    });

    it('refuses a negative held, on insert and on update, even when the sum stays in bounds', async () => {
      await expectViolation(insertOption({ held: -1 }), WITHIN);
      await expectViolation(insertOption({ allocation: 10, purchased: 5, held: -1 }), WITHIN);
      const id = await anOption();
      await expectViolation(
        sql.query('UPDATE ticket_options SET held = -1 WHERE id = $1', [id]),
        WITHIN,
      );
    });

    it('refuses an allocation lowered below what is purchased and held', async () => {
      const id = await anOption(5);
      await sql.query('UPDATE ticket_options SET purchased = 2, held = 2 WHERE id = $1', [id]);
      await expectViolation(
        sql.query('UPDATE ticket_options SET allocation = 3 WHERE id = $1', [id]),
        WITHIN,
      );
    });

    it('sums in bigint: counters near 2^31 are refused by the check, not by an overflow', async () => {
      // In int arithmetic MAX_INT32 + 1 would raise 22003 (out of range) instead of naming the bound.
      await expectViolation(
        insertOption({ allocation: MAX_INT32, purchased: MAX_INT32, held: 1 }),
        WITHIN,
      );
      await expectViolation(
        insertOption({ allocation: MAX_INT32, purchased: MAX_INT32 - 5, held: 6 }),
        WITHIN,
      );
      await expect(
        insertOption({ allocation: MAX_INT32, purchased: MAX_INT32 - 5, held: 5 }),
      ).resolves.toMatchObject(ACCEPTED);
      await expect(
        insertOption({ allocation: MAX_INT32, purchased: 0, held: MAX_INT32 }),
      ).resolves.toMatchObject(ACCEPTED);
    });

    it('accepts a sold-out option (purchased + held = allocation) and an untouched one (0)', async () => {
      await expect(insertOption({ allocation: 4, purchased: 4 })).resolves.toMatchObject(ACCEPTED);
      await expect(insertOption({ allocation: 4, held: 4 })).resolves.toMatchObject(ACCEPTED);
      await expect(insertOption({ allocation: 4, purchased: 1, held: 3 })).resolves.toMatchObject(
        ACCEPTED,
      );
      await expect(insertOption({ allocation: 4, purchased: 0 })).resolves.toMatchObject(ACCEPTED);
    });
  });

  describe('purchases_quantity_check: quantity > 0', () => {
    function insertPurchase(optionId: string, quantity: number) {
      return sql.query(
        `INSERT INTO purchases (id, ticket_option_id, user_id, quantity) VALUES ($1, $2, $3, $4)`,
        [randomUUID(), optionId, randomUUID(), quantity],
      );
    }

    it.each([0, -1])('refuses quantity %d', async (quantity) => {
      await expectViolation(insertPurchase(await anOption(), quantity), 'purchases_quantity_check');
    });

    it('refuses an update to quantity 0', async () => {
      const optionId = await anOption();
      const id = randomUUID();
      await sql.query(
        `INSERT INTO purchases (id, ticket_option_id, user_id, quantity) VALUES ($1, $2, $3, 1)`,
        [id, optionId, randomUUID()],
      );
      await expectViolation(
        sql.query('UPDATE purchases SET quantity = 0 WHERE id = $1', [id]),
        'purchases_quantity_check',
      );
    });

    it('accepts quantity 1', async () => {
      await expect(insertPurchase(await anOption(), 1)).resolves.toMatchObject({ rowCount: 1 });
    });
  });

  /** A purchase row written directly; the columns not given take their defaults. */
  function insertPurchaseRow(optionId: string, columns: Record<string, unknown> = {}) {
    const values = {
      id: randomUUID(),
      ticket_option_id: optionId,
      user_id: randomUUID(),
      quantity: 1,
      ...columns,
    };
    const names = Object.keys(values);
    return sql.query(
      `INSERT INTO purchases (${names.join(', ')})
       VALUES (${names.map((_, i) => `$${i + 1}`).join(', ')}) RETURNING id`,
      Object.values(values),
    );
  }

  /** A reservation row written directly, held for an hour unless the columns say otherwise. */
  function insertReservation(optionId: string, columns: Record<string, unknown> = {}) {
    const values = {
      id: randomUUID(),
      ticket_option_id: optionId,
      user_id: randomUUID(),
      quantity: 1,
      expires_at: new Date(Date.now() + 3_600_000).toISOString(),
      ...columns,
    };
    const names = Object.keys(values);
    return sql.query(
      `INSERT INTO reservations (${names.join(', ')})
       VALUES (${names.map((_, i) => `$${i + 1}`).join(', ')}) RETURNING id`,
      Object.values(values),
    );
  }

  /** A reservation and the purchase it was confirmed into, naming each other (as a confirmation writes them). */
  async function aConfirmedPair(optionId: string) {
    const reservationId = (await insertReservation(optionId)).rows[0].id as string;
    const purchaseId = (await insertPurchaseRow(optionId, { reservation_id: reservationId }))
      .rows[0].id as string;
    await sql.query(
      `UPDATE reservations SET status = 'confirmed', purchase_id = $2 WHERE id = $1`,
      [reservationId, purchaseId],
    );
    return { reservationId, purchaseId };
  }

  describe('purchases_status_check: completed or cancelled', () => {
    it.each(['refunded', 'held', '', 'COMPLETED'])('refuses status %j', async (status) => {
      await expectViolation(
        insertPurchaseRow(await anOption(), { status, cancelled_at: null }),
        'purchases_status_check',
      );
    });

    it('refuses an update to another status', async () => {
      const id = (await insertPurchaseRow(await anOption())).rows[0].id as string;
      await expectViolation(
        sql.query(`UPDATE purchases SET status = 'void' WHERE id = $1`, [id]),
        'purchases_status_check',
      );
    });

    it('accepts completed (the default) and cancelled', async () => {
      const optionId = await anOption();
      const { rows } = await insertPurchaseRow(optionId);
      const stored = await sql.query('SELECT status, cancelled_at FROM purchases WHERE id = $1', [
        rows[0].id,
      ]);
      expect(stored.rows[0]).toEqual({ status: 'completed', cancelled_at: null });
      await expect(
        insertPurchaseRow(optionId, { status: 'cancelled', cancelled_at: new Date() }),
      ).resolves.toMatchObject(ACCEPTED);
    });
  });

  describe('purchases_cancellation_check: cancelled_at set exactly when cancelled', () => {
    const CANCELLATION = 'purchases_cancellation_check';

    it('refuses a cancelled purchase without cancelled_at, and a completed one with it', async () => {
      const optionId = await anOption();
      await expectViolation(insertPurchaseRow(optionId, { status: 'cancelled' }), CANCELLATION);
      await expectViolation(
        insertPurchaseRow(optionId, { status: 'completed', cancelled_at: new Date() }),
        CANCELLATION,
      );
    });

    it('refuses a cancellation that forgets the time, and an un-cancellation that keeps it', async () => {
      const optionId = await anOption();
      const completed = (await insertPurchaseRow(optionId)).rows[0].id as string;
      await expectViolation(
        sql.query(`UPDATE purchases SET status = 'cancelled' WHERE id = $1`, [completed]),
        CANCELLATION,
      );
      const cancelled = (
        await insertPurchaseRow(optionId, { status: 'cancelled', cancelled_at: new Date() })
      ).rows[0].id as string;
      await expectViolation(
        sql.query(`UPDATE purchases SET status = 'completed' WHERE id = $1`, [cancelled]),
        CANCELLATION,
      );
    });

    it('accepts a cancellation that sets both', async () => {
      const id = (await insertPurchaseRow(await anOption())).rows[0].id as string;
      await expect(
        sql.query(`UPDATE purchases SET status = 'cancelled', cancelled_at = now() WHERE id = $1`, [
          id,
        ]),
      ).resolves.toMatchObject(ACCEPTED);
    });
  });

  describe('reservations_status_check: held, confirmed, released or expired', () => {
    it.each(['pending', 'cancelled', '', 'HELD'])('refuses status %j', async (status) => {
      await expectViolation(
        insertReservation(await anOption(), { status }),
        'reservations_status_check',
      );
    });

    it.each(['held', 'released', 'expired'])('accepts status %s', async (status) => {
      await expect(insertReservation(await anOption(), { status })).resolves.toMatchObject(
        ACCEPTED,
      );
    });

    it('accepts confirmed with its purchase', async () => {
      const { reservationId } = await aConfirmedPair(await anOption());
      const stored = await sql.query('SELECT status FROM reservations WHERE id = $1', [
        reservationId,
      ]);
      expect(stored.rows[0].status).toBe('confirmed');
    });
  });

  describe('reservations_quantity_check: quantity > 0', () => {
    it.each([0, -1])('refuses quantity %d', async (quantity) => {
      await expectViolation(
        insertReservation(await anOption(), { quantity }),
        'reservations_quantity_check',
      );
    });

    it('accepts quantity 1 and refuses an update to quantity 0', async () => {
      const id = (await insertReservation(await anOption(), { quantity: 1 })).rows[0].id as string;
      await expectViolation(
        sql.query('UPDATE reservations SET quantity = 0 WHERE id = $1', [id]),
        'reservations_quantity_check',
      );
    });
  });

  describe('reservations_confirmation_check: purchase_id set exactly when confirmed', () => {
    const CONFIRMATION = 'reservations_confirmation_check';

    it('refuses confirmed without a purchase', async () => {
      await expectViolation(
        insertReservation(await anOption(), { status: 'confirmed' }),
        CONFIRMATION,
      );
      const id = (await insertReservation(await anOption())).rows[0].id as string;
      await expectViolation(
        sql.query(`UPDATE reservations SET status = 'confirmed' WHERE id = $1`, [id]),
        CONFIRMATION,
      );
    });

    it.each(['held', 'released', 'expired'])(
      'refuses a purchase on a reservation that is %s',
      async (status) => {
        const optionId = await anOption();
        const reservationId = (await insertReservation(optionId, { status })).rows[0].id as string;
        const purchaseId = (await insertPurchaseRow(optionId)).rows[0].id as string;
        await expectViolation(
          sql.query('UPDATE reservations SET purchase_id = $2 WHERE id = $1', [
            reservationId,
            purchaseId,
          ]),
          CONFIRMATION,
        );
      },
    );

    it('refuses a confirmed reservation losing its purchase, or its status', async () => {
      const { reservationId } = await aConfirmedPair(await anOption());
      await expectViolation(
        sql.query('UPDATE reservations SET purchase_id = NULL WHERE id = $1', [reservationId]),
        CONFIRMATION,
      );
      await expectViolation(
        sql.query(`UPDATE reservations SET status = 'released' WHERE id = $1`, [reservationId]),
        CONFIRMATION,
      );
    });
  });

  describe('UNIQUE: one purchase per reservation, one reservation per purchase', () => {
    it('refuses a reservation confirmed twice (purchases_reservation_id_unique)', async () => {
      const optionId = await anOption();
      const { reservationId } = await aConfirmedPair(optionId);
      await expectDuplicate(
        insertPurchaseRow(optionId, { reservation_id: reservationId }),
        'purchases_reservation_id_unique',
      );
    });

    it('refuses a purchase named by two reservations (reservations_purchase_id_unique)', async () => {
      const optionId = await anOption();
      const { purchaseId } = await aConfirmedPair(optionId);
      await expectDuplicate(
        insertReservation(optionId, { status: 'confirmed', purchase_id: purchaseId }),
        'reservations_purchase_id_unique',
      );
    });

    it('accepts any number of direct purchases and unconfirmed reservations (NULLs are distinct)', async () => {
      const optionId = await anOption();
      for (let i = 0; i < 2; i++) {
        await expect(insertPurchaseRow(optionId)).resolves.toMatchObject(ACCEPTED);
        await expect(insertReservation(optionId)).resolves.toMatchObject(ACCEPTED);
      }
    });
  });

  describe('idempotency_keys_completion_check / _answer_check: completed exactly when it has a status and an answer', () => {
    function insertKey(columns: {
      completed_at: string | null;
      response_status: number | null;
      response_body?: string | null;
    }) {
      const { completed_at, response_status } = columns;
      const body = 'response_body' in columns ? columns.response_body : completed_at && '{}';
      return sql.query(
        `INSERT INTO idempotency_keys
           (key, fingerprint, claim, completed_at, response_status, response_body)
         VALUES ($1, $2, $3, $4, $5, $6)`,
        [
          `constraint-${randomUUID()}`,
          'f'.repeat(64),
          randomUUID(),
          completed_at,
          response_status,
          body,
        ],
      );
    }
    const now = () => new Date().toISOString();

    it('refuses a completed key without a response status', async () => {
      await expectViolation(
        insertKey({ completed_at: now(), response_status: null }),
        'idempotency_keys_completion_check',
      );
    });

    it('refuses a response status on a key still in flight', async () => {
      await expectViolation(
        insertKey({ completed_at: null, response_status: 201 }),
        'idempotency_keys_completion_check',
      );
    });

    it('refuses a completed key without the answer it replays, and an answer on a key in flight', async () => {
      await expectViolation(
        insertKey({ completed_at: now(), response_status: 201, response_body: null }),
        'idempotency_keys_answer_check',
      );
      await expectViolation(
        insertKey({ completed_at: null, response_status: null, response_body: '{}' }),
        'idempotency_keys_answer_check',
      );
    });

    it('accepts a key in flight (none) and a completed one (all)', async () => {
      await expect(insertKey({ completed_at: null, response_status: null })).resolves.toMatchObject(
        { rowCount: 1 },
      );
      await expect(insertKey({ completed_at: now(), response_status: 201 })).resolves.toMatchObject(
        {
          rowCount: 1,
        },
      );
    });
  });
});
