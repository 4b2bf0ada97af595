/**
 * The database's own last line of defence (the CHECK constraints of src/database/migrations/):
 * each one refuses a row that breaks it, written directly with SQL behind the application's
 * back, with SQLSTATE 23514 naming that constraint, and accepts the row at its boundary. A CHECK
 * added to the schema without a test here fails the inventory test.
 */
import { randomUUID } from 'node:crypto';
import type { Pool } from 'pg';
import { startTestApp, TestApp } from './support/test-app';

/** Every CHECK constraint of the schema, by table: the ones this file proves. */
const CHECKS = {
  idempotency_keys: ['idempotency_keys_answer_check', 'idempotency_keys_completion_check'],
  purchases: ['purchases_quantity_check'],
  ticket_options: [
    'ticket_options_allocation_check',
    'ticket_options_name_check',
    'ticket_options_purchased_check',
  ],
};

/** Rejects with check_violation (23514) naming `constraint`. */
async function expectViolation(statement: Promise<unknown>, constraint: string): Promise<void> {
  await expect(statement).rejects.toMatchObject({ code: '23514', constraint });
}

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

  describe('ticket_options_purchased_check: 0 <= purchased <= allocation', () => {
    it('refuses more purchased than allocated, on insert and on update', async () => {
      await expectViolation(
        insertOption({ allocation: 2, purchased: 3 }),
        'ticket_options_purchased_check',
      );
      const id = await anOption(2);
      await expectViolation(
        sql.query('UPDATE ticket_options SET purchased = 3 WHERE id = $1', [id]),
        'ticket_options_purchased_check',
      );
    });

    it('refuses a negative purchased, on insert and on update', async () => {
      await expectViolation(insertOption({ purchased: -1 }), 'ticket_options_purchased_check');
      const id = await anOption();
      await expectViolation(
        sql.query('UPDATE ticket_options SET purchased = -1 WHERE id = $1', [id]),
        'ticket_options_purchased_check',
      );
    });

    it('refuses an allocation lowered below what is purchased', async () => {
      const id = await anOption(5);
      await sql.query('UPDATE ticket_options SET purchased = 4 WHERE id = $1', [id]);
      await expectViolation(
        sql.query('UPDATE ticket_options SET allocation = 3 WHERE id = $1', [id]),
        'ticket_options_purchased_check',
      );
    });

    it('accepts a sold-out option (purchased = allocation) and an untouched one (0)', async () => {
      await expect(insertOption({ allocation: 4, purchased: 4 })).resolves.toMatchObject({
        rowCount: 1,
      });
      await expect(insertOption({ allocation: 4, purchased: 0 })).resolves.toMatchObject({
        rowCount: 1,
      });
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
