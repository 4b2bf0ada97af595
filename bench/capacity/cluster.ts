/**
 * The PostgreSQL the capacity runs measure (bench/capacity/run.ts). By default a private cluster:
 * `initdb` into a temporary directory with the local server's own binaries and its values of
 * COPIED, on 127.0.0.1:PRIVATE_PORT, so that the CPU of its processes and the WAL it writes are
 * this runner's alone, on a machine other sessions share (their CREATE DATABASE alone writes
 * megabytes of WAL). With CAPACITY_SERVER=local, the local server itself (CAPACITY_ADMIN_URL).
 */
import { execFileSync } from 'node:child_process';
import { chownSync, mkdtempSync, readFileSync, readlinkSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { Client } from 'pg';

const LOCAL_URL = process.env.CAPACITY_ADMIN_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
const PRIVATE_PORT = 25439;
const COPIED = (
  'synchronous_commit wal_level shared_buffers fsync wal_sync_method full_page_writes ' +
  'wal_compression wal_buffers commit_delay commit_siblings max_wal_size min_wal_size ' +
  'checkpoint_timeout checkpoint_completion_target max_connections'
).split(' ');

export interface Server {
  what: string;
  adminUrl: string;
  postmaster: number;
  stop(): void;
}

const postmasterOf = (dataDir: string) =>
  Number(readFileSync(join(dataDir, 'postmaster.pid'), 'utf8').split('\n')[0]);

async function query<R extends Record<string, string>>(
  url: string,
  sql: string,
  values: unknown[],
) {
  const client = new Client({ connectionString: url });
  await client.connect();
  try {
    return (await client.query<R>(sql, values)).rows;
  } finally {
    await client.end();
  }
}

export async function startServer(): Promise<Server> {
  const [local] = await query<{ dir: string; settings: string }>(
    LOCAL_URL,
    `SELECT current_setting('data_directory') AS dir,
            string_agg(format('-c %s=%s', name, current_setting(name)), ' ') AS settings
       FROM unnest($1::text[]) AS name`,
    [COPIED],
  );
  if (process.env.CAPACITY_SERVER === 'local') {
    const postmaster = postmasterOf(local.dir);
    return { what: `the local server (${LOCAL_URL})`, adminUrl: LOCAL_URL, postmaster, stop() {} };
  }
  const bin = binDirOf(local.dir);
  const dir = mkdtempSync(join(tmpdir(), 'capacity-pg-'));
  const data = join(dir, 'data');
  const root = process.getuid?.() === 0;
  if (root) chownSync(dir, idOf('-u'), idOf('-g'));
  const pg = (tool: string, args: string[]) =>
    execFileSync(
      root ? 'runuser' : join(bin, tool),
      root ? ['-u', 'postgres', '--', join(bin, tool), ...args] : args,
      { stdio: 'pipe', timeout: 60_000 },
    );
  const stop = () => {
    try {
      pg('pg_ctl', ['-D', data, '-m', 'fast', '-w', 'stop']);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  };
  try {
    pg('initdb', ['-D', data, '-A', 'trust', '-U', 'postgres', '--no-sync']);
    const options = `${local.settings} -c listen_addresses=127.0.0.1 -p ${PRIVATE_PORT} -k ${dir}`;
    pg('pg_ctl', ['-D', data, '-w', '-l', join(dir, 'log'), '-o', options, 'start']);
  } catch (error) {
    rmSync(dir, { recursive: true, force: true });
    throw error;
  }
  return {
    what: `a private cluster (initdb, ${bin}, 127.0.0.1:${PRIVATE_PORT}) with the local server's ${COPIED.join(', ')}`,
    adminUrl: `postgres://postgres@127.0.0.1:${PRIVATE_PORT}/postgres`,
    postmaster: postmasterOf(data),
    stop,
  };
}

/** The `postgres` system user's uid (`-u`) or gid (`-g`): PostgreSQL refuses to run as root. */
const idOf = (flag: string) => Number(execFileSync('id', [flag, 'postgres'], { encoding: 'utf8' }));

/** The local server's own binaries (its postmaster's executable), else pg_config's. */
function binDirOf(dataDir: string): string {
  try {
    return dirname(readlinkSync(`/proc/${postmasterOf(dataDir)}/exe`));
  } catch {
    return execFileSync('pg_config', ['--bindir'], { encoding: 'utf8' }).trim();
  }
}
