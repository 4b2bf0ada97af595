import { ChildProcess, spawn } from 'node:child_process';
import { chmod, mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { findFreePort } from './ports';
import { GENEROUS_DATABASE_TIMEOUTS } from './waiting';

const ROOT = join(__dirname, '..', '..');

export interface ServerProcess {
  child: ChildProcess;
  output(): string;
  /** Resolves with the exit code (or the signal name) once the process has ended. */
  exited: Promise<number | string>;
}

/**
 * Runs src/main.ts in a real Node process, as `npm start` would (compiled on the fly), with the
 * test instances' generous database timeouts unless `env` sets its own; or, with `options`, other
 * arguments (e.g. `dist/main.js`) in another directory.
 */
export function spawnServer(
  env: Record<string, string>,
  options: { cwd?: string; args?: string[] } = {},
): ServerProcess {
  const args = options.args ?? ['-r', 'ts-node/register/transpile-only', 'src/main.ts'];
  const child = spawn(process.execPath, args, {
    cwd: options.cwd ?? ROOT,
    env: {
      PATH: process.env.PATH ?? '',
      HOME: process.env.HOME ?? '',
      ...GENEROUS_DATABASE_TIMEOUTS,
      ...env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
  const exited = new Promise<number | string>((resolve) =>
    child.once('exit', (code, signal) => resolve(code ?? signal ?? 'unknown')),
  );
  return { child, output: () => output, exited };
}

/** Resolves once the server answers HTTP on `baseUrl`, or rejects if the process ends first. */
export async function waitUntilServing(server: ServerProcess, baseUrl: string): Promise<void> {
  let ended = false;
  void server.exited.then(() => (ended = true));
  for (;;) {
    if (ended) throw new Error(`server exited before serving:\n${server.output()}`);
    try {
      await fetch(`${baseUrl}/health-probe-404`);
      return;
    } catch {
      // Not listening yet: poll again shortly (bounded by the test timeout).
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }
}

/**
 * The environment of a real server process with its own embedded PostgreSQL (no DATABASE_URL),
 * in a fresh temporary directory the caller removes; as root, the server runs PostgreSQL as
 * `postgres`, which must reach that directory.
 */
export async function embeddedServerEnv(prefix: string) {
  const dataDir = await mkdtemp(join(tmpdir(), prefix));
  await chmod(dataDir, 0o755);
  const env = {
    PORT: String(await findFreePort()),
    HOST: '127.0.0.1',
    EMBEDDED_PG_PORT: String(await findFreePort()),
    EMBEDDED_PG_DATA_DIR: join(dataDir, 'postgres'),
    LOG_LEVEL: 'warn',
  };
  return { dataDir, env, baseUrl: `http://127.0.0.1:${env.PORT}` };
}
