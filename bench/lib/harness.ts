/**
 * The one harness of the bench and the soak: starts processes (service instances, references,
 * nginx), waits for them to answer, and stops them and everything else registered with it
 * (databases, pools, temp dirs) on every way out: the end, an error, Ctrl-C, SIGTERM, a deadline.
 */
import { ChildProcess, spawn } from 'node:child_process';
import { createWriteStream, mkdirSync, readFileSync } from 'node:fs';
import { connect } from 'node:net';
import { join } from 'node:path';

export const HOST = '127.0.0.1';

/** A started process; `exited` resolves with its exit code (or signal) once it is gone. */
export type Proc = ReturnType<Harness['spawn']>;

export interface Server {
  proc: Proc;
  url: string;
  port: number;
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, Math.max(0, ms)));

/** An integer setting from the environment, within bounds; a bad value stops the run at once. */
export function envInt(name: string, fallback: number, min: number, max: number): number {
  const raw = process.env[name]?.trim();
  const value = raw ? Number(raw) : fallback;
  if (Number.isInteger(value) && value >= min && value <= max) return value;
  throw new Error(`${name} must be an integer between ${min} and ${max}, got "${raw}"`);
}

/** Resident memory of a live process in MB, from /proc; null once it is gone. */
export function rssMb(pid: number): number | null {
  try {
    const match = /^VmRSS:\s+(\d+)\s+kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return match ? Math.round(Number(match[1]) / 102.4) / 10 : null;
  } catch {
    return null;
  }
}

export class Harness {
  readonly startedAt = Date.now();
  private readonly children = new Map<number, { proc: Proc; child: ChildProcess }>();
  private readonly cleanups: Array<() => unknown> = [];
  private cleaning: Promise<void> | null = null;

  constructor(readonly options: { label: string; root: string; logDir: string; timeoutS: number }) {
    mkdirSync(options.logDir, { recursive: true });
  }

  say = (line: string): void => {
    const elapsed = ((Date.now() - this.startedAt) / 1000).toFixed(0).padStart(4);
    console.log(`[${this.options.label} ${elapsed} s] ${line}`);
  };

  /** Runs at clean-up, last registered first, once every process is stopped. */
  onCleanup(step: () => unknown): void {
    this.cleanups.push(step);
  }

  /** Output goes to `logDir/<name>.log`, never to the terminal. */
  spawn(name: string, command: string, args: string[], env: NodeJS.ProcessEnv, cwd?: string) {
    const logFile = join(this.options.logDir, `${name}.log`);
    const log = createWriteStream(logFile);
    const child = spawn(command, args, { cwd: cwd ?? this.options.root, env, stdio: 'pipe' });
    if (child.pid === undefined) throw new Error(`could not start ${name} (${command})`);
    const pid = child.pid;
    child.stdout.pipe(log, { end: false });
    child.stderr.pipe(log, { end: false });
    let done = false;
    const exited = new Promise<string>((resolve) => {
      const end = (outcome: string): void => {
        done = true;
        this.children.delete(pid);
        log.end(() => resolve(outcome));
      };
      child.once('exit', (code, signal) => end(signal ?? String(code)));
      child.once('error', (error) => end(`spawn error: ${error.message}`));
    });
    const proc = { name, pid, logFile, exited, hasExited: () => done };
    this.children.set(pid, { proc, child });
    return proc;
  }

  /** A Node.js server on a fixed loopback port, once it answers HTTP. */
  async node(name: string, port: number, script: string, env: NodeJS.ProcessEnv): Promise<Server> {
    await assertPortFree(port);
    const vars = { ...process.env, ...env, PORT: String(port), HOST };
    const proc = this.spawn(name, process.execPath, [script], vars);
    return { proc, url: await waitForHttp(proc, `http://${HOST}:${port}`), port };
  }

  /** SIGTERM (the service drains and exits 0), SIGKILL after `graceMs`. */
  async stop(proc: Proc, graceMs = 10_000): Promise<void> {
    const child = this.children.get(proc.pid)?.child;
    if (!child || proc.hasExited()) return;
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
    await proc.exited.finally(() => clearTimeout(timer));
  }

  private cleanUp(): Promise<void> {
    this.cleaning ??= (async () => {
      await Promise.all([...this.children.values()].map(({ proc }) => this.stop(proc)));
      for (const step of this.cleanups.reverse()) {
        await Promise.resolve()
          .then(step)
          .catch((error: unknown) => console.error('clean-up step failed:', error));
      }
    })();
    return this.cleaning;
  }

  /** Runs `main` under signals and a deadline; whatever happens, everything is cleaned up. */
  run(timeoutVariable: string, main: () => Promise<boolean>): void {
    const { label, timeoutS } = this.options;
    const abort = (why: string, code: number): void => {
      console.error(`\n[${label}] ${why}: stopping everything it started`);
      void this.cleanUp().finally(() => process.exit(code));
    };
    process.once('SIGINT', () => abort('interrupted', 130));
    process.once('SIGTERM', () => abort('terminated', 143));
    process.once('uncaughtException', (error) => abort(`crashed: ${error.stack ?? error}`, 1));
    // The last resort, where nothing asynchronous runs any more.
    process.on('exit', () => this.children.forEach(({ child }) => child.kill('SIGKILL')));
    const late = () => abort(`exceeded ${timeoutVariable}=${timeoutS} s and was aborted`, 2);
    const deadline = setTimeout(late, timeoutS * 1000);
    const failed = (error: unknown): boolean => {
      console.error(`[${label}] failed:`, error instanceof Error ? error.message : error);
      return false;
    };
    void main()
      .catch(failed)
      .then(async (ok) => {
        clearTimeout(deadline);
        await this.cleanUp();
        this.say(`done; every process the ${label} started is stopped`);
        process.exitCode = ok ? 0 : 1;
      });
  }
}

/** Whether something accepts connections on host:port. */
export const portOpen = (port: number, host = HOST): Promise<boolean> =>
  new Promise((resolve) => {
    const socket = connect({ host, port });
    const done = (open: boolean): void => {
      socket.destroy();
      resolve(open);
    };
    socket.setTimeout(1000, () => done(false));
    socket.once('connect', () => done(true));
    socket.once('error', () => done(false));
  });

/** A leftover on the port would answer our probe and be measured instead of what we start. */
export async function assertPortFree(port: number): Promise<void> {
  if (await portOpen(port))
    throw new Error(`port ${port} is in use (a leftover of an earlier run?)`);
}

/** Waits until the process answers HTTP at all (any status: a 404 means "up"). */
export async function waitForHttp(proc: Proc, url: string, timeoutMs = 60_000): Promise<string> {
  for (const deadline = Date.now() + timeoutMs; Date.now() < deadline; await sleep(200)) {
    if (proc.hasExited())
      throw new Error(`${proc.name} exited (${await proc.exited}); see ${proc.logFile}`);
    const probe = fetch(`${url}/ticket_options/00000000-0000-4000-8000-000000000000`, {
      signal: AbortSignal.timeout(1000),
    });
    if (
      await probe
        .then((r) => r.text())
        .then(
          () => true,
          () => false,
        )
    )
      return url;
  }
  throw new Error(
    `${proc.name} did not answer ${url} within ${timeoutMs / 1000} s; see ${proc.logFile}`,
  );
}
