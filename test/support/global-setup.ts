import { resolveTestDatabase, ResolvedTestDatabase } from './database';

declare global {
  var __TEST_DATABASE__: ResolvedTestDatabase | undefined;
}

export default async function globalSetup(): Promise<void> {
  const database = await resolveTestDatabase();
  globalThis.__TEST_DATABASE__ = database;
  // Workers are spawned after this and inherit the environment.
  process.env.TEST_PG_ADMIN_URL = database.adminUrl;
  console.log(`\n[tests] PostgreSQL from ${database.source}`);
}
