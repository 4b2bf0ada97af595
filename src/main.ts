// First, before any other module allocates: see gc-tuning.ts.
import './gc-tuning';
import type { Logger } from 'pino';
import { createApp } from './app.factory';
import { AppConfig, ConfigError, loadConfig } from './config/app-config';
import { loadEnvFileIfPresent } from './config/env-file';
import {
  EmbeddedPostgresError,
  EmbeddedPostgresHandle,
  startEmbeddedPostgres,
} from './database/embedded-postgres';
import { createAppLogger } from './logging/app.logger';

async function main(): Promise<void> {
  let config: AppConfig;
  try {
    loadEnvFileIfPresent();
    config = loadConfig();
  } catch (error) {
    if (error instanceof ConfigError) {
      // Before any logger exists (LOG_LEVEL itself may be the problem): plain text on stderr.
      console.error(error.message);
      process.exit(1);
    }
    throw error;
  }
  // The process's one pino logger: Fastify, Nest and these lines all write JSON through it.
  const logger = createAppLogger(config.logLevel);

  let embedded: EmbeddedPostgresHandle | undefined;
  let app;
  try {
    let databaseUrl = config.databaseUrl;
    if (!databaseUrl) {
      embedded = await startEmbedded(config, logger);
      databaseUrl = embedded.url;
    }
    app = await createApp({ ...config, databaseUrl }, { logger });
    await app.listen({ port: config.port, host: config.host });
  } catch (error) {
    if (error instanceof EmbeddedPostgresError) {
      // Says what is wrong and what to do; a stack trace would only bury that.
      logger.fatal(`failed to start: ${error.message}`);
    } else {
      logger.fatal({ err: error }, 'failed to start');
    }
    await embedded?.stop().catch(() => undefined);
    process.exit(1);
  }
  const running = app; // Fastify has logged "Server listening at …"

  // Nest's enableShutdownHooks() re-raises the signal after closing, so the process would die
  // with 143 instead of exiting 0; we close the app ourselves: the actor registry drains
  // (queued purchases are committed and answered; readiness turns 503), Fastify stops, the
  // pool closes.
  let stopping = false;
  const shutdown = (signal: NodeJS.Signals): void => {
    if (stopping) return;
    stopping = true;
    logger.info(`${signal} received: draining`);
    void (async () => {
      let code = 0;
      try {
        await running.close();
      } catch (error) {
        logger.error({ err: error }, 'error while shutting down');
        code = 1;
      }
      await embedded?.stop().catch(() => undefined);
      logger.info({ exitCode: code }, 'stopped');
      process.exit(code);
    })();
  };
  process.on('SIGTERM', shutdown);
  process.on('SIGINT', shutdown);
}

/** The embedded PostgreSQL, with one log line saying where its data lives (and why, if moved). */
function startEmbedded(config: AppConfig, logger: Logger): Promise<EmbeddedPostgresHandle> {
  const { dataDir, dataDirChosen, port } = config.embeddedPostgres;
  return startEmbeddedPostgres({
    dataDir,
    relocatable: !dataDirChosen,
    port,
    database: 'tickets',
    onPlaced: (placement) => {
      const where = `DATABASE_URL is not set: starting an embedded PostgreSQL with its data in ${placement.dataDir}`;
      const fields = { port, dataDir: placement.dataDir, binaries: placement.nativeDir };
      if (placement.notes.length === 0) logger.info(fields, where);
      else logger.warn(fields, `${where} (${placement.notes.join('; ')})`);
    },
  });
}

main().catch((error: unknown) => {
  console.error('failed to start:', error instanceof Error ? error.message : error);
  process.exit(1);
});
