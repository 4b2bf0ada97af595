import { EntityManager } from '@mikro-orm/postgresql';
import { Injectable } from '@nestjs/common';
import { TicketOptionNotFoundError } from '../allocation/allocation.errors';
import { CreateTicketOptionAttributes, TicketOptionView } from './ticket-option.document';
import { TicketOption } from './ticket-option.entity';

@Injectable()
export class TicketOptionsService {
  constructor(private readonly em: EntityManager) {}

  async create(attributes: CreateTicketOptionAttributes): Promise<TicketOptionView> {
    const em = this.em.fork();
    const option = em.create(TicketOption, {
      name: attributes.name,
      description: attributes.description ?? null,
      allocation: attributes.allocation,
      purchased: 0,
    });
    await em.persistAndFlush(option);
    return toView(option);
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
