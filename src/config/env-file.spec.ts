import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/**
 * Runs the helper in a child process: process.loadEnvFile writes the real environment, which
 * jest's sandboxed `process.env` does not show.
 */
function envAfterLoading(path: string, env: Record<string, string>): Record<string, unknown> {
  const script = `
    const loaded = require('./src/config/env-file').loadEnvFileIfPresent(${JSON.stringify(path)});
    const { FROM_FILE, ALREADY_SET } = process.env;
    process.stdout.write(JSON.stringify({ loaded, FROM_FILE, ALREADY_SET }));`;
  const output = execFileSync(
    process.execPath,
    ['-r', 'ts-node/register/transpile-only', '-e', script],
    { cwd: join(__dirname, '..', '..'), env: { PATH: process.env.PATH ?? '', ...env } },
  );
  return JSON.parse(output.toString()) as Record<string, unknown>;
}

describe('loadEnvFileIfPresent', () => {
  const dir = mkdtempSync(join(tmpdir(), 'env-file-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('loads the file, without overriding what the environment already says', () => {
    const path = join(dir, '.env');
    writeFileSync(path, 'FROM_FILE=file\nALREADY_SET=file\n');
    expect(envAfterLoading(path, { ALREADY_SET: 'environment' })).toEqual({
      loaded: true,
      FROM_FILE: 'file',
      ALREADY_SET: 'environment',
    });
  });

  it('does nothing when there is no file', () => {
    expect(envAfterLoading(join(dir, 'missing.env'), {})).toEqual({ loaded: false });
  });
});
