/** nginx in front of local processes: found on the machine, installed only when asked. */
import { execFileSync } from 'node:child_process';
import { accessSync, mkdirSync, writeFileSync } from 'node:fs';
import { delimiter, join } from 'node:path';
import { assertPortFree, Harness, HOST, Server, waitForHttp } from './harness';

export type NginxLookup = { binary: string } | { skipped: string };

/** sbin directories are often missing from a non-root PATH, and nginx lives there. */
const findNginx = () =>
  [...(process.env.PATH ?? '').split(delimiter), '/usr/sbin', '/usr/local/sbin']
    .map((dir) => join(dir, 'nginx'))
    .find((file) => {
      try {
        return accessSync(file, 1) === undefined;
      } catch {
        return false;
      }
    });

/** apt-get runs only with `install` (BENCH_INSTALL=1), as root, bounded in time. */
export function lookUpNginx(install: boolean, say: (line: string) => void): NginxLookup {
  if (!findNginx() && !install)
    return { skipped: 'nginx not installed (BENCH_INSTALL=1 installs it)' };
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  try {
    for (const step of findNginx() ? [] : ['update -q', 'install -y -q nginx-light']) {
      say(`apt-get ${step} ...`);
      execFileSync('apt-get', step.split(' '), { env, timeout: 150_000, stdio: 'ignore' });
    }
  } catch (error) {
    return { skipped: `nginx not installed; apt-get failed: ${(error as Error).message}` };
  }
  const binary = findNginx();
  return binary ? { binary } : { skipped: 'nginx not installed, nor by apt-get' };
}

/**
 * deploy/nginx.conf itself with local addresses and writable paths swapped in, so the routing
 * measured is the routing deployed; fails loudly if that file changed shape.
 */
export function benchNginxConfig(
  template: string,
  o: { listenPort: number; upstreamPorts: number[]; workDir: string },
): string {
  let config = template;
  const swap = (pattern: RegExp, replacement: string | ((...a: string[]) => string)) => {
    if (!pattern.test(config)) throw new Error(`deploy/nginx.conf has no ${pattern.source}`);
    config = config.replace(pattern, replacement as string);
  };
  swap(/^pid\s+[^;]+;/m, `pid ${o.workDir}/nginx.pid;`);
  // The instances run with LOG_LEVEL=warn (no line per request); the balancer matches them.
  swap(/^(\s*)access_log\s+[^;]+;/m, '$1access_log off;');
  swap(/\blisten\s+3000;/, `listen ${HOST}:${o.listenPort};`);
  swap(/\bapp([1-3]):3000\b/g, (_, index) => `${HOST}:${o.upstreamPorts[Number(index) - 1]}`);
  const temp = ['client_body', 'proxy', 'fastcgi', 'uwsgi', 'scgi'].map(
    (k) => `${k}_temp_path ${o.workDir}/${k};`,
  );
  swap(/^http\s*\{/m, `http {\n${temp.join('\n')}`);
  // Foreground, so that nginx is a child the harness stops (and never outlives the run).
  return `daemon off;\n${config}`;
}

/** nginx on `port` with deploy/nginx.conf's app1..app3 pointed at `upstreamPorts`. */
export async function startNginx(
  h: Harness,
  binary: string,
  template: string,
  dir: string,
  port: number,
  upstreamPorts: number[],
): Promise<Server> {
  mkdirSync(dir, { recursive: true });
  const config = benchNginxConfig(template, { listenPort: port, upstreamPorts, workDir: dir });
  writeFileSync(join(dir, 'nginx.conf'), config);
  await assertPortFree(port);
  const args = ['-e', 'stderr', '-p', dir, '-c', join(dir, 'nginx.conf')];
  const proc = h.spawn('nginx', binary, args, process.env, dir);
  return { proc, url: await waitForHttp(proc, `http://${HOST}:${port}`, 15_000), port };
}
