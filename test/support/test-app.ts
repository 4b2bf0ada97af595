import { MikroORM } from '@mikro-orm/postgresql';
import type { NestFastifyApplication } from '@nestjs/platform-fastify';
import { randomBytes } from 'node:crypto';
import { Client, Pool } from 'pg';
import { createApp } from '../../src/app.factory';
import { loadConfig } from '../../src/config/app-config';
import { buildOrmOptions } from '../../src/database/mikro-orm.config';
import { GENEROUS_DATABASE_TIMEOUTS } from './waiting';

function adminUrl(): string {
  const url = process.env.TEST_PG_ADMIN_URL;
  if (!url) throw new Error('TEST_PG_ADMIN_URL is not set: run through jest (global setup)');
  return url;
}

/** Runs `fn` on a connection to the test server's admin database (CREATE/DROP/ALTER DATABASE). */
export async function withAdmin<T>(fn: (client: Client) => Promise<T>): Promise<T> {
  const client = new Client({ connectionString: adminUrl() });
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end();
  }
}

/** A fresh, empty database of its own for one test file, so files can run in parallel. */
export async function createTestDatabase(): Promise<{ url: string; drop(): Promise<void> }> {
  const name = `t_${randomBytes(6).toString('hex')}`;
  await withAdmin((client) => client.query(`CREATE DATABASE ${name}`));
  const url = new URL(adminUrl());
  url.pathname = `/${name}`;
  return {
    url: url.toString(),
    drop: () =>
      withAdmin((client) => client.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`)).then(
        () => undefined,
      ),
  };
}

/**
 * A pool of side connections for audits and for writing behind the application's back. It
 * ignores errors of its IDLE connections: pg-pool's end() resolves before its sockets are
 * closed, so dropping the database WITH (FORCE) right after (or a test's own outage) terminates
 * them, and without a listener that arrives as an unhandled 'error' in whatever test runs next.
 * A query on a broken connection still fails, visibly, in the test that made it.
 */
export function sidePool(databaseUrl: string, max = 3): Pool {
  const pool = new Pool({ connectionString: databaseUrl, max });
  pool.on('error', () => undefined);
  return pool;
}

export interface TestApp {
  app: NestFastifyApplication;
  baseUrl: string;
  databaseUrl: string;
  /** A side connection for audits and for changing rows behind the application's back. */
  sql: Pool;
  close(): Promise<void>;
}

/**
 * Starts the real application (the factory main.ts uses) on 127.0.0.1, on a port the OS picks,
 * with a database of its own (or the one given, to run several instances on one database).
 */
export async function startTestApp(
  options: { databaseUrl?: string; env?: Record<string, string> } = {},
): Promise<TestApp> {
  const database = options.databaseUrl ? undefined : await createTestDatabase();
  const databaseUrl = options.databaseUrl ?? database!.url;
  const config = loadConfig({ LOG_LEVEL: 'silent', ...GENEROUS_DATABASE_TIMEOUTS, ...options.env });
  const app = await createApp({ ...config, databaseUrl });
  await app.listen({ port: 0, host: '127.0.0.1' });
  const address = app.getHttpServer().address();
  if (!address || typeof address === 'string') throw new Error('no TCP address');
  const sql = sidePool(databaseUrl);
  return {
    app,
    baseUrl: `http://127.0.0.1:${address.port}`,
    databaseUrl,
    sql,
    close: async () => {
      await app.close();
      await sql.end();
      await database?.drop();
    },
  };
}

/** A bare MikroORM on a fresh, fully migrated database of its own (no application around it). */
export async function startMigratedOrm(
  poolSize: number,
): Promise<{ orm: MikroORM; close: () => Promise<void> }> {
  const database = await createTestDatabase();
  const orm = await MikroORM.init({
    ...buildOrmOptions({ databaseUrl: database.url, poolSize }),
    logger: () => undefined,
  });
  await orm.migrator.up();
  return {
    orm,
    close: async () => {
      await orm.close(true);
      await database.drop();
    },
  };
}
