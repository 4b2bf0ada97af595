import type { EntityManager, MikroORM } from '@mikro-orm/postgresql';
import { execFile, execFileSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import {
  auditLedger,
  LEDGER_VIOLATION_KINDS,
  LedgerAuditReport,
  LedgerViolationKind,
} from '../src/audit/ledger-audit';
import { runStatement } from '../src/database/sql';
import { JsonApiClient } from './support/jsonapi-client';
import { isPortFree } from './support/ports';
import { embeddedServerEnv, spawnServer, waitUntilServing } from './support/server-process';
import { createTestDatabase, sidePool, startMigratedOrm } from './support/test-app';

const ROOT = join(__dirname, '..');

/** The ledger of docs/design.md, Reservations, planted row by row: every status, every link. */
const A = randomUUID(); // allocation 10: purchases, holds (one overdue), a confirmation
const B = randomUUID(); // allocation 5, nothing sold or held
const C = randomUUID(); // allocation 5, sold out
const USER = randomUUID();
const R = {
  held: randomUUID(),
  overdue: randomUUID(),
  confirmed: randomUUID(),
  released: randomUUID(),
  expired: randomUUID(),
};
const P = {
  direct: randomUUID(),
  cancelled: randomUUID(),
  confirmed: randomUUID(),
  soldOut: randomUUID(),
};
const GHOST = randomUUID(); // a row that does not exist

const purchase = (id: string, option: string, quantity: number, extra = '') =>
  `INSERT INTO purchases (id, ticket_option_id, user_id, quantity${extra ? ', status, cancelled_at' : ''})
   VALUES ('${id}', '${option}', '${USER}', ${quantity}${extra})`;
const reservation = (id: string, quantity: number, status: string, expiresIn: string) =>
  `INSERT INTO reservations (id, ticket_option_id, user_id, quantity, status, expires_at)
   VALUES ('${id}', '${A}', '${USER}', ${quantity}, '${status}', now() + interval '${expiresIn}')`;

const CLEAN_LEDGER = [
  `INSERT INTO ticket_options (id, name, allocation, purchased, held) VALUES
     ('${A}', 'A', 10, 4, 4), ('${B}', 'B', 5, 0, 0), ('${C}', 'C', 5, 5, 0)`,
  purchase(P.direct, A, 2),
  purchase(P.cancelled, A, 1, `, 'cancelled', now()`),
  purchase(P.soldOut, C, 5),
  reservation(R.held, 3, 'held', '10 minutes'),
  // Past expires_at and not swept yet: still counted by `held`, which is the rule.
  reservation(R.overdue, 1, 'held', '-5 seconds'),
  reservation(R.released, 1, 'released', '10 minutes'),
  reservation(R.expired, 1, 'expired', '-1 minute'),
  // A confirmation, in the order the foreign keys allow: hold, purchase naming it, then the link.
  reservation(R.confirmed, 2, 'held', '10 minutes'),
  `INSERT INTO purchases (id, ticket_option_id, user_id, quantity, reservation_id)
   VALUES ('${P.confirmed}', '${A}', '${USER}', 2, '${R.confirmed}')`,
  `UPDATE reservations SET status = 'confirmed', purchase_id = '${P.confirmed}' WHERE id = '${R.confirmed}'`,
];

const dropConstraint = (table: string, name: string) =>
  `ALTER TABLE ${table} DROP CONSTRAINT ${name}`;
const bump = (option: string, column: 'purchased' | 'held', by: number) =>
  `UPDATE ticket_options SET ${column} = ${column} + ${by} WHERE id = '${option}'`;

type Found = [LedgerViolationKind, string, string | null, string | null];

/** Each way to corrupt the ledger, and exactly what the audit must list for it. */
const CORRUPTIONS: Array<{ name: string; plant: string[]; expected: Found[] }> = [
  {
    name: 'a purchase cancelled without returning its tickets',
    plant: [
      `UPDATE purchases SET status = 'cancelled', cancelled_at = now() WHERE id = '${P.direct}'`,
    ],
    expected: [['purchased_counter', A, null, null]],
  },
  {
    name: 'a sold counter moved without a purchase',
    plant: [bump(A, 'purchased', 1)],
    expected: [['purchased_counter', A, null, null]],
  },
  {
    name: 'a hold expired without returning its tickets',
    plant: [`UPDATE reservations SET status = 'expired' WHERE id = '${R.overdue}'`],
    expected: [['held_counter', A, null, null]],
  },
  {
    name: 'a held counter below its holds',
    plant: [bump(A, 'held', -1)],
    expected: [['held_counter', A, null, null]],
  },
  {
    name: 'sold + held above the allocation, counters matching the rows',
    plant: [
      dropConstraint('ticket_options', 'ticket_options_within_allocation_check'),
      purchase(randomUUID(), C, 1),
      bump(C, 'purchased', 1),
    ],
    expected: [['allocation_bound', C, null, null]],
  },
  {
    name: 'a negative held counter',
    plant: [
      dropConstraint('ticket_options', 'ticket_options_within_allocation_check'),
      bump(B, 'held', -1),
    ],
    expected: [
      ['allocation_bound', B, null, null],
      ['held_counter', B, null, null],
    ],
  },
  {
    name: 'a confirmed reservation naming no purchase',
    plant: [
      dropConstraint('reservations', 'reservations_confirmation_check'),
      `UPDATE reservations SET purchase_id = NULL WHERE id = '${R.confirmed}'`,
    ],
    expected: [
      ['confirmed_without_purchase', A, R.confirmed, null],
      ['reservation_not_naming_purchase', A, R.confirmed, P.confirmed],
    ],
  },
  {
    name: 'a confirmed reservation naming a purchase that does not exist',
    plant: [
      dropConstraint('reservations', 'reservations_purchase_id_foreign'),
      `UPDATE reservations SET purchase_id = '${GHOST}' WHERE id = '${R.confirmed}'`,
    ],
    expected: [
      ['confirmed_purchase_missing', A, R.confirmed, GHOST],
      ['reservation_not_naming_purchase', A, R.confirmed, P.confirmed],
    ],
  },
  {
    name: 'two purchases of one reservation',
    plant: [
      dropConstraint('purchases', 'purchases_reservation_id_unique'),
      `INSERT INTO purchases (id, ticket_option_id, user_id, quantity, reservation_id)
       VALUES ('${GHOST}', '${A}', '${USER}', 2, '${R.confirmed}')`,
      bump(A, 'purchased', 2),
    ],
    expected: [
      ['confirmed_purchase_count', A, R.confirmed, P.confirmed],
      ['reservation_not_naming_purchase', A, R.confirmed, GHOST],
    ],
  },
  {
    name: 'the purchase of a confirmed reservation not naming it back',
    plant: [`UPDATE purchases SET reservation_id = NULL WHERE id = '${P.confirmed}'`],
    expected: [
      ['confirmed_purchase_count', A, R.confirmed, P.confirmed],
      ['purchase_not_pointing_back', A, R.confirmed, P.confirmed],
    ],
  },
  {
    name: 'a confirmation of another quantity',
    plant: [
      `UPDATE purchases SET quantity = 1 WHERE id = '${P.confirmed}'`,
      bump(A, 'purchased', -1),
    ],
    expected: [['confirmed_purchase_mismatch', A, R.confirmed, P.confirmed]],
  },
  {
    name: 'a confirmation for another user',
    plant: [`UPDATE purchases SET user_id = '${GHOST}' WHERE id = '${P.confirmed}'`],
    expected: [['confirmed_purchase_mismatch', A, R.confirmed, P.confirmed]],
  },
  {
    name: 'a confirmation on another option',
    plant: [
      `UPDATE purchases SET ticket_option_id = '${B}' WHERE id = '${P.confirmed}'`,
      bump(A, 'purchased', -2),
      bump(B, 'purchased', 2),
    ],
    expected: [['confirmed_purchase_mismatch', A, R.confirmed, P.confirmed]],
  },
  {
    name: 'a released reservation naming a purchase',
    plant: [
      dropConstraint('reservations', 'reservations_confirmation_check'),
      `UPDATE reservations SET purchase_id = '${P.direct}' WHERE id = '${R.released}'`,
    ],
    expected: [['unconfirmed_reservation_with_purchase', A, R.released, P.direct]],
  },
  {
    name: 'a purchase naming a reservation still held',
    plant: [`UPDATE purchases SET reservation_id = '${R.held}' WHERE id = '${P.direct}'`],
    expected: [
      ['unconfirmed_reservation_with_purchase', A, R.held, null],
      ['purchase_of_unconfirmed_reservation', A, R.held, P.direct],
      ['reservation_not_naming_purchase', A, R.held, P.direct],
    ],
  },
  {
    name: 'a purchase naming a reservation that does not exist',
    plant: [
      dropConstraint('purchases', 'purchases_reservation_id_foreign'),
      `UPDATE purchases SET reservation_id = '${GHOST}' WHERE id = '${P.direct}'`,
    ],
    expected: [['purchase_reservation_missing', A, GHOST, P.direct]],
  },
];

const order = (a: Found, b: Found) => JSON.stringify(a).localeCompare(JSON.stringify(b));
const listed = (report: LedgerAuditReport): Found[] =>
  report.violations
    .map((v): Found => [v.kind, v.optionId, v.reservationId, v.purchaseId])
    .sort(order);

describe('ledger audit (src/audit/ledger-audit.ts)', () => {
  let orm: MikroORM;
  let close: () => Promise<void>;
  let databaseUrl: string;

  beforeAll(async () => {
    ({ orm, close } = await startMigratedOrm(2));
    databaseUrl = orm.config.get('clientUrl')!;
    for (const text of CLEAN_LEDGER) await runStatement(orm, { text });
  });
  afterAll(() => close());

  /** Runs `plant` and the audit in one transaction, then rolls it back (DDL included). */
  async function auditAfter(plant: string[], maxListed?: number): Promise<LedgerAuditReport> {
    const em = orm.em.fork() as EntityManager;
    await em.begin();
    try {
      for (const text of plant) await runStatement(em, { text });
      return await auditLedger(em, { maxListed });
    } finally {
      await em.rollback();
    }
  }

  it('passes a clean ledger, counting a due hold nobody swept yet as held', async () => {
    const report = await auditLedger(orm);
    expect(report).toMatchObject({ ok: true, truncated: false, options: 3, violations: [] });
    expect(report.totals).toEqual({
      allocation: 20,
      purchasedCounter: 9,
      completedQuantity: 9,
      heldCounter: 4,
      heldQuantity: 4,
      overdueHeldQuantity: 1,
      purchases: { completed: 3, cancelled: 1 },
      reservations: { held: 2, confirmed: 1, released: 1, expired: 1 },
    });
    expect(Object.keys(report.counts).sort()).toEqual([...LEDGER_VIOLATION_KINDS].sort());
    expect(Object.values(report.counts).every((n) => n === 0)).toBe(true);
    // On a plain pg pool too, with the same answer.
    const pool = sidePool(databaseUrl, 1);
    try {
      expect({ ...(await auditLedger(pool)), checkedAt: null }).toEqual({
        ...report,
        checkedAt: null,
      });
    } finally {
      await pool.end();
    }
  });

  it.each(CORRUPTIONS)('reports $name', async ({ plant, expected }) => {
    const report = await auditAfter(plant);
    expect(listed(report)).toEqual([...expected].sort(order));
    expect(report.ok).toBe(false);
    for (const [kind] of expected) expect(report.counts[kind]).toBeGreaterThan(0);
  });

  it('gives the counter and the sums for a per-option violation', async () => {
    const report = await auditAfter([bump(A, 'held', -1)]);
    expect(report.violations[0].figures).toEqual({
      allocation: 10,
      purchased: 4,
      held: 3,
      completedQuantity: 4,
      heldQuantity: 4,
      overdueHeldQuantity: 1,
    });
  });

  it('lists at most maxListed violations, and still counts them all', async () => {
    const report = await auditAfter([bump(A, 'held', -1), bump(B, 'purchased', 1)], 1);
    expect(report.violations).toHaveLength(1);
    expect(report.counts).toMatchObject({ held_counter: 1, purchased_counter: 1 });
    expect(report.truncated).toBe(true);
  });

  it('audits 20,000 options in grouped passes and finds the one that is wrong', async () => {
    const options = 20_000;
    const wrong = `md5('option-12345')::uuid`;
    const report = await auditAfter([
      `INSERT INTO ticket_options (id, name, allocation, purchased, held)
       SELECT md5('option-' || i)::uuid, 'bulk', 20, 6, 4 FROM generate_series(1, ${options}) i`,
      `INSERT INTO purchases (id, ticket_option_id, user_id, quantity, status, cancelled_at)
       SELECT gen_random_uuid(), md5('option-' || i)::uuid, gen_random_uuid(), 2,
              CASE WHEN k = 4 THEN 'cancelled' ELSE 'completed' END,
              CASE WHEN k = 4 THEN now() END
         FROM generate_series(1, ${options}) i, generate_series(1, 4) k`,
      `INSERT INTO reservations (id, ticket_option_id, user_id, quantity, status, expires_at)
       SELECT gen_random_uuid(), md5('option-' || i)::uuid, gen_random_uuid(), 2, 'held',
              now() + interval '1 minute'
         FROM generate_series(1, ${options}) i, generate_series(1, 2) k`,
      `UPDATE ticket_options SET held = 3 WHERE id = ${wrong}`,
    ]);
    expect(report.options).toBe(options + 3);
    expect(report.totals.purchases.completed).toBe(3 + options * 3);
    expect(report.violations).toEqual([
      expect.objectContaining({
        kind: 'held_counter',
        figures: expect.objectContaining({ held: 3 }),
      }),
    ]);
  });

  describe('npm run audit (dist/audit/audit.cli.js)', () => {
    const run = promisify(execFile);
    beforeAll(() => {
      // `npm run audit` runs dist/; build it as that script would, if it is stale.
      execFileSync(process.execPath, ['scripts/build-if-stale.js'], { cwd: ROOT, stdio: 'pipe' });
    }, 180_000);

    /** Runs the CLI against `url`, or with `env` (no DATABASE_URL: the embedded database). */
    async function audit(url: string | Record<string, string>, args: string[] = []) {
      const target = typeof url === 'string' ? { DATABASE_URL: url } : url;
      try {
        const { stdout, stderr } = await run(
          process.execPath,
          ['dist/audit/audit.cli.js', ...args],
          {
            cwd: ROOT,
            env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', ...target },
          },
        );
        return { code: 0, stdout, stderr };
      } catch (error) {
        const { code, stdout, stderr } = error as { code: number; stdout: string; stderr: string };
        return { code, stdout, stderr };
      }
    }

    it('exits 0 on a clean ledger, with a summary', async () => {
      const { code, stdout } = await audit(databaseUrl);
      expect(code).toBe(0);
      expect(stdout).toMatch(/options checked +3\n/);
      expect(stdout).toMatch(/sold: counter \/ completed rows +9 \/ 9 /);
      expect(stdout).toMatch(/held: counter \/ held rows +4 \/ 4 +\(of which 1 past expires_at/);
      expect(stdout).toMatch(/\nOK: no violation\n$/);
    });

    it('exits 1 on a violation, naming its kind and option; --json gives the report', async () => {
      await runStatement(orm, { text: bump(B, 'purchased', 1) });
      try {
        const text = await audit(databaseUrl);
        expect(text.code).toBe(1);
        expect(text.stdout).toContain(`purchased_counter  ${B}  -  -  allocation=5 purchased=1`);
        expect(text.stdout).toMatch(/\nFAILED: 1 violation\(s\)\n$/);
        const json = await audit(databaseUrl, ['--json']);
        expect(json.code).toBe(1);
        expect(JSON.parse(json.stdout)).toMatchObject({
          ok: false,
          counts: { purchased_counter: 1 },
          violations: [{ kind: 'purchased_counter', optionId: B }],
        });
      } finally {
        await runStatement(orm, { text: bump(B, 'purchased', -1) });
      }
    });

    it('exits 2, saying why, when there is no ledger to audit', async () => {
      const empty = await createTestDatabase();
      try {
        const { code, stdout, stderr } = await audit(empty.url);
        expect({ code, stdout }).toEqual({ code: 2, stdout: '' });
        expect(stderr).toMatch(/^audit: .* has no ledger tables .*\n$/);
        const { password } = new URL(empty.url);
        if (password) expect(stderr).not.toContain(`:${password}@`); // redacted: `:***@`
      } finally {
        await empty.drop();
      }
    });

    it('without DATABASE_URL audits the embedded database of npm start, running or not', async () => {
      const { dataDir, env, baseUrl } = await embeddedServerEnv('ticket-audit-');
      const server = spawnServer(env, { args: ['dist/main.js'] });
      try {
        await waitUntilServing(server, baseUrl);
        const api = new JsonApiClient(baseUrl);
        const option = await api.createTicketOption({ name: 'Embedded', allocation: 7 });
        expect((await api.purchase(option, 2)).status).toBe(201);

        // The service runs: the audit reads through its server (which holds the data directory).
        const running = await audit(env);
        expect(running.stderr).toContain('auditing the running embedded PostgreSQL');
        expect(running).toMatchObject({
          code: 0,
          stdout: expect.stringMatching(/options checked +1\n/),
        });
        expect(running.stdout).toMatch(/sold: counter \/ completed rows +2 \/ 2 /);

        server.child.kill('SIGTERM');
        expect(await server.exited).toBe(0);
        // The service stopped: the audit starts the server as npm start does, and stops it after.
        const stopped = await audit(env);
        expect(stopped.stderr).toContain(
          `starting the embedded PostgreSQL with its data in ${env.EMBEDDED_PG_DATA_DIR}`,
        );
        expect(stopped).toMatchObject({
          code: 0,
          stdout: expect.stringMatching(/options checked +1\n/),
        });
        expect(await isPortFree(Number(env.EMBEDDED_PG_PORT))).toBe(true);
      } finally {
        if (server.child.exitCode === null && server.child.signalCode === null) {
          server.child.kill('SIGTERM');
          await server.exited;
        }
        await rm(dataDir, { recursive: true, force: true });
      }
    });
  });
});
