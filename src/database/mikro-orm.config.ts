import { Logger } from '@nestjs/common';
import { Options } from '@mikro-orm/core';
import type { DatabaseTimeouts } from '../config/app-config';
import { Migrator } from '@mikro-orm/migrations';
import { PostgreSqlDriver } from '@mikro-orm/postgresql';
import { Purchase } from '../purchases/purchase.entity';
import { TicketOption } from '../ticket-options/ticket-option.entity';
import { Migration20261121000000InitialSchema } from './migrations/Migration20261121000000InitialSchema';
import { Migration20261121100000IdempotencyKeys } from './migrations/Migration20261121100000IdempotencyKeys';
import { Migration20261201000000IdempotencyAnswers } from './migrations/Migration20261201000000IdempotencyAnswers';

/** Every migration, in order. Listed explicitly so that ts-jest, ts-node and dist/ behave alike. */
export const MIGRATIONS = [
  { name: 'Migration20261121000000InitialSchema', class: Migration20261121000000InitialSchema },
  { name: 'Migration20261121100000IdempotencyKeys', class: Migration20261121100000IdempotencyKeys },
  {
    name: 'Migration20261201000000IdempotencyAnswers',
    class: Migration20261201000000IdempotencyAnswers,
  },
];

const ormLogger = new Logger('MikroORM');
const knexLogger = new Logger('knex');

export interface OrmSettings {
  databaseUrl: string;
  poolSize: number;
  timeouts?: DatabaseTimeouts;
  debug?: boolean;
}

/** The MikroORM options shared by the application and the MikroORM CLI. */
export function buildOrmOptions(settings: OrmSettings): Options<PostgreSqlDriver> {
  return {
    driver: PostgreSqlDriver,
    clientUrl: settings.databaseUrl,
    entities: [TicketOption, Purchase],
    extensions: [Migrator],
    pool: { min: 0, max: settings.poolSize },
    debug: settings.debug ?? false,
    // Through Nest's logger (pino JSON), so LOG_LEVEL governs MikroORM's lines (e.g. the
    // migrator's) too; no ANSI colours inside JSON.
    logger: (message: string) => ormLogger.log(message),
    colors: false,
    // knex would print its warnings ("Connection Error: …") with console.log, outside the JSON log.
    driverOptions: {
      ...(settings.timeouts && {
        // Pool exhausted: fail after this long (knex waits 60 s by default) → 503, not a hang.
        acquireConnectionTimeout: settings.timeouts.acquireMs,
        connection: {
          statement_timeout: settings.timeouts.statementMs,
          lock_timeout: settings.timeouts.lockMs,
          idle_in_transaction_session_timeout: settings.timeouts.statementMs * 2,
          connectionTimeoutMillis: settings.timeouts.connectMs,
          keepAlive: true,
        },
      }),
      log: {
        warn: (message: unknown) => knexLogger.warn(message),
        error: (message: unknown) => knexLogger.error(message),
        deprecate: (message: unknown) => knexLogger.warn(message),
        debug: (message: unknown) => knexLogger.debug(message),
      },
    },
    // The hot path never loads entities into a context; forks are explicit.
    allowGlobalContext: false,
    forceUtcTimezone: true,
    migrations: {
      tableName: 'mikro_orm_migrations',
      migrationsList: MIGRATIONS,
      path: 'src/database/migrations',
      transactional: true,
      allOrNothing: true,
      snapshot: false,
      emit: 'ts',
    },
  };
}

/** Used by `npx mikro-orm …` (migration:create, migration:up): reads DATABASE_URL. */
export default buildOrmOptions({
  databaseUrl: process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres',
  poolSize: 2,
});
