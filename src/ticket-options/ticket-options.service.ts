import { EntityManager } from '@mikro-orm/postgresql';
import { Injectable } from '@nestjs/common';
import { TicketOptionNotFoundError } from '../allocation/allocation.errors';
import type { IdempotencyClaim } from '../allocation/ticket-option.store';
import { IdempotencyService } from '../idempotency/idempotency.service';
import {
  CreateTicketOptionAttributes,
  ticketOptionDocument,
  TicketOptionView,
} from './ticket-option.document';
import { TicketOption } from './ticket-option.entity';

@Injectable()
export class TicketOptionsService {
  constructor(
    private readonly em: EntityManager,
    private readonly idempotency: IdempotencyService,
  ) {}

  /** Creates the option; with an Idempotency-Key, the key is completed in the same transaction. */
  async create(
    attributes: CreateTicketOptionAttributes,
    claim?: IdempotencyClaim,
  ): Promise<TicketOptionView> {
    return this.em.fork().transactional(async (em) => {
      const option = em.create(TicketOption, {
        name: attributes.name,
        description: attributes.description ?? null,
        allocation: attributes.allocation,
        purchased: 0,
      });
      await em.flush();
      const view = toView(option);
      if (claim) {
        await this.idempotency.completeWithin(em, claim, {
          status: 201,
          body: ticketOptionDocument(view),
          ticketOptionId: view.id,
        });
      }
      return view;
    });
  }

  async findOne(id: string): Promise<TicketOptionView> {
    const option = await this.em.fork().findOne(TicketOption, { id }, { disableIdentityMap: true });
    if (!option) throw new TicketOptionNotFoundError(id);
    return toView(option);
  }
}

function toView(option: TicketOption): TicketOptionView {
  return {
    id: option.id,
    name: option.name,
    description: option.description,
    allocation: option.allocation,
    purchased: option.purchased,
  };
}
