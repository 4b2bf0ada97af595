import { MIGRATIONS } from '../src/database/mikro-orm.config';
import { rm } from 'node:fs/promises';
import { Client } from 'pg';
import { JsonApiClient } from './support/jsonapi-client';
import { embeddedServerEnv, spawnServer, waitUntilServing } from './support/server-process';
import { createTestDatabase, startTestApp } from './support/test-app';

describe('start-up', () => {
  it('fails fast with a clear message and exit code 1 on bad configuration', async () => {
    const server = spawnServer({ PORT: 'abc', DATABASE_URL: 'mysql://nope' });
    expect(await server.exited).toBe(1);
    expect(server.output()).toMatch(/PORT must be an integer/);
    expect(server.output()).toMatch(/DATABASE_URL must be a PostgreSQL URL/);
    expect(server.output()).not.toMatch(/\n\s+at /); // no stack trace
  });

  it('without DATABASE_URL serves from an embedded PostgreSQL, keeps data across restarts, exits 0 on SIGTERM', async () => {
    const { dataDir, env, baseUrl } = await embeddedServerEnv('ticket-start-');
    try {
      const first = spawnServer(env);
      await waitUntilServing(first, baseUrl);
      const id = await new JsonApiClient(baseUrl).createTicketOption({
        name: 'Kept',
        allocation: 9,
      });
      first.child.kill('SIGTERM');
      expect(await first.exited).toBe(0);

      const second = spawnServer(env);
      await waitUntilServing(second, baseUrl);
      const option = await new JsonApiClient(baseUrl).get(`/ticket_options/${id}`);
      expect(option.status).toBe(200);
      expect(option.body.data.attributes).toMatchObject({ name: 'Kept', allocation: 9 });
      second.child.kill('SIGTERM');
      expect(await second.exited).toBe(0);
    } finally {
      await rm(dataDir, { recursive: true, force: true });
    }
  });

  it('several instances starting at once on an empty database migrate it exactly once', async () => {
    const database = await createTestDatabase();
    const apps = await Promise.all(
      [1, 2, 3].map(() => startTestApp({ databaseUrl: database.url })),
    );
    try {
      const client = new Client({ connectionString: database.url });
      await client.connect();
      const migrations = await client.query('SELECT name FROM mikro_orm_migrations ORDER BY id');
      const constraints = await client.query(
        `SELECT conname FROM pg_constraint WHERE conrelid IN ('ticket_options'::regclass, 'purchases'::regclass, 'reservations'::regclass) ORDER BY conname`,
      );
      await client.end();
      expect(migrations.rows).toEqual(MIGRATIONS.map(({ name }) => ({ name })));
      expect(constraints.rows.map((r: { conname: string }) => r.conname)).toEqual([
        'purchases_cancellation_check',
        'purchases_pkey',
        'purchases_quantity_check',
        'purchases_reservation_id_foreign',
        'purchases_reservation_id_unique',
        'purchases_status_check',
        'purchases_ticket_option_id_foreign',
        'reservations_confirmation_check',
        'reservations_pkey',
        'reservations_purchase_id_foreign',
        'reservations_purchase_id_unique',
        'reservations_quantity_check',
        'reservations_status_check',
        'reservations_ticket_option_id_foreign',
        'ticket_options_allocation_check',
        'ticket_options_name_check',
        'ticket_options_pkey',
        'ticket_options_within_allocation_check',
      ]);
      for (const t of apps) {
        expect((await new JsonApiClient(t.baseUrl).get('/nowhere')).status).toBe(404);
      }
    } finally {
      for (const t of apps) await t.close();
      await database.drop();
    }
  });

  it('the database itself refuses an oversell (by purchases or holds), a non-positive quantity and a negative allocation', async () => {
    const t = await startTestApp();
    try {
      const id = await new JsonApiClient(t.baseUrl).createTicketOption({
        name: 'Guard',
        allocation: 2,
      });
      await expect(
        t.sql.query('UPDATE ticket_options SET purchased = 3 WHERE id = $1', [id]),
      ).rejects.toThrow(/ticket_options_within_allocation_check/);
      await expect(
        t.sql.query('UPDATE ticket_options SET purchased = 1, held = 2 WHERE id = $1', [id]),
      ).rejects.toThrow(/ticket_options_within_allocation_check/);
      await expect(
        t.sql.query(
          `INSERT INTO purchases (id, ticket_option_id, user_id, quantity) VALUES (gen_random_uuid(), $1, gen_random_uuid(), 0)`,
          [id],
        ),
      ).rejects.toThrow(/purchases_quantity_check/);
      await expect(
        t.sql.query(
          `INSERT INTO ticket_options (id, name, allocation) VALUES (gen_random_uuid(), 'x', -1)`,
        ),
      ).rejects.toThrow(/ticket_options_allocation_check/);
    } finally {
      await t.close();
    }
  });
});
