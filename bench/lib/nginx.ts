import { execFile } from 'node:child_process';
import { accessSync, constants, mkdirSync } from 'node:fs';
import { delimiter, join } from 'node:path';

export type NginxLookup = { binary: string; installed: boolean } | { skipped: string };

const INSTALL_BUDGET_MS = 150_000;

function findBinary(): string | null {
  // sbin directories are often missing from a non-root PATH, and nginx lives there.
  const dirs = [
    ...(process.env.PATH ?? '').split(delimiter),
    '/usr/sbin',
    '/usr/local/sbin',
    '/usr/local/nginx/sbin',
  ];
  for (const dir of dirs.filter(Boolean)) {
    const candidate = join(dir, 'nginx');
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {
      // not here
    }
  }
  return null;
}

function run(
  command: string,
  args: string[],
  timeoutMs: number,
): Promise<{ ok: boolean; output: string }> {
  return new Promise((resolve) => {
    execFile(
      command,
      args,
      {
        timeout: Math.max(1000, timeoutMs),
        env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' },
        maxBuffer: 16 * 1024 * 1024,
      },
      (error, stdout, stderr) => {
        const lastLine = `${stdout}\n${stderr}`.trim().split('\n').pop() ?? '';
        resolve({ ok: !error, output: error ? `${error.message.split('\n')[0]} ${lastLine}` : '' });
      },
    );
  });
}

/**
 * Finds nginx, or installs it with apt-get when running as root (bounded in time). Never throws:
 * scenario 3 is skipped, with the reason, when nginx cannot be had.
 */
export async function findOrInstallNginx(log: (line: string) => void): Promise<NginxLookup> {
  const existing = findBinary();
  if (existing) return { binary: existing, installed: false };
  if (process.platform !== 'linux' || process.getuid?.() !== 0) {
    return { skipped: 'nginx is not installed and the bench is not running as root to install it' };
  }
  if (!findAptGet()) {
    return { skipped: 'nginx is not installed and apt-get is not available to install it' };
  }

  const deadline = Date.now() + INSTALL_BUDGET_MS;
  const remaining = (): number => deadline - Date.now();
  const options = [
    '-o',
    'Dpkg::Options::=--force-confdef',
    '-o',
    'Dpkg::Options::=--force-confold',
  ];
  const install = (pkg: string) =>
    run(
      'apt-get',
      ['install', '-y', '-q', '--no-install-recommends', ...options, pkg],
      remaining(),
    );

  let lastError = '';
  // The package lists may be stale or absent (slim images): one `apt-get update`, then retry.
  for (const step of ['nginx-light', 'update', 'nginx-light', 'nginx']) {
    if (remaining() <= 1000) {
      lastError = `gave up after ${INSTALL_BUDGET_MS / 1000} s`;
      break;
    }
    log(step === 'update' ? 'apt-get update ...' : `apt-get install -y ${step} ...`);
    const result =
      step === 'update' ? await run('apt-get', ['update', '-q'], remaining()) : await install(step);
    if (step !== 'update') {
      const binary = findBinary();
      if (result.ok && binary) return { binary, installed: true };
    }
    if (!result.ok) lastError = result.output;
  }
  return { skipped: `nginx is not installed and apt-get could not install it: ${lastError}` };
}

function findAptGet(): boolean {
  try {
    accessSync('/usr/bin/apt-get', constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/**
 * The bench's config is deploy/nginx.conf itself with the local addresses and writable paths
 * swapped in, so the routing measured is the routing deployed. Fails loudly if the file changed
 * shape, rather than silently measuring something else.
 */
export function benchNginxConfig(
  template: string,
  options: { listenPort: number; upstreamPorts: number[]; workDir: string },
): string {
  const { listenPort, upstreamPorts, workDir } = options;
  mkdirSync(join(workDir, 'nginx-temp'), { recursive: true });
  let config = template;
  const swap = (pattern: RegExp, replacement: string, what: string): void => {
    if (!pattern.test(config)) {
      throw new Error(`deploy/nginx.conf has no ${what}; update bench/lib/nginx.ts to match it`);
    }
    config = config.replace(pattern, replacement);
  };

  swap(/^pid\s+[^;]+;/m, `pid ${workDir}/nginx.pid;`, 'top-level pid directive');
  // The instances run with LOG_LEVEL=warn (no line per request); the balancer matches them.
  swap(/^(\s*)access_log\s+[^;]+;/m, '$1access_log off;', 'access_log directive');
  swap(/\blisten\s+3000;/, `listen 127.0.0.1:${listenPort};`, '"listen 3000;"');
  if (!/\bapp[1-9]:3000\b/.test(config)) {
    throw new Error(
      'deploy/nginx.conf has no app1:3000 .. app3:3000 servers; update bench/lib/nginx.ts',
    );
  }
  config = config.replace(/\bapp([1-9]):3000\b/g, (_match, index: string) => {
    const port = upstreamPorts[Number(index) - 1];
    if (port === undefined) {
      throw new Error(
        `deploy/nginx.conf names app${index}; the bench runs ${upstreamPorts.length}`,
      );
    }
    return `127.0.0.1:${port}`;
  });
  const temp = join(workDir, 'nginx-temp');
  swap(
    /^http\s*\{/m,
    [
      'http {',
      `  client_body_temp_path ${temp}/client_body;`,
      `  proxy_temp_path ${temp}/proxy;`,
      `  fastcgi_temp_path ${temp}/fastcgi;`,
      `  uwsgi_temp_path ${temp}/uwsgi;`,
      `  scgi_temp_path ${temp}/scgi;`,
    ].join('\n'),
    'http block',
  );
  // Foreground, so that nginx is a child the bench can stop (and never outlives it).
  return `daemon off;\n${config}`;
}
