/**
 * Summarises an on-CPU profile taken with Linux `perf` (bench/results/profiles.md, "On-CPU"):
 * each sample is charged to its innermost JavaScript frame, so the V8 builtins, native code and
 * kernel time a function calls count as that function's; samples with no JavaScript frame at all
 * are told apart by what they ran (GC, Node's HTTP parser, the event loop). Prints markdown tables
 * by package (or file of the service) and by function, in % of samples and, given the process's
 * CPU µs per request, in µs per request.
 *
 *   node --perf-basic-prof dist/main.js          # JIT symbols in /tmp/perf-<pid>.map
 *   perf record -F 999 -g -p <pid> -o perf.data -- sleep 5
 *   perf script -i perf.data > perf.txt
 *   npx ts-node --transpile-only bench/perf-summary.ts perf.txt [µs per request] [top]
 *
 * Why not `node --cpu-prof` alone: V8's sampler measures wall time of the main thread, so time
 * the thread spends preempted inside a syscall is charged to that syscall (on this 2-core machine
 * pg's `writev` showed as 17.7% of a purchase profile there, 1.4% on CPU here).
 */
import { readFileSync } from 'node:fs';
import { packageOf } from './profile-summary';

/** One sample's frames, innermost first, each as `perf script` prints it (address stripped). */
export function parsePerfScript(text: string): string[][] {
  const samples: string[][] = [];
  let current: string[] | null = null;
  for (const line of text.split('\n')) {
    if (line.trim() === '') continue;
    if (!/^\s/.test(line)) {
      current = [];
      samples.push(current);
    } else if (current) {
      current.push(
        line
          .trim()
          .replace(/^[0-9a-f]+ /, '')
          .replace(/\+0x[0-9a-f]+/, '')
          .replace(/\s*\([^()]*\)$/, ''),
      );
    }
  }
  return samples;
}

/** `JS:*'name /path/file.js:12:3` → `name /path/file.js:12:3` (perf-basic-prof's tier marks dropped). */
function jsFrame(frame: string): string | null {
  const match = /^JS:[*~+^']*\s*(.*)$/.exec(frame);
  return match ? match[1].replace(/^file:\/\//, '') : null;
}

function nativeKind(frames: string[]): string {
  if (frames.some((f) => /Scaveng|MinorGC|MarkCompact|Sweep|ConcurrentMarking|Heap::/.test(f))) {
    return '(garbage collector)';
  }
  if (frames.some((f) => f.includes('llhttp'))) return '(HTTP parser, native)';
  if (frames.some((f) => /compiler::|Maglev|Turbofan|Compile/.test(f))) return '(JIT compiler)';
  if (frames.some((f) => f.startsWith('uv_') || f.startsWith('uv__')))
    return '(event loop, native)';
  return '(other native)';
}

/** The package of a JavaScript frame: an npm package, a node: module, or a file of the service. */
function packageOfFrame(frame: string): string {
  const url = /(?:^|\s)(\S+):\d+:\d+$/.exec(frame)?.[1] ?? '';
  return url === '' ? '(JavaScript, no file)' : packageOf(url);
}

export interface PerfSummary {
  samples: number;
  byPackage: Map<string, number>;
  byFunction: Map<string, number>;
}

export function summarisePerf(samples: string[][]): PerfSummary {
  const byPackage = new Map<string, number>();
  const byFunction = new Map<string, number>();
  const add = (map: Map<string, number>, key: string) => map.set(key, (map.get(key) ?? 0) + 1);
  for (const frames of samples) {
    let js: string | null = null;
    for (const frame of frames) if ((js = jsFrame(frame))) break;
    if (js === null) {
      const kind = nativeKind(frames);
      add(byPackage, kind);
      add(byFunction, kind);
    } else {
      add(byPackage, packageOfFrame(js));
      add(byFunction, js.replace(/\S*\/(node_modules|dist)\//, ''));
    }
  }
  return { samples: samples.length, byPackage, byFunction };
}

function table(
  title: string,
  rows: Map<string, number>,
  total: number,
  usPerRequest: number,
  top: number,
) {
  const withUs = usPerRequest > 0;
  const lines = [
    `| % of samples |${withUs ? ' µs / request |' : ''} ${title} |`,
    `| ---: |${withUs ? ' ---: |' : ''} --- |`,
  ];
  for (const [key, count] of [...rows].sort((a, b) => b[1] - a[1]).slice(0, top)) {
    const share = count / total;
    const us = withUs ? ` ${(share * usPerRequest).toFixed(2)} |` : '';
    lines.push(`| ${(share * 100).toFixed(1)} |${us} ${key} |`);
  }
  return lines.join('\n');
}

export function renderPerfSummary(summary: PerfSummary, usPerRequest = 0, top = 25): string {
  return [
    `samples: ${summary.samples}`,
    table(
      'package / file (innermost JavaScript frame)',
      summary.byPackage,
      summary.samples,
      usPerRequest,
      top,
    ),
    table(
      'function (innermost JavaScript frame)',
      summary.byFunction,
      summary.samples,
      usPerRequest,
      top,
    ),
  ].join('\n\n');
}

if (require.main === module) {
  const [file, usPerRequest = '0', top = '25'] = process.argv.slice(2);
  if (!file) {
    console.error('usage: perf-summary.ts <perf script output> [µs per request] [top]');
    process.exit(2);
  }
  const summary = summarisePerf(parsePerfScript(readFileSync(file, 'utf8')));
  console.log(renderPerfSummary(summary, Number(usPerRequest), Number(top)));
}
