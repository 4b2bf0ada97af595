import { MikroORM, PostgreSqlDriver } from '@mikro-orm/postgresql';
import { MikroOrmModule } from '@mikro-orm/nestjs';
import { Inject, Injectable, Logger, Module, OnModuleInit } from '@nestjs/common';
import type { AppConfig } from '../config/app-config';
import { APP_CONFIG } from '../config/config.module';
import { buildOrmOptions } from './mikro-orm.config';
import { migrateUnderLock } from './migrate';
import { poolOf } from './sql';

/** Brings the schema up to date before the application serves (never `schema.update()`). */
@Injectable()
export class MigrateOnStart implements OnModuleInit {
  private readonly logger = new Logger('Database');

  constructor(
    private readonly orm: MikroORM,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
  ) {}

  async onModuleInit(): Promise<void> {
    const applied = await migrateUnderLock(
      this.orm,
      databaseUrlOf(this.config),
      this.config.dbTimeouts.connectMs,
    );
    if (applied.length > 0) this.logger.log(`applied migrations: ${applied.join(', ')}`);
    // Statements keep this pool from now on: once the ORM is closed they fail instead of
    // reconnecting (see sql.ts).
    await poolOf(this.orm);
  }
}

function databaseUrlOf(config: AppConfig): string {
  if (!config.databaseUrl) throw new Error('databaseUrl must be resolved before the app starts');
  return config.databaseUrl;
}

@Module({
  imports: [
    MikroOrmModule.forRootAsync({
      driver: PostgreSqlDriver,
      inject: [APP_CONFIG],
      useFactory: (config: AppConfig) => ({
        ...buildOrmOptions({
          databaseUrl: databaseUrlOf(config),
          poolSize: config.dbPoolSize,
          timeouts: config.dbTimeouts,
        }),
        // Every unit of work forks its own EntityManager; no per-request middleware on the hot path.
        registerRequestContext: false,
      }),
    }),
  ],
  providers: [MigrateOnStart],
})
export class DatabaseModule {}
