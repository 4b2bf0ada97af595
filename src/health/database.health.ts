import { MikroORM } from '@mikro-orm/postgresql';
import { Injectable, Logger } from '@nestjs/common';
import { HealthIndicatorResult, HealthIndicatorService } from '@nestjs/terminus';
import { runStatement } from '../database/sql';

/** How long readiness waits for PostgreSQL to answer `SELECT 1`. */
export const DATABASE_PING_TIMEOUT_MS = 1000;

class PingTimeoutError extends Error {}

/**
 * PostgreSQL answers a trivial query through the application's own pool (so an exhausted pool
 * counts as not ready too). A hung or unreachable server gives `down` within the timeout instead
 * of holding the probe; the reason goes to the log, not into the probe's answer.
 */
@Injectable()
export class DatabaseHealthIndicator {
  private readonly logger = new Logger('Health');

  constructor(
    private readonly orm: MikroORM,
    private readonly indicators: HealthIndicatorService,
  ) {}

  async ping(key: string, timeoutMs = DATABASE_PING_TIMEOUT_MS): Promise<HealthIndicatorResult> {
    const check = this.indicators.check(key);
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new PingTimeoutError()), timeoutMs);
    });
    try {
      // The query may outlive the timeout; race() keeps its late outcome handled.
      await Promise.race([runStatement(this.orm, { text: 'select 1' }), timeout]);
      return check.up();
    } catch (error) {
      if (error instanceof PingTimeoutError) {
        this.logger.warn(`database did not answer within ${timeoutMs} ms`);
        return check.down({ message: `no answer within ${timeoutMs} ms` });
      }
      this.logger.warn({ err: error, msg: 'database unreachable' });
      return check.down({ message: 'unreachable' });
    } finally {
      clearTimeout(timer);
    }
  }
}
