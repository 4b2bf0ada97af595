/**
 * CPU time from /proc/<pid>/stat (Linux): utime + stime in clock ticks (`getconf CLK_TCK`),
 * returned in µs, so that a window's CPU can be divided by the requests answered in it.
 */
import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';

const CLK_TCK = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
const us = (ticks: number): number => (ticks / CLK_TCK) * 1e6;

/** ppid, utime + stime, cutime + cstime; fields counted after the command name, which may hold spaces. */
function stat(pid: number | string): [number, number, number] | null {
  try {
    const text = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = text
      .slice(text.lastIndexOf(')') + 2)
      .split(' ')
      .map(Number);
    return [f[1], f[11] + f[12], f[13] + f[14]];
  } catch {
    return null;
  }
}

export const ppidOf = (pid: number): number | null => stat(pid)?.[0] ?? null;

/** CPU µs of these processes; null when one of them is gone. */
export function processCpuUs(pids: number[]): number | null {
  const stats = pids.map(stat);
  return stats.every(Boolean) ? us(stats.reduce((sum, s) => sum + s![1], 0)) : null;
}

/**
 * CPU µs of a parent and its direct children (PostgreSQL's postmaster and its backends, nginx's
 * master and workers). A child that exits moves its time into the parent's cutime + cstime, which
 * is counted too, so the sum stays continuous whether children persist or not.
 */
export function treeCpuUs(root: number): number | null {
  const parent = stat(root);
  if (!parent) return null;
  const children = readdirSync('/proc')
    .filter((entry) => /^\d+$/.test(entry))
    .map(stat);
  return us(
    children.reduce((sum, s) => (s?.[0] === root ? sum + s[1] : sum), parent[1] + parent[2]),
  );
}

/** µs of CPU per answered request over a window; null when a reading failed or none answered. */
export const usPerRequest = (before: number | null, after: number | null, n: number) =>
  before === null || after === null || n <= 0 ? null : (after - before) / n;

/** The first process whose command name is `name` (e.g. redis-server); null if none. */
export function pidOf(name: string): number | null {
  const comm = (pid: string) => readFileSync(`/proc/${pid}/comm`, 'utf8').trim();
  const pids = readdirSync('/proc').filter((entry) => /^\d+$/.test(entry));
  const found = pids.find((pid) => {
    try {
      return comm(pid) === name;
    } catch {
      return false;
    }
  });
  return found ? Number(found) : null;
}
