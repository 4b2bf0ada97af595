import { Module } from '@nestjs/common';
import { AllocationModule } from '../allocation/allocation.module';
import { ReservationExpirySweeper } from './reservation-expiry.sweeper';
import { ReservationsController } from './reservations.controller';
import { ReservationsRepository } from './reservations.repository';
import { ReservationsService } from './reservations.service';

@Module({
  imports: [AllocationModule],
  controllers: [ReservationsController],
  providers: [ReservationsService, ReservationsRepository, ReservationExpirySweeper],
  exports: [ReservationsRepository, ReservationExpirySweeper],
})
export class ReservationsModule {}
