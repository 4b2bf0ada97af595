import { Logger } from '@nestjs/common';
import type { DatabaseTimeouts } from '../config/app-config';
import { Migrator } from '@mikro-orm/migrations';
import { defineConfig, PostgreSqlDriver } from '@mikro-orm/postgresql';
import { IdempotencyKey } from '../idempotency/idempotency-key.entity';
import { Purchase } from '../purchases/purchase.entity';
import { Reservation } from '../reservations/reservation.entity';
import { TicketOption } from '../ticket-options/ticket-option.entity';
import { Migration20261121000000InitialSchema } from './migrations/Migration20261121000000InitialSchema';
import { Migration20261121100000IdempotencyKeys } from './migrations/Migration20261121100000IdempotencyKeys';
import { Migration20261201000000IdempotencyAnswers } from './migrations/Migration20261201000000IdempotencyAnswers';
import { Migration20261202000000Reservations } from './migrations/Migration20261202000000Reservations';

/** Every migration, in order. Listed explicitly so that ts-jest, ts-node and dist/ behave alike. */
export const MIGRATIONS = [
  { name: 'Migration20261121000000InitialSchema', class: Migration20261121000000InitialSchema },
  { name: 'Migration20261121100000IdempotencyKeys', class: Migration20261121100000IdempotencyKeys },
  {
    name: 'Migration20261201000000IdempotencyAnswers',
    class: Migration20261201000000IdempotencyAnswers,
  },
  { name: 'Migration20261202000000Reservations', class: Migration20261202000000Reservations },
];

const ormLogger = new Logger('MikroORM');

export interface OrmSettings {
  databaseUrl: string;
  poolSize: number;
  timeouts?: DatabaseTimeouts;
  debug?: boolean;
}

/** The MikroORM options shared by the application and the MikroORM CLI (mikro-orm.cli.ts). */
export function buildOrmOptions(settings: OrmSettings) {
  return defineConfig({
    driver: PostgreSqlDriver,
    clientUrl: settings.databaseUrl,
    entities: [TicketOption, Purchase, Reservation, IdempotencyKey],
    extensions: [Migrator],
    pool: { min: 0, max: settings.poolSize },
    debug: settings.debug ?? false,
    // Through Nest's logger (pino JSON), so LOG_LEVEL governs MikroORM's lines (e.g. the
    // migrator's) too; no ANSI colours inside JSON.
    logger: (message: string) => ormLogger.log(message),
    colors: false,
    // Options of the `pg` pool (and of each of its sessions), see src/database/sql.ts.
    driverOptions: settings.timeouts && {
      // pg-pool bounds both the wait for a free connection (pool exhausted) and the opening of a
      // new one with this: a 503 after it, not a hang.
      connectionTimeoutMillis: settings.timeouts.acquireMs,
      statement_timeout: settings.timeouts.statementMs,
      lock_timeout: settings.timeouts.lockMs,
      idle_in_transaction_session_timeout: settings.timeouts.statementMs * 2,
      keepAlive: true,
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
  });
}
