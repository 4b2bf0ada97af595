import { Module } from '@nestjs/common';
import { TerminusModule } from '@nestjs/terminus';
import { AllocationModule } from '../allocation/allocation.module';
import { ActorsHealthIndicator } from './actors.health';
import { DatabaseHealthIndicator } from './database.health';
import { HealthController } from './health.controller';

@Module({
  // Terminus' own logger is off: the indicators log why a check failed, at warn.
  imports: [TerminusModule.forRoot({ logger: false }), AllocationModule],
  controllers: [HealthController],
  providers: [DatabaseHealthIndicator, ActorsHealthIndicator],
})
export class HealthModule {}
