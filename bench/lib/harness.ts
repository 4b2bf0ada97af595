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
/** Answers 404 from every server here: any HTTP answer means "up". */
const PROBE_PATH = '/ticket_options/00000000-0000-4000-8000-000000000000';

export interface Proc {
  readonly name: string;
  readonly pid: number;
  readonly logFile: string;
  /** Resolves with the exit code (or signal) once the process is gone. */
  readonly exited: Promise<string>;
  hasExited(): boolean;
  /** The last lines it printed, for error messages. */
  tail(): string;
}

export interface Server {
  proc: Proc;
  url: string;
  port: number;
}

export const sleep = (ms: number): Promise<void> =>
  new Promise((r) => setTimeout(r, Math.max(0, ms)));

/** An integer setting from the environment, within bounds; a bad value stops the run at once. */
export function envInt(name: string, fallback: number, min: number, max: number): number {
  const raw = process.env[name]?.trim();
  const value = raw ? Number(raw) : fallback;
  if (!Number.isInteger(value) || value < min || value > max) {
    throw new Error(`${name} must be an integer between ${min} and ${max}, got "${raw}"`);
  }
  return value;
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

  /** Output goes to `logDir/<name>.log` and a short tail in memory, never to the terminal. */
  spawn(name: string, command: string, args: string[], env: NodeJS.ProcessEnv, cwd?: string): Proc {
    const logFile = join(this.options.logDir, `${name}.log`);
    const log = createWriteStream(logFile);
    const child = spawn(command, args, { cwd: cwd ?? this.options.root, env, stdio: 'pipe' });
    if (child.pid === undefined) throw new Error(`could not start ${name} (${command})`);
    const [pid, lines] = [child.pid, [] as string[]];
    const record = (chunk: Buffer): void => {
      log.write(chunk);
      lines.push(...chunk.toString('utf8').split('\n').filter(Boolean));
      lines.splice(0, Math.max(0, lines.length - 30));
    };
    child.stdout.on('data', record);
    child.stderr.on('data', record);
    let done = false;
    const exited = new Promise<string>((resolve) => {
      const end = (outcome: string): void => {
        done = true;
        this.children.delete(pid);
        log.end();
        resolve(outcome);
      };
      child.once('exit', (code, signal) => end(signal ?? String(code)));
      child.once('error', (error) => end(`spawn error: ${error.message}`));
    });
    const proc = {
      name,
      pid,
      logFile,
      exited,
      hasExited: () => done,
      tail: () => lines.join('\n'),
    };
    this.children.set(pid, { proc, child });
    return proc;
  }

  /** A Node.js server on a fixed loopback port, once it answers HTTP. */
  async node(name: string, port: number, script: string, env: NodeJS.ProcessEnv): Promise<Server> {
    await assertPortFree(port);
    const vars = { ...process.env, ...env, PORT: String(port), HOST };
    const proc = this.spawn(name, process.execPath, [script], vars);
    const url = `http://${HOST}:${port}`;
    await waitForHttp(proc, url);
    return { proc, url, port };
  }

  /** SIGTERM (the service drains and exits 0), SIGKILL after `graceMs`. */
  async stop(proc: Proc, graceMs = 10_000): Promise<void> {
    const child = this.children.get(proc.pid)?.child;
    if (!child || proc.hasExited()) return;
    child.kill('SIGTERM');
    if ((await Promise.race([proc.exited, sleep(graceMs).then(() => 'timeout')])) === 'timeout') {
      child.kill('SIGKILL');
      await proc.exited;
    }
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
    const failed = (error: unknown) => {
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
    throw new Error(`port ${port} on ${HOST} is in use (a leftover of an earlier run?)`);
}

/** Waits until the process answers HTTP at all (any status), or fails with its last output. */
export async function waitForHttp(proc: Proc, url: string, timeoutMs = 60_000): Promise<void> {
  const failure = (what: string) =>
    new Error(`${proc.name} ${what}; ${proc.logFile}:\n${proc.tail()}`);
  for (const deadline = Date.now() + timeoutMs; Date.now() < deadline; await sleep(200)) {
    if (proc.hasExited()) throw failure(`exited before answering (${await proc.exited})`);
    const answered = await fetch(`${url}${PROBE_PATH}`, { signal: AbortSignal.timeout(1000) })
      .then((response) => response.text())
      .then(
        () => true,
        () => false,
      );
    if (answered) return;
  }
  throw failure(`did not answer ${url} within ${timeoutMs / 1000} s`);
}
