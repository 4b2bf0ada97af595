import { randomUUID } from 'node:crypto';
import { Pool } from 'pg';
import { auditOption, PurchaseAttempt } from './support/audit';
import { ApiResponse, JsonApiClient, purchaseBody } from './support/jsonapi-client';
import { findFreePort } from './support/ports';
import { ServerProcess, spawnServer, waitUntilServing } from './support/server-process';
import { createTestDatabase, startTestApp } from './support/test-app';

const PURCHASES = 2000;

interface Cluster {
  servers: ServerProcess[];
  clients: JsonApiClient[];
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
    }),
  );
  await Promise.all(
    servers.map((server, i) => waitUntilServing(server, `http://127.0.0.1:${ports[i]}`)),
  );
  const clients = ports.map((port) => new JsonApiClient(`http://127.0.0.1:${port}`));
  const small = await clients[0].createTicketOption({ name: 'Sells out early', allocation: 120 });
  const large = await clients[1].createTicketOption({ name: 'Larger', allocation: 2500 });
  const sql = new Pool({ connectionString: database.url, max: 2 });
  return {
    servers,
    clients,
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
  const userId = randomUUID();
  const client = cluster.clients[Math.floor(i / 2) % 3];
  return { optionId, quantity, userId, client, nested: i % 4 < 2 };
}

async function attempt(cluster: Cluster, i: number, onAnswer?: () => void) {
  const { optionId, quantity, userId, client, nested } = plan(cluster, i);
  let response: ApiResponse | null;
  try {
    response = nested
      ? await client.post(
          `/ticket_options/${optionId}/purchases`,
          purchaseBody(undefined, quantity, userId),
        )
      : await client.purchase(optionId, quantity, userId);
  } catch {
    response = null; // connection reset: the client cannot know the outcome
  }
  onAnswer?.();
  return { optionId, attempt: { quantity, userId, response } as PurchaseAttempt };
}

async function auditBoth(
  cluster: Cluster,
  results: Array<{ optionId: string; attempt: PurchaseAttempt }>,
) {
  for (const optionId of [cluster.small, cluster.large]) {
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
        Array.from({ length: PURCHASES }, (_, i) => attempt(cluster, i)),
      );

      expect(results.every((r) => r.attempt.response !== null)).toBe(true);
      await auditBoth(cluster, results);
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
    try {
      const victim = cluster.servers[2];
      const victimClient = cluster.clients[2];
      const toVictim = Array.from({ length: PURCHASES }, (_, i) => i).filter(
        (i) => plan(cluster, i).client === victimClient,
      ).length;
      let victimAnswers = 0;
      let answeredBeforeKill = -1;
      // Killed at its first answer: the rest of its share is queued, in flight or unsent.
      const results = await Promise.all(
        Array.from({ length: PURCHASES }, (_, i) =>
          attempt(cluster, i, () => {
            if (plan(cluster, i).client !== victimClient || answeredBeforeKill >= 0) return;
            victimAnswers++;
            answeredBeforeKill = victimAnswers;
            victim.child.kill('SIGKILL');
          }),
        ),
      );

      expect(await victim.exited).toBe('SIGKILL');
      expect(answeredBeforeKill).toBeLessThan(toVictim);
      const unknown = results.filter((r) => r.attempt.response === null).length;
      const acknowledged = results.filter((r) => r.attempt.response?.status === 201).length;
      expect(acknowledged).toBeGreaterThan(0);
      expect(unknown).toBeLessThanOrEqual(toVictim);
      await auditBoth(cluster, results);
    } finally {
      await cluster.stop();
    }
  });
});
