import { randomUUID } from 'node:crypto';
import { Pool } from 'pg';
import { auditOption, PurchaseAttempt } from './support/audit';
import { untilNoSessionIsBusy, untilSomeoneWaitsForALock } from './support/database-outage';
import { JsonApiClient, purchaseBody } from './support/jsonapi-client';
import { findFreePort } from './support/ports';
import { ServerProcess, spawnServer, waitUntilServing } from './support/server-process';
import { createTestDatabase, sidePool, startTestApp } from './support/test-app';
import { holdOptionRowLock } from './support/row-lock';

const PURCHASES = 2000;

interface Cluster {
  servers: ServerProcess[];
  clients: JsonApiClient[];
  databaseUrl: string;
  sql: Pool;
  small: string;
  large: string;
  stop(): Promise<void>;
}

/** Three real server processes (src/main.ts) on one fresh database, and two options to sell. */
async function startCluster(): Promise<Cluster> {
  const database = await createTestDatabase();
  // Migrate once up front so the three processes start quickly (concurrent migration has its own test).
  const migrator = await startTestApp({ databaseUrl: database.url });
  await migrator.close();

  const ports = [await findFreePort(), await findFreePort(), await findFreePort()];
  const servers = ports.map((port) =>
    spawnServer({
      PORT: String(port),
      HOST: '127.0.0.1',
      DATABASE_URL: database.url,
      LOG_LEVEL: 'warn',
      // A batch loses at most as many races as the others commit batches of its option (how
      // many, the machine's scheduling decides): above any count here, no purchase gets a 503
      // for a lost race, whatever the load (the default, 20, is a production liveness bound).
      ACTOR_MAX_COMMIT_ATTEMPTS: '1000',
    }),
  );
  await Promise.all(
    servers.map((server, i) => waitUntilServing(server, `http://127.0.0.1:${ports[i]}`)),
  );
  const clients = ports.map((port) => new JsonApiClient(`http://127.0.0.1:${port}`));
  const small = await clients[0].createTicketOption({ name: 'Sells out early', allocation: 120 });
  const large = await clients[1].createTicketOption({ name: 'Larger', allocation: 2500 });
  const sql = sidePool(database.url, 2);
  return {
    servers,
    clients,
    databaseUrl: database.url,
    sql,
    small,
    large,
    stop: async () => {
      for (const server of servers) {
        if (server.child.exitCode === null && server.child.signalCode === null)
          server.child.kill('SIGTERM');
      }
      await Promise.all(servers.map((server) => server.exited));
      await sql.end();
      await database.drop();
    },
  };
}

/** Purchase i: option, instance and route spread evenly; quantities 1..5 mixed; a unique user. */
function plan(cluster: Cluster, i: number) {
  const optionId = i % 2 === 0 ? cluster.small : cluster.large;
  const quantity = ((i * 7) % 5) + 1;
  const client = cluster.clients[Math.floor(i / 2) % 3];
  return { optionId, quantity, client, nested: i % 4 < 2 };
}

/**
 * What fetch throws when the server's end of the connection vanished (or was never there). By
 * name, not instanceof: fetch's TypeError comes from Node's realm, not from the test's.
 */
function isConnectionLost(error: unknown): boolean {
  const { name, message, cause } = error as { name?: unknown; message?: unknown; cause?: any };
  return (
    name === 'TypeError' &&
    message === 'fetch failed' &&
    ['ECONNRESET', 'ECONNREFUSED', 'EPIPE', 'UND_ERR_SOCKET'].includes(String(cause?.code))
  );
}

/**
 * Who may lose connections: nobody (no kill), or the killed instance once it was killed. Its
 * connection errors are the only outcomes a client cannot know; any other error fails the test.
 */
interface KillSwitch {
  victim: JsonApiClient;
  killed: boolean;
}

