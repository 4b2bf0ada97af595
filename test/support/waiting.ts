/**
 * How the suite waits: for states and events, never for durations. A machine busy with other
 * work only makes a wait longer; the deadlines here are far above what any state change needs,
 * so reaching one means the state never came (a bug), not that the machine was slow.
 */

/**
 * Database timeouts for test instances: far above anything a loaded machine needs, so that no
 * test depends on a 2 s lock_timeout or a 3 s connect/acquire timeout racing real work. A test
 * about a timeout sets its own (small) value, and only there is the timeout the point.
 */
export const GENEROUS_DATABASE_TIMEOUTS: Readonly<Record<string, string>> = {
  DB_STATEMENT_TIMEOUT_MS: '120000',
  DB_LOCK_TIMEOUT_MS: '120000',
  DB_CONNECT_TIMEOUT_MS: '120000',
  DB_ACQUIRE_TIMEOUT_MS: '120000',
};

/** Deadline of every poll below unless told otherwise: generous, and below the test timeout. */
export const STATE_DEADLINE_MS = 120_000;

const pause = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/**
 * Polls `probe` until `done(value)` holds and returns that value; fails with the last value seen
 * once the deadline passes. The pause between polls only spares the CPU: no outcome depends on it.
 */
export async function waitFor<T>(
  what: string,
  probe: () => Promise<T>,
  done: (value: T) => boolean,
  { deadlineMs = STATE_DEADLINE_MS, everyMs = 20 } = {},
): Promise<T> {
  const deadline = Date.now() + deadlineMs;
  for (;;) {
    const value = await probe();
    if (done(value)) return value;
    if (Date.now() > deadline) {
      throw new Error(
        `gave up waiting for ${what} after ${deadlineMs} ms; last seen: ${describe(value)}`,
      );
    }
    await pause(everyMs);
  }
}

function describe(value: unknown): string {
  try {
    return JSON.stringify(value)?.slice(0, 500) ?? String(value);
  } catch {
    return String(value);
  }
}
