/**
 * Summarises a V8 CPU profile (`node --cpu-prof`): self time per function and per package (or
 * file of the service), over a window of the run, as markdown tables (bench/results/profiles.md).
 *
 *   npx ts-node --transpile-only bench/profile-summary.ts <file.cpuprofile> [skipS] [durationS] [top]
 *
 * `skipS` drops the first seconds (start-up, warm-up), `durationS` keeps that many after them.
 */
import { readFileSync } from 'node:fs';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}

interface CpuProfile {
  nodes: ProfileNode[];
  startTime: number;
  samples: number[];
  timeDeltas: number[];
}

/** Self time (µs) per node id, of the samples inside [from, to] (µs since the profile began). */
function selfTimes(profile: CpuProfile, fromUs: number, toUs: number): Map<number, number> {
  const self = new Map<number, number>();
  let t = 0;
  for (let i = 0; i < profile.samples.length; i++) {
    t += profile.timeDeltas[i];
    if (t < fromUs || t > toUs) continue;
    const id = profile.samples[i];
    self.set(id, (self.get(id) ?? 0) + (profile.timeDeltas[i + 1] ?? 0));
  }
  return self;
}

/** node:… modules, npm packages by name, the service's own files by their path under dist/. */
export function packageOf(url: string): string {
  if (url === '') return '(native)';
  if (url.startsWith('node:')) return url.split('/').slice(0, 2).join('/');
  const pkg = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url);
  if (pkg) return pkg[1];
  return /\/dist\/(.*)$/.exec(url)?.[1] ?? url.split('/').slice(-2).join('/');
}

function functionOf({ functionName, url, lineNumber }: ProfileNode['callFrame']): string {
  const name = functionName || '(anonymous)';
  if (url === '') return name;
  const inPackage = url.includes('node_modules/');
  const file = inPackage ? `${packageOf(url)}:${url.split('/').pop()}` : packageOf(url);
  return `${name} ${file}:${lineNumber + 1}`;
}

function table(title: string, rows: Map<string, number>, busyUs: number, top: number): string {
  const lines = [`| self % | self ms | ${title} |`, '| ---: | ---: | --- |'];
  for (const [key, us] of [...rows].sort((a, b) => b[1] - a[1]).slice(0, top)) {
    lines.push(`| ${((us / busyUs) * 100).toFixed(1)} | ${(us / 1000).toFixed(0)} | ${key} |`);
  }
  return lines.join('\n');
}

export function summarise(profile: CpuProfile, skipS = 0, durationS = Infinity, top = 25): string {
  const self = selfTimes(profile, skipS * 1e6, (skipS + durationS) * 1e6);
  const byId = new Map(profile.nodes.map((node) => [node.id, node]));
  const functions = new Map<string, number>();
  const packages = new Map<string, number>();
  let busyUs = 0;
  for (const [id, us] of self) {
    const frame = byId.get(id)!.callFrame;
    if (frame.functionName === '(idle)') continue;
    busyUs += us;
    const fn = functionOf(frame);
    functions.set(fn, (functions.get(fn) ?? 0) + us);
    const pkg =
      frame.url === ''
        ? frame.functionName.startsWith('(')
          ? fn
          : '(native)'
        : packageOf(frame.url);
    packages.set(pkg, (packages.get(pkg) ?? 0) + us);
  }
  return [
    `busy (not idle): ${(busyUs / 1000).toFixed(0)} ms`,
    table('function', functions, busyUs, top),
    table('package / file', packages, busyUs, top),
  ].join('\n\n');
}

if (require.main === module) {
  const [file, skipS = '0', durationS = 'Infinity', top = '25'] = process.argv.slice(2);
  if (!file) {
    console.error('usage: profile-summary.ts <file.cpuprofile> [skipS] [durationS] [top]');
    process.exit(2);
  }
  const profile = JSON.parse(readFileSync(file, 'utf8')) as CpuProfile;
  console.log(summarise(profile, Number(skipS), Number(durationS), Number(top)));
}