async function send(
  target: { optionId: string; quantity: number; client: JsonApiClient; nested: boolean },
  kill: KillSwitch | null,
) {
  const { optionId, quantity, client, nested } = target;
  const userId = randomUUID();
  let response = null;
  try {
    response = nested
      ? await client.post(
          `/ticket_options/${optionId}/purchases`,
          purchaseBody(undefined, quantity, userId),
        )
      : await client.purchase(optionId, quantity, userId);
  } catch (error) {
    if (!(kill?.killed && client === kill.victim && isConnectionLost(error))) throw error;
  }
  return { optionId, client, attempt: { quantity, userId, response } as PurchaseAttempt };
}

type Result = Awaited<ReturnType<typeof send>>;

async function auditAll(cluster: Cluster, results: Result[], optionIds: string[]) {
  for (const optionId of optionIds) {
    await auditOption(
      cluster.sql,
      optionId,
      results.filter((r) => r.optionId === optionId).map((r) => r.attempt),
    );
  }
}

describe('three instances on one database', () => {
  it(`${PURCHASES} concurrent purchases across 3 processes and 2 options never oversell`, async () => {
    const cluster = await startCluster();
    try {
      const results = await Promise.all(
        Array.from({ length: PURCHASES }, (_, i) => send(plan(cluster, i), null)),
      );

      // Every purchase was answered (any connection error would have failed `send`).
      expect(results.filter((r) => r.attempt.response === null)).toEqual([]);
      await auditAll(cluster, results, [cluster.small, cluster.large]);
      const small = (
        await cluster.sql.query('SELECT purchased FROM ticket_options WHERE id = $1', [
          cluster.small,
        ])
      ).rows[0];
      expect(120 - small.purchased).toBeLessThan(5); // it sold out (every refusal asked for more)
    } finally {
      await cluster.stop();
    }
  });

  it('an instance SIGKILLed mid-load loses no acknowledged purchase and causes no oversell', async () => {
    const cluster = await startCluster();
    let release: (() => Promise<void>) | null = null;
    try {
      const [, , victim] = cluster.servers;
      const kill: KillSwitch = { victim: cluster.clients[2], killed: false };

      // Purchases certainly in flight at the kill: the victim's commit of this option waits for
      // a row lock the test holds (the lock timeout is far away), so none of them can be
      // answered before the kill, whatever the machine's speed.
      const stuck = await cluster.clients[0].createTicketOption({ name: 'Stuck', allocation: 50 });
      release = await holdOptionRowLock(cluster.databaseUrl, stuck);
      const stuckResults = Array.from({ length: 10 }, () =>
        send({ optionId: stuck, quantity: 1, client: kill.victim, nested: true }, kill),
      );
      await untilSomeoneWaitsForALock(cluster.databaseUrl);

      // The burst: the victim is killed at its first answer, with the rest of its share queued,
      // in flight or unsent.
      const burst = await Promise.all(
        Array.from({ length: PURCHASES }, async (_, i) => {
          const result = await send(plan(cluster, i), kill);
          if (result.client === kill.victim && !kill.killed) {
            kill.killed = true;
            victim.child.kill('SIGKILL');
          }
          return result;
        }),
      );
      const stuckOutcomes = await Promise.all(stuckResults);
      expect(await victim.exited).toBe('SIGKILL');

      // Each stuck purchase lost its connection; the survivors answered every purchase of theirs.
      expect(stuckOutcomes.map((r) => r.attempt.response)).toEqual(Array(10).fill(null));
      const results = [...burst, ...stuckOutcomes];
      expect(
        results.filter((r) => r.attempt.response === null && r.client !== kill.victim),
      ).toEqual([]);
      expect(results.filter((r) => r.attempt.response?.status === 201).length).toBeGreaterThan(0);

      // The killed instance's session may still commit the stuck batch once the lock is gone (a
      // commit whose answer is lost) or abort it: either is fine, as long as it has finished
      // before the audit. Then no session of the database is doing anything.
      await release();
      release = null;
      await untilNoSessionIsBusy(cluster.sql, cluster.databaseUrl);

      // Exactly what the clients were told: every 201 stored, every refusal stored nowhere,
      // every unknown outcome stored once or not at all, within every allocation.
      await auditAll(cluster, results, [cluster.small, cluster.large, stuck]);
    } finally {
      await release?.();
      await cluster.stop();
    }
  });
});
