import { Controller, Get, Res, ServiceUnavailableException } from '@nestjs/common';
import { ApiTags } from '@nestjs/swagger';
import { HealthCheck, HealthCheckService } from '@nestjs/terminus';
import type { HealthCheckResult } from '@nestjs/terminus';
import type { FastifyReply } from 'fastify';
import { ActorsHealthIndicator } from './actors.health';
import { DatabaseHealthIndicator } from './database.health';

/**
 * Liveness and readiness probes (docs/design.md, Operations), in terminus' plain JSON format, outside the JSON:API
 * contract: a failed check is answered here with 503 and terminus' report, rather than thrown to
 * the global filter (which would turn it into a JSON:API error document).
 */
@ApiTags('operations')
@Controller('health')
export class HealthController {
  constructor(
    private readonly health: HealthCheckService,
    private readonly database: DatabaseHealthIndicator,
    private readonly actors: ActorsHealthIndicator,
  ) {}

  /**
   * 200 while the process runs and its event loop turns, draining included (terminus' own check
   * would say 503 `shutting_down` then, and a liveness failure means "restart me", which a clean
   * shutdown does not need).
   */
  @Get('live')
  @HealthCheck()
  live(): HealthCheckResult {
    return { status: 'ok', info: {}, error: {}, details: {} };
  }

  /**
   * 200 when PostgreSQL answers and the process is not draining; 503 otherwise (terminus reports
   * `shutting_down` once the application closes, with the actors' `draining` detail).
   */
  @Get('ready')
  @HealthCheck()
  ready(@Res({ passthrough: true }) reply: FastifyReply): Promise<HealthCheckResult> {
    return this.report(reply, [
      () => this.actors.check('actors'),
      () => this.database.ping('database'),
    ]);
  }

  private async report(
    reply: FastifyReply,
    checks: Parameters<HealthCheckService['check']>[0],
  ): Promise<HealthCheckResult> {
    try {
      return await this.health.check(checks);
    } catch (error) {
      if (!(error instanceof ServiceUnavailableException)) throw error;
      void reply.status(503);
      return error.getResponse() as HealthCheckResult;
    }
  }
}
