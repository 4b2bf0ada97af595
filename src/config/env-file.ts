import { existsSync } from 'node:fs';

/**
 * Loads `path` into `process.env` when the file exists (a developer's settings, see
 * `.env.example`). Variables already set in the environment win over the file.
 */
export function loadEnvFileIfPresent(path = '.env'): boolean {
  if (!existsSync(path)) return false;
  process.loadEnvFile(path);
  return true;
}
