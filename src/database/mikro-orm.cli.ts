import { loadEnvFileIfPresent } from '../config/env-file';
import { buildOrmOptions } from './mikro-orm.config';

loadEnvFileIfPresent();

/** The config of `npm run migration:*` (@mikro-orm/cli): DATABASE_URL, from the environment or `.env`. */
export default buildOrmOptions({
  databaseUrl: process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres',
  poolSize: 2,
});
