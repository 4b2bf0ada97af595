import { createApp } from './app.factory';
import { ConfigError, loadConfig } from './config/app-config';
import { EmbeddedPostgresHandle, startEmbeddedPostgres } from './database/embedded-postgres';

async function main(): Promise<void> {
  let config;
  try {
    config = loadConfig();
  } catch (error) {
    if (error instanceof ConfigError) {
      console.error(error.message);
      process.exit(1);
    }
    throw error;
  }

  let embedded: EmbeddedPostgresHandle | undefined;
  let databaseUrl = config.databaseUrl;
  if (!databaseUrl) {
    console.log(
      `DATABASE_URL is not set: starting an embedded PostgreSQL on 127.0.0.1:${config.embeddedPostgres.port} ` +
        `with data in ${config.embeddedPostgres.dataDir}`,
    );
    embedded = await startEmbeddedPostgres({ ...config.embeddedPostgres, database: 'tickets' });
    databaseUrl = embedded.url;
  }

  let app;
  try {
    app = await createApp({ ...config, databaseUrl });
    await app.listen({ port: config.port, host: config.host });
  } catch (error) {
    await embedded?.stop();
    throw error;
  }
  const running = app;
  running
    .getHttpAdapter()
    .getInstance()
    .log.info(`listening on http://${config.host}:${config.port}`);

  // Nest's enableShutdownHooks() re-raises the signal after closing, so the process would die
  // with 143 instead of exiting 0; we close the app ourselves: the actor registry drains
  // (queued purchases are committed and answered), Fastify stops, the pool closes.
  let stopping = false;
  const shutdown = (signal: NodeJS.Signals): void => {
    if (stopping) return;
    stopping = true;
    running.getHttpAdapter().getInstance().log.info(`${signal} received: draining`);
    void (async () => {
      let code = 0;
      try {
        await running.close();
      } catch (error) {
        console.error('error while shutting down', error);
        code = 1;
      }
      await embedded?.stop().catch(() => undefined);
      process.exit(code);
    })();
  };
  process.on('SIGTERM', shutdown);
  process.on('SIGINT', shutdown);
}

main().catch((error: unknown) => {
  console.error('failed to start:', error instanceof Error ? error.message : error);
  process.exit(1);
});
