import { Module } from '@nestjs/common';
import { PostgresTicketOptionStore } from './postgres-ticket-option.store';
import { TicketOptionActorRegistry } from './ticket-option-actor.registry';
import { TICKET_OPTION_STORE } from './ticket-option.store';

@Module({
  providers: [
    PostgresTicketOptionStore,
    { provide: TICKET_OPTION_STORE, useExisting: PostgresTicketOptionStore },
    TicketOptionActorRegistry,
  ],
  exports: [TicketOptionActorRegistry, PostgresTicketOptionStore],
})
export class AllocationModule {}
