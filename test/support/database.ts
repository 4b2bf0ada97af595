import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startEmbeddedPostgres } from '../../src/database/embedded-postgres';
import { findFreePort } from './ports';

export type DatabaseSource = 'TEST_DATABASE_URL' | 'testcontainers' | 'embedded-postgres';

export interface ResolvedTestDatabase {
  source: DatabaseSource;
  /** A URL on the server with the right to CREATE DATABASE; each test file makes its own. */
  adminUrl: string;
  stop(): Promise<void>;
}

/** Settings that trade durability for speed: fine for a throw-away test cluster only. */
const FAST_UNSAFE_SETTINGS = {
  fsync: 'off',
  synchronous_commit: 'off',
  full_page_writes: 'off',
  max_connections: '300',
};

/**
 * The one database resolver of the test suite: TEST_DATABASE_URL if set, else a Testcontainers
 * PostgreSQL when a Docker engine answers, else an embedded PostgreSQL.
 */
export async function resolveTestDatabase(): Promise<ResolvedTestDatabase> {
  const fromEnv = process.env.TEST_DATABASE_URL?.trim();
  if (fromEnv) {
    return { source: 'TEST_DATABASE_URL', adminUrl: fromEnv, stop: () => Promise.resolve() };
  }
  if (await dockerEngineAnswers()) {
    const { PostgreSqlContainer } = await import('@testcontainers/postgresql');
    const container = await new PostgreSqlContainer('postgres:17-alpine')
      .withCommand([
        'postgres',
        ...Object.entries(FAST_UNSAFE_SETTINGS).flatMap(([k, v]) => ['-c', `${k}=${v}`]),
      ])
      .start();
    return {
      source: 'testcontainers',
      adminUrl: container.getConnectionUri(),
      stop: async () => {
        await container.stop();
      },
    };
  }
  return startEmbeddedTestDatabase();
}

/** A throw-away embedded PostgreSQL: its data directory goes when it stops. */
export async function startEmbeddedTestDatabase(): Promise<ResolvedTestDatabase> {
  const dataDir = await mkdtemp(join(tmpdir(), 'ticket-tests-pg-'));
  const server = await startEmbeddedPostgres({
    dataDir,
    port: await findFreePort(),
    database: 'postgres',
    settings: FAST_UNSAFE_SETTINGS,
  }).catch(async (error: unknown) => {
    await rm(dataDir, { recursive: true, force: true });
    throw error;
  });
  return {
    source: 'embedded-postgres',
    adminUrl: server.url,
    stop: async () => {
      await server.stop();
      await rm(dataDir, { recursive: true, force: true });
    },
  };
}

async function dockerEngineAnswers(): Promise<boolean> {
  try {
    const { getContainerRuntimeClient } = await import('testcontainers');
    const probe = getContainerRuntimeClient().then(() => true);
    const timeout = new Promise<boolean>((resolve) =>
      setTimeout(() => resolve(false), 5000).unref(),
    );
    return await Promise.race([probe, timeout]);
  } catch {
    return false;
  }
}
