import { Module } from '@nestjs/common';
import { AllocationModule } from '../allocation/allocation.module';
import { ReservationExpirySweeper } from './reservation-expiry.sweeper';
import { ReservationRouteCache } from './reservation-route.cache';
import { ReservationsController } from './reservations.controller';
import { ReservationsRepository } from './reservations.repository';
import { ReservationsService } from './reservations.service';

@Module({
  imports: [AllocationModule],
  controllers: [ReservationsController],
  providers: [
    ReservationsService,
    ReservationsRepository,
    ReservationExpirySweeper,
    ReservationRouteCache,
  ],
  exports: [ReservationsRepository, ReservationExpirySweeper, ReservationRouteCache],
})
export class ReservationsModule {}
