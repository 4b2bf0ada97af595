import { ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { chown, mkdir, rm, writeFile } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { Client } from 'pg';
import {
  EmbeddedPostgresError,
  EmbeddedPostgresPlacement,
  placeEmbeddedPostgres,
} from './embedded-postgres-placement';

export { EmbeddedPostgresError };
export type { EmbeddedPostgresPlacement };

export interface EmbeddedPostgresOptions {
  dataDir: string;
  /**
   * As root, may the data live elsewhere when the server's user cannot reach `dataDir`? For the
   * default directory only: one the user chose is used as given, or refused.
   */
  relocatable?: boolean;
  port: number;
  database: string;
  /** Extra `postgres -c` settings, e.g. `fsync=off` for throw-away test clusters. */
  settings?: Record<string, string>;
  /** The server's own output. */
  log?: (line: string) => void;
  /** Told once, before the server starts, where it runs from and keeps its data. */
  onPlaced?: (placement: EmbeddedPostgresPlacement) => void;
}

export interface EmbeddedPostgresHandle {
  url: string;
  /** Where the cluster lives (as root, possibly not the requested directory). */
  dataDir: string;
  stop(): Promise<void>;
}

const USER = 'postgres';
const PASSWORD = 'postgres';
const READY = 'database system is ready to accept connections';

/**
 * Starts a real PostgreSQL server from the binaries of the `embedded-postgres` package, keeping
 * its data in `dataDir` across restarts. We run the binaries ourselves rather than through the
 * library: as root they may have to run from a copy (see placeEmbeddedPostgres), which the
 * library cannot be told about, and its exit hooks would cut short our graceful drain.
 */
export async function startEmbeddedPostgres(
  options: EmbeddedPostgresOptions,
): Promise<EmbeddedPostgresHandle> {
  const placement = await placeEmbeddedPostgres({
    dataDir: options.dataDir,
    relocatable: options.relocatable ?? false,
  });
  options.onPlaced?.(placement);
  const log = options.log ?? (() => undefined);

  if (!existsSync(join(placement.dataDir, 'PG_VERSION'))) {
    await mkdir(placement.dataDir, { recursive: true });
    await initialise(placement, log);
  }
  const server = await startServer(placement, options, log);
  // If this process dies without stopping the server, at least ask it to stop (kill is synchronous).
  const stopOnExit = (): void => void server.kill('SIGINT');
  process.once('exit', stopOnExit);
  const stop = async (): Promise<void> => {
    process.removeListener('exit', stopOnExit);
    await stopServer(server);
  };

  try {
    await ensureDatabase(options.port, options.database);
  } catch (error) {
    await stop();
    throw error;
  }
  return {
    url: `postgres://${USER}:${PASSWORD}@127.0.0.1:${options.port}/${options.database}`,
    dataDir: placement.dataDir,
    stop,
  };
}

/** initdb, with the superuser's password in a file beside the data directory (its user can read it). */
async function initialise(
  placement: EmbeddedPostgresPlacement,
  log: (line: string) => void,
): Promise<void> {
  const { dataDir, user } = placement;
  const passwordFile = join(
    dirname(dataDir),
    `.${basename(dataDir)}.pw-${randomBytes(6).toString('hex')}`,
  );
  await writeFile(passwordFile, `${PASSWORD}\n`, { mode: 0o600, flag: 'wx' });
  try {
    if (user) await chown(passwordFile, user.uid, user.gid);
    const initdb = spawnBinary(placement, 'initdb', [
      `--pgdata=${dataDir}`,
      '--auth=password',
      `--username=${USER}`,
      `--pwfile=${passwordFile}`,
      '--encoding=UTF8',
      '--locale=C',
      '--lc-messages=C',
    ]);
    const output = collect(initdb, log);
    const outcome = await new Promise<string | undefined>((resolve) => {
      initdb.once('error', (error) => resolve(error.message));
      initdb.once('exit', (code) => resolve(code === 0 ? undefined : lastLine(output())));
    });
    if (outcome !== undefined) {
      throw new EmbeddedPostgresError(`initdb failed for ${dataDir}: ${outcome}`);
    }
  } finally {
    await rm(passwordFile, { force: true });
  }
}

/** Resolves once the server accepts connections; rejects if it ends (or cannot start) first. */
function startServer(
  placement: EmbeddedPostgresPlacement,
  options: EmbeddedPostgresOptions,
  log: (line: string) => void,
): Promise<ChildProcess> {
  const flags = ['-c', 'listen_addresses=127.0.0.1', '-c', 'unix_socket_directories='];
  for (const [key, value] of Object.entries(options.settings ?? {})) {
    flags.push('-c', `${key}=${value}`);
  }
  const server = spawnBinary(placement, 'postgres', [
    '-D',
    placement.dataDir,
    '-p',
    String(options.port),
    ...flags,
  ]);
  const output = collect(server, log);
  const failed = (detail: string): EmbeddedPostgresError =>
    new EmbeddedPostgresError(
      `The embedded PostgreSQL did not start on port ${options.port} (data in ` +
        `${placement.dataDir}): ${detail}. Is the port taken, or another server using that ` +
        'data directory? Set EMBEDDED_PG_PORT or DATABASE_URL.',
    );
  return new Promise((resolve, reject) => {
    server.stderr?.on('data', () => {
      if (output().includes(READY)) resolve(server);
    });
    server.once('error', (error) => reject(failed(error.message)));
    server.once('exit', (code, signal) =>
      reject(failed(lastLine(output()) ?? `exited with ${code ?? signal}`)),
    );
  });
}

/** Runs as the placement's user (if any), from `/`: the checkout may be out of that user's reach. */
function spawnBinary(placement: EmbeddedPostgresPlacement, name: string, args: string[]) {
  const ids = placement.user ? { uid: placement.user.uid, gid: placement.user.gid } : {};
  return spawn(join(placement.nativeDir, 'bin', name), args, {
    ...ids,
    cwd: '/',
    env: { LC_MESSAGES: 'C' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
}

/** Passes every line to `log` and keeps the recent output (for error messages). */
function collect(child: ChildProcess, log: (line: string) => void): () => string {
  let recent = '';
  const onData = (chunk: Buffer): void => {
    const text = chunk.toString('utf8');
    log(text.trimEnd());
    recent = (recent + text).slice(-8192);
  };
  child.stdout?.on('data', onData);
  child.stderr?.on('data', onData);
  return () => recent;
}

function lastLine(output: string): string | undefined {
  return output.trim().split('\n').pop() || undefined;
}

/** SIGINT is PostgreSQL's fast shutdown: sessions are cut, the cluster is left consistent. */
function stopServer(server: ChildProcess): Promise<void> {
  if (server.exitCode !== null || server.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    server.once('exit', () => resolve());
    server.kill('SIGINT');
  });
}

async function ensureDatabase(port: number, database: string): Promise<void> {
  const client = new Client({
    connectionString: `postgres://${USER}:${PASSWORD}@127.0.0.1:${port}/postgres`,
  });
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
