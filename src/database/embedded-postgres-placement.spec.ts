import {
  chmod,
  mkdir,
  mkdtemp,
  readdir,
  readFile,
  rm,
  stat,
  symlink,
  writeFile,
} from 'node:fs/promises';
import { readlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { copyOnce, permissionsOf, relocatedName } from './embedded-postgres-placement';

describe('permissionsOf', () => {
  const user = { uid: 101, gid: 104 };

  it("uses the owner's bits for the owner, even when others may do more", () => {
    expect(permissionsOf(user, { uid: 101, gid: 0, mode: 0o40077 })).toBe(0);
    expect(permissionsOf(user, { uid: 101, gid: 0, mode: 0o40700 })).toBe(7);
  });

  it("uses the group's bits for the primary group, else the others'", () => {
    expect(permissionsOf(user, { uid: 0, gid: 104, mode: 0o750 })).toBe(5);
    expect(permissionsOf(user, { uid: 0, gid: 0, mode: 0o750 })).toBe(0);
    expect(permissionsOf(user, { uid: 0, gid: 0, mode: 0o755 })).toBe(5);
  });
});

describe('relocatedName', () => {
  it('is the same for the same checkout and differs between checkouts', () => {
    const a = relocatedName('/root/ticket-service/.data/postgres');
    expect(relocatedName('/root/ticket-service/.data/postgres')).toBe(a);
    expect(relocatedName('/root/other/.data/postgres')).not.toBe(a);
    expect(a).toMatch(/^root-ticket-service-data-postgres-[0-9a-f]{12}$/);
  });

  it('stays a short, plain file name for long or odd paths', () => {
    const name = relocatedName(`/${'x'.repeat(300)}/ä ö/.data/postgres`);
    expect(name).toMatch(/^[A-Za-z0-9][A-Za-z0-9-]*-[0-9a-f]{12}$/);
    expect(name.length).toBeLessThanOrEqual(61);
  });
});

describe('copyOnce', () => {
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'copy-once-'));
  });
  afterEach(() => rm(dir, { recursive: true, force: true }));

  async function makeSource(): Promise<string> {
    const source = join(dir, 'source');
    await mkdir(join(source, 'bin'), { recursive: true });
    await mkdir(join(source, 'lib'));
    await writeFile(join(source, 'bin', 'postgres'), 'binary');
    await chmod(join(source, 'bin', 'postgres'), 0o700); // as a umask of 077 leaves it
    await writeFile(join(source, 'lib', 'libpq.so.5.17'), 'library');
    await chmod(join(source, 'lib', 'libpq.so.5.17'), 0o600);
    await symlink('libpq.so.5.17', join(source, 'lib', 'libpq.so.5'));
    await chmod(join(source, 'lib'), 0o700);
    return source;
  }

  it('copies a tree readable by everyone, executables executable, links kept as links', async () => {
    const source = await makeSource();
    const target = join(dir, 'cache');
    await copyOnce(source, target);
    expect((await stat(join(target, 'bin', 'postgres'))).mode & 0o777).toBe(0o755);
    expect((await stat(join(target, 'lib', 'libpq.so.5.17'))).mode & 0o777).toBe(0o644);
    expect((await stat(join(target, 'lib'))).mode & 0o777).toBe(0o755);
    expect(readlinkSync(join(target, 'lib', 'libpq.so.5'))).toBe('libpq.so.5.17');
    expect(await readFile(join(target, 'lib', 'libpq.so.5'), 'utf8')).toBe('library');
  });

  it('several at once: one complete copy, no leftovers, nobody fails', async () => {
    const source = await makeSource();
    const target = join(dir, 'cache');
    await Promise.all([1, 2, 3, 4].map(() => copyOnce(source, target)));
    expect((await readdir(dir)).sort()).toEqual(['cache', 'source']);
    expect(await readFile(join(target, 'bin', 'postgres'), 'utf8')).toBe('binary');
  });

  it('reuses what is there', async () => {
    const source = await makeSource();
    const target = join(dir, 'cache');
    await copyOnce(source, target);
    await writeFile(join(source, 'bin', 'postgres'), 'changed');
    await copyOnce(source, target);
    expect(await readFile(join(target, 'bin', 'postgres'), 'utf8')).toBe('binary');
  });
});
