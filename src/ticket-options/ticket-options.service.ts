import { EntityManager, MikroORM } from '@mikro-orm/postgresql';
import { Injectable } from '@nestjs/common';
import { TicketOptionNotFoundError } from '../allocation/allocation.errors';
import type { IdempotencyClaim } from '../idempotency/idempotency-claim';
import { runStatement } from '../database/sql';
import { IdempotencyService } from '../idempotency/idempotency.service';
import {
  CreateTicketOptionAttributes,
  ticketOptionDocument,
  TicketOptionView,
} from './ticket-option.document';
import { TicketOption } from './ticket-option.entity';

const READ_OPTION = {
  name: 'ticket-option-read',
  text: `SELECT id, name, description, allocation, purchased FROM ticket_options WHERE id = $1`,
};

@Injectable()
export class TicketOptionsService {
  constructor(
    private readonly em: EntityManager,
    private readonly orm: MikroORM,
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

  /**
   * One prepared statement instead of a unit-of-work fetch: this is the read buyers refresh during
   * a sale, and entity hydration would cost more than the query (measured in bench scenario 5).
   */
  async findOne(id: string): Promise<TicketOptionView> {
    const [view] = (
      await runStatement<TicketOptionView>(this.orm, { ...READ_OPTION, values: [id] })
    ).rows;
    if (!view) throw new TicketOptionNotFoundError(id);
    return view;
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
