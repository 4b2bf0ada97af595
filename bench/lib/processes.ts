import { ChildProcess, spawn } from 'node:child_process';
import { createWriteStream, readFileSync } from 'node:fs';
import { connect } from 'node:net';
import { join } from 'node:path';

/** A child process the bench started and must stop, whatever happens. */
export interface ManagedProcess {
  readonly name: string;
  readonly pid: number;
  readonly logFile: string;
  /** Resolves with the exit code (or signal name) once the process is gone. */
  readonly exited: Promise<string>;
  hasExited(): boolean;
  /** The last lines it printed, for error messages. */
  tail(): string;
}

interface Entry {
  managed: ManagedProcess;
  child: ChildProcess;
}

const running = new Map<number, Entry>();
const TAIL_LINES = 30;

export const sleep = (ms: number): Promise<void> =>
  new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Starts a process whose output goes to `logDir/<name>.log` (and a short in-memory tail), never to
 * the terminal: the bench's own output stays readable.
 */
export function startProcess(options: {
  name: string;
  command: string;
  args: string[];
  env: NodeJS.ProcessEnv;
  cwd: string;
  logDir: string;
}): ManagedProcess {
  const logFile = join(options.logDir, `${options.name}.log`);
  const log = createWriteStream(logFile, { flags: 'w' });
  const lines: string[] = [];
  const child = spawn(options.command, options.args, {
    cwd: options.cwd,
    env: options.env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  if (child.pid === undefined) {
    throw new Error(`could not start ${options.name} (${options.command})`);
  }
  const pid = child.pid;
  const record = (chunk: Buffer): void => {
    log.write(chunk);
    lines.push(...chunk.toString('utf8').split('\n').filter(Boolean));
    if (lines.length > TAIL_LINES) lines.splice(0, lines.length - TAIL_LINES);
  };
  child.stdout?.on('data', record);
  child.stderr?.on('data', record);

  let done = false;
  const exited = new Promise<string>((resolve) => {
    child.once('exit', (code, signal) => {
      done = true;
      running.delete(pid);
      log.end();
      resolve(signal ?? String(code));
    });
    child.once('error', (error) => {
      done = true;
      running.delete(pid);
      lines.push(`spawn error: ${error.message}`);
      log.end();
      resolve('spawn-error');
    });
  });

  const managed: ManagedProcess = {
    name: options.name,
    pid,
    logFile,
    exited,
    hasExited: () => done,
    tail: () => lines.join('\n'),
  };
  running.set(pid, { managed, child });
  return managed;
}

/** Asks the process to stop, then kills it if it is still there after `graceMs`. */
export async function stopProcess(managed: ManagedProcess, graceMs = 10_000): Promise<void> {
  const entry = running.get(managed.pid);
  if (!entry || managed.hasExited()) return;
  // SIGTERM: the service drains and exits 0, nginx and the references shut down fast.
  entry.child.kill('SIGTERM');
  const outcome = await Promise.race([managed.exited, sleep(graceMs).then(() => 'timeout')]);
  if (outcome === 'timeout' && !managed.hasExited()) {
    entry.child.kill('SIGKILL');
    await managed.exited;
  }
}

export async function stopAll(): Promise<void> {
  await Promise.all([...running.values()].map((entry) => stopProcess(entry.managed)));
}

/** Last resort on `exit`, where nothing asynchronous runs any more. */
export function killAllNow(): void {
  for (const entry of running.values()) entry.child.kill('SIGKILL');
}

/** Resident memory of a live process, from /proc (Linux only; `null` elsewhere or once gone). */
export function rssMb(pid: number): number | null {
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    const match = /^VmRSS:\s+(\d+)\s+kB/m.exec(status);
    return match ? Math.round((Number(match[1]) / 1024) * 10) / 10 : null;
  } catch {
    return null;
  }
}

/**
 * Fails when something already listens on the port: a leftover from an earlier run would
 * otherwise answer our readiness probe and be measured instead of the process we start.
 */
export async function assertPortFree(port: number): Promise<void> {
  const inUse = await new Promise<boolean>((resolve) => {
    const socket = connect({ host: '127.0.0.1', port });
    socket.setTimeout(1000);
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('timeout', () => {
      socket.destroy();
      resolve(false);
    });
    socket.once('error', () => resolve(false));
  });
  if (inUse) {
    throw new Error(
      `port ${port} on 127.0.0.1 is already in use (a leftover from an earlier run?); free it first`,
    );
  }
}

/** Waits until the process answers HTTP at all (any status), or fails with its last output. */
export async function waitForHttp(
  managed: ManagedProcess,
  url: string,
  timeoutMs = 60_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (managed.hasExited()) {
      throw new Error(
        `${managed.name} exited before answering (${await managed.exited}); ` +
          `log ${managed.logFile}:\n${managed.tail()}`,
      );
    }
    try {
      const response = await fetch(url, { signal: AbortSignal.timeout(1000) });
      await response.arrayBuffer();
      return;
    } catch {
      await sleep(200);
    }
  }
  throw new Error(
    `${managed.name} did not answer ${url} within ${timeoutMs / 1000} s; ` +
      `log ${managed.logFile}:\n${managed.tail()}`,
  );
}

/**
 * Whatever happens (Ctrl-C, SIGTERM, the deadline), `cleanUp` stops everything the run started
 * before the process exits; children still alive at `exit` are killed outright. Returns the
 * deadline timer, to clear once the run ended normally.
 */
export function guardRun(options: {
  label: string;
  timeoutVariable: string;
  timeoutS: number;
  cleanUp: () => Promise<void>;
}): NodeJS.Timeout {
  const { label, timeoutVariable, timeoutS, cleanUp } = options;
  const abort = (message: string, code: number): void => {
    console.error(`\n[${label}] ${message}`);
    void cleanUp().finally(() => process.exit(code));
  };
  process.once('SIGINT', () => abort(`interrupted: stopping everything the ${label} started`, 130));
  process.once('SIGTERM', () => abort(`terminated: stopping everything the ${label} started`, 143));
  process.on('exit', killAllNow);
  return setTimeout(
    () => abort(`the ${label} exceeded ${timeoutVariable}=${timeoutS} s and was aborted`, 2),
    timeoutS * 1000,
  );
}
