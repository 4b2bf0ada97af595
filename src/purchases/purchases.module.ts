import { Module } from '@nestjs/common';
import { AllocationModule } from '../allocation/allocation.module';
import { ReservationsModule } from '../reservations/reservations.module';
import { PurchasesController } from './purchases.controller';
import { PurchasesRepository } from './purchases.repository';
import { PurchasesService } from './purchases.service';

@Module({
  imports: [AllocationModule, ReservationsModule],
  controllers: [PurchasesController],
  providers: [PurchasesService, PurchasesRepository],
})
export class PurchasesModule {}
