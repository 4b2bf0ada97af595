import { Module } from '@nestjs/common';
import { TicketOptionsController } from './ticket-options.controller';
import { TicketOptionsService } from './ticket-options.service';

@Module({
  controllers: [TicketOptionsController],
  providers: [TicketOptionsService],
})
export class TicketOptionsModule {}
