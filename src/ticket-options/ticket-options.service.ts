import { EntityManager } from '@mikro-orm/postgresql';
import { Injectable } from '@nestjs/common';
import { TicketOptionNotFoundError } from '../allocation/allocation.errors';
import type { IdempotencyClaim } from '../idempotency/idempotency-claim';
import { IdempotencyService } from '../idempotency/idempotency.service';
import {
  CreateTicketOptionAttributes,
  ticketOptionDocument,
  TicketOptionView,
} from './ticket-option.document';
import { TicketOptionsRepository } from './ticket-options.repository';

@Injectable()
export class TicketOptionsService {
  constructor(
    private readonly em: EntityManager,
    private readonly options: TicketOptionsRepository,
    private readonly idempotency: IdempotencyService,
  ) {}

  /** Creates the option; with an Idempotency-Key, the key is completed in the same transaction. */
  async create(
    attributes: CreateTicketOptionAttributes,
    claim?: IdempotencyClaim,
  ): Promise<TicketOptionView> {
    if (!claim) return this.options.create(attributes);
    return this.em.fork().transactional(async (em) => {
      const view = await this.options.create(attributes, em);
      await this.idempotency.completeWithin(em, claim, {
        status: 201,
        body: ticketOptionDocument(view),
        ticketOptionId: view.id,
      });
      return view;
    });
  }

  async findOne(id: string): Promise<TicketOptionView> {
    const view = await this.options.findById(id);
    if (!view) throw new TicketOptionNotFoundError(id);
    return view;
  }
}
