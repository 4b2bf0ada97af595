import type { PoolClient } from 'pg';
import { ApiResponse, JsonApiClient, purchaseBody } from './support/jsonapi-client';
import { parsePrometheus, valueOf } from './support/prometheus';
import { startTestApp, TestApp } from './support/test-app';
import { waitFor } from './support/waiting';

/**
 * GET /ticket_options/:id shares statements between the reads of one option that arrive while
 * its statement runs (src/database/read-coalescer.ts), and never answers a read with a statement
 * that started before the read arrived.
 */
describe('shared reads of one ticket option', () => {
  let t: TestApp;
  let api: JsonApiClient;

  beforeAll(async () => {
    t = await startTestApp();
    api = new JsonApiClient(t.baseUrl);
  });
  afterAll(() => t.close());

  async function counters(): Promise<{ reads: number; statements: number }> {
    const samples = parsePrometheus((await api.get('/metrics')).text);
    return {
      reads: valueOf(samples, 'ticket_option_reads_total'),
      statements: valueOf(samples, 'ticket_option_read_statements_total'),
    };
  }

  /** Backends of the application waiting for a lock on a read of ticket_options. */
  async function blockedReads(): Promise<number> {
    const { rows } = await t.sql.query<{ n: number }>(
      `SELECT count(*)::int AS n FROM pg_stat_activity
        WHERE datname = current_database() AND wait_event_type = 'Lock'
          AND query LIKE '%FROM ticket_options t WHERE t.id = $1%'`,
    );
    return rows[0].n;
  }

  it('answers the reads that arrive while one runs with ONE next statement', async () => {
    const id = await api.createTicketOption({ name: 'o', allocation: 10 });
    const before = await counters();
    // The table locked behind the application's back: its read waits in PostgreSQL.
    const locker: PoolClient = await t.sql.connect();
    let first: Promise<ApiResponse>;
    let followers: Array<Promise<ApiResponse>>;
    try {
      await locker.query('BEGIN');
      await locker.query('LOCK TABLE ticket_options IN ACCESS EXCLUSIVE MODE');
      first = api.get(`/ticket_options/${id}`);
      await waitFor('the first read to wait for the lock', blockedReads, (n) => n === 1);
      followers = Array.from({ length: 9 }, () => api.get(`/ticket_options/${id}`));
      await waitFor(
        'the nine other reads to arrive',
        counters,
        (c) => c.reads === before.reads + 10,
      );
      // They arrived while the first statement ran: none has a statement of its own yet.
      expect(await blockedReads()).toBe(1);
      expect((await counters()).statements).toBe(before.statements + 1);
    } finally {
      await locker.query('ROLLBACK');
      locker.release();
    }
    const answers = await Promise.all([first!, ...followers!]);
    for (const answer of answers) {
      expect(answer.status).toBe(200);
      expect(answer.body.meta).toEqual({ remaining: 10, sold: 0, held: 0 });
    }
    // The first read's statement, and one more for the nine that arrived during it.
    expect(await counters()).toEqual({
      reads: before.reads + 10,
      statements: before.statements + 2,
    });
  });

  it('shows every purchase acknowledged before the read was sent, while other reads keep running', async () => {
    const id = await api.createTicketOption({ name: 'o', allocation: 1000 });
    let reading = true;
    // A constant stream of reads of the same option: one of them is nearly always in flight.
    const background = Array.from({ length: 8 }, async () => {
      while (reading) expect((await api.get(`/ticket_options/${id}`)).status).toBe(200);
    });
    try {
      for (let sold = 1; sold <= 40; sold++) {
        const purchase = await api.post(`/ticket_options/${id}/purchases`, purchaseBody(id, 1));
        expect(purchase.status).toBe(201);
        const read = await api.get(`/ticket_options/${id}`);
        expect(read.status).toBe(200);
        expect(read.body.meta.sold).toBe(sold);
        expect(read.body.meta.remaining).toBe(1000 - sold);
      }
    } finally {
      reading = false;
      await Promise.all(background);
    }
    const { reads, statements } = await counters();
    expect(statements).toBeLessThanOrEqual(reads);
  });
});
