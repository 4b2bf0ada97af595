import { randomUUID } from 'node:crypto';
import { JsonApiClient, purchaseBody } from './support/jsonapi-client';
import { findFreePort } from './support/ports';
import { spawnServer, waitUntilServing } from './support/server-process';
import { createTestDatabase, sidePool } from './support/test-app';
import { waitFor } from './support/waiting';

interface Outcome {
  status: number | null;
  id?: string;
  retryAfter?: string | null;
  detail?: string;
  error?: string;
}

describe('SIGTERM under load', () => {
  it('answers every purchase it accepted, commits what it answered with 201, refuses new ones with 503, exits 0', async () => {
    const database = await createTestDatabase();
    const port = await findFreePort();
    const baseUrl = `http://127.0.0.1:${port}`;
    const server = spawnServer({
      PORT: String(port),
      HOST: '127.0.0.1',
      DATABASE_URL: database.url,
      LOG_LEVEL: 'warn',
    });
    const sql = sidePool(database.url, 2);
    try {
      await waitUntilServing(server, baseUrl);
      const api = new JsonApiClient(baseUrl);
      const optionId = await api.createTicketOption({ name: 'Drain', allocation: 1_000_000 });

      // Waves of purchases; SIGTERM goes out as soon as the first one is answered, so that the
      // actor's queue is full of purchases when the drain begins.
      let signalled = false;
      const fire = async (): Promise<Outcome> => {
        try {
          const response = await fetch(`${baseUrl}/ticket_options/${optionId}/purchases`, {
            method: 'POST',
            headers: { 'content-type': 'application/vnd.api+json' },
            body: JSON.stringify(purchaseBody(undefined, 1, randomUUID())),
          });
          const body = (await response.json()) as {
            data?: { id: string };
            errors?: Array<{ detail: string }>;
          };
          if (!signalled) {
            signalled = true;
            server.child.kill('SIGTERM');
          }
          return {
            status: response.status,
            id: body.data?.id,
            retryAfter: response.headers.get('retry-after'),
            detail: body.errors?.[0]?.detail,
          };
        } catch (error) {
          return { status: null, error: String((error as Error).cause ?? error) };
        }
      };
      const outcomes: Outcome[] = [];
      outcomes.push(...(await Promise.all(Array.from({ length: 150 }, fire))));
      expect(signalled).toBe(true);
      // Later waves are sent once the drain has visibly begun (readiness says shutting_down, or
      // the port is closed already), so they meet it whatever the machine's speed.
      await waitFor(
        'the drain to begin',
        async () => {
          try {
            const ready = await fetch(`${baseUrl}/health/ready`);
            return ((await ready.json()) as { status?: string }).status;
          } catch {
            return 'unreachable';
          }
        },
        (state) => state === 'shutting_down' || state === 'unreachable',
      );
      const afterDrain: Outcome[] = [];
      for (let wave = 1; wave < 6; wave++) {
        afterDrain.push(...(await Promise.all(Array.from({ length: 150 }, fire))));
      }
      outcomes.push(...afterDrain);

      expect(await server.exited).toBe(0);
      // Once draining, nothing new is sold: every later purchase is refused or cannot connect.
      expect(afterDrain.filter((o) => o.status !== 503 && o.status !== null)).toEqual([]);

      const created = outcomes.filter((o) => o.status === 201);
      const refused = outcomes.filter((o) => o.status === 503);
      const unreachable = outcomes.filter((o) => o.status === null);
      // Nothing else: no 500, no 400 (plenty of tickets), no answer cut off mid-way.
      expect(created.length + refused.length + unreachable.length).toBe(outcomes.length);
      expect(created.length).toBeGreaterThan(0);
      expect(refused.length + unreachable.length).toBeGreaterThan(0);
      for (const o of refused) {
        expect(o.retryAfter).toMatch(/^\d+$/);
        // Refused because the drain had begun, never because the pool closed under a queued
        // purchase: what was queued when SIGTERM arrived was committed and answered.
        expect(o.detail).toMatch(/shutting down/);
      }
      // A request that could not reach the server was refused at connect time, never mid-response.
      for (const o of unreachable)
        expect(o.error).toMatch(/ECONNREFUSED|ECONNRESET|other side closed/);

      // The audit: exactly the acknowledged purchases exist, and the counter agrees.
      const rows = await sql.query<{ id: string }>(
        'SELECT id FROM purchases WHERE ticket_option_id = $1',
        [optionId],
      );
      expect(new Set(rows.rows.map((r) => r.id))).toEqual(new Set(created.map((o) => o.id)));
      const option = await sql.query<{ purchased: number }>(
        'SELECT purchased FROM ticket_options WHERE id = $1',
        [optionId],
      );
      expect(option.rows[0].purchased).toBe(created.length);
    } finally {
      if (server.child.exitCode === null) server.child.kill('SIGKILL');
      await sql.end();
      await database.drop();
    }
  });
});
