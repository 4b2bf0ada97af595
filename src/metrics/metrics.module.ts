import { Module } from '@nestjs/common';
import { AllocationModule } from '../allocation/allocation.module';
import { ReservationsModule } from '../reservations/reservations.module';
import { TicketOptionsModule } from '../ticket-options/ticket-options.module';
import { MetricsController } from './metrics.controller';
import { MetricsService } from './metrics.service';

@Module({
  imports: [AllocationModule, ReservationsModule, TicketOptionsModule],
  controllers: [MetricsController],
  providers: [MetricsService],
  exports: [MetricsService],
})
export class MetricsModule {}
