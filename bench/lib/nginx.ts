/** nginx in front of local processes: found on the machine, installed only when asked. */
import { execFile } from 'node:child_process';
import { accessSync, constants, mkdirSync, writeFileSync } from 'node:fs';
import { delimiter, join } from 'node:path';
import { assertPortFree, Harness, HOST, Server, waitForHttp } from './harness';

export type NginxLookup = { binary: string } | { skipped: string };

function findNginx(): string | null {
  // sbin directories are often missing from a non-root PATH, and nginx lives there.
  const dirs = [...(process.env.PATH ?? '').split(delimiter), '/usr/sbin', '/usr/local/sbin'];
  for (const dir of dirs.filter(Boolean)) {
    try {
      accessSync(join(dir, 'nginx'), constants.X_OK);
      return join(dir, 'nginx');
    } catch {
      // not here
    }
  }
  return null;
}

const apt = (args: string): Promise<string | null> =>
  new Promise((resolve) => {
    const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
    execFile('apt-get', args.split(' '), { env, timeout: 150_000 }, (error, _out, err) =>
      resolve(error ? `${error.message.split('\n')[0]} ${err.trim().split('\n').pop()}` : null),
    );
  });

/** apt-get runs only with `install` (BENCH_INSTALL=1), as root, bounded in time. */
export async function lookUpNginx(
  install: boolean,
  say: (l: string) => void,
): Promise<NginxLookup> {
  if (findNginx()) return { binary: findNginx()! };
  if (!install) return { skipped: 'nginx not installed (BENCH_INSTALL=1 installs it)' };
  if (process.getuid?.() !== 0) return { skipped: 'nginx not installed; installing needs root' };
  let error: string | null = null;
  for (const step of ['update -q', 'install -y -q nginx-light', 'install -y -q nginx']) {
    say(`apt-get ${step} ...`);
    error = (await apt(step)) ?? error;
    if (findNginx()) return { binary: findNginx()! };
  }
  return { skipped: `nginx not installed and apt-get could not install it: ${error}` };
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
  const swap = (pattern: RegExp, replacement: string, what: string): void => {
    if (!pattern.test(config))
      throw new Error(`deploy/nginx.conf has no ${what}: update bench/lib/nginx.ts`);
    config = config.replace(pattern, replacement);
  };
  swap(/^pid\s+[^;]+;/m, `pid ${o.workDir}/nginx.pid;`, 'top-level pid directive');
  // The instances run with LOG_LEVEL=warn (no line per request); the balancer matches them.
  swap(/^(\s*)access_log\s+[^;]+;/m, '$1access_log off;', 'access_log directive');
  swap(/\blisten\s+3000;/, `listen ${HOST}:${o.listenPort};`, '"listen 3000;"');
  swap(/\bapp([1-9]):3000\b/g, 'app$1:3000', 'app1:3000 .. app3:3000 servers');
  config = config.replace(/\bapp([1-9]):3000\b/g, (_, index: string) => {
    const port = o.upstreamPorts[Number(index) - 1];
    if (port === undefined) throw new Error(`deploy/nginx.conf names app${index}: too many`);
    return `${HOST}:${port}`;
  });
  const temp = ['client_body', 'proxy', 'fastcgi', 'uwsgi', 'scgi'].map(
    (k) => `${k}_temp_path ${o.workDir}/${k};`,
  );
  swap(/^http\s*\{/m, `http {\n${temp.join('\n')}`, 'http block');
  // Foreground, so that nginx is a child the harness stops (and never outlives the run).
  return `daemon off;\n${config}`;
}

export async function startNginx(
  h: Harness,
  binary: string,
  template: string,
  dir: string,
  port: number,
  upstreamPorts: number[],
): Promise<Server> {
  mkdirSync(dir, { recursive: true });
  writeFileSync(
    join(dir, 'nginx.conf'),
    benchNginxConfig(template, { listenPort: port, upstreamPorts, workDir: dir }),
  );
  await assertPortFree(port);
  const proc = h.spawn(
    'nginx',
    binary,
    ['-e', 'stderr', '-p', dir, '-c', join(dir, 'nginx.conf')],
    process.env,
    dir,
  );
  const url = `http://${HOST}:${port}`;
  await waitForHttp(proc, url, 15_000);
  return { proc, url, port };
}
