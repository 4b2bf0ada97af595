import { Module } from '@nestjs/common';
import { TicketOptionsController } from './ticket-options.controller';
import { TicketOptionsRepository } from './ticket-options.repository';
import { TicketOptionsService } from './ticket-options.service';

@Module({
  controllers: [TicketOptionsController],
  providers: [TicketOptionsService, TicketOptionsRepository],
  exports: [TicketOptionsRepository],
})
export class TicketOptionsModule {}
