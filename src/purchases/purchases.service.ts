import { EntityManager } from '@mikro-orm/postgresql';
import { Injectable } from '@nestjs/common';
import { TicketOptionNotFoundError } from '../allocation/allocation.errors';
import { TicketOptionActorRegistry } from '../allocation/ticket-option-actor.registry';
import type { IdempotencyClaim } from '../allocation/ticket-option.store';
import { NotFoundError } from '../common/domain.error';
import { Purchase } from './purchase.entity';
import { PurchaseView } from './purchase.document';

export interface PurchaseCommand {
  ticketOptionId: string;
  userId: string;
  quantity: number;
  /** Where the option id came from in the request, for the 404's `source.pointer`. */
  ticketOptionPointer?: string;
  /** Completed by the commit that writes this purchase. */
  idempotency?: IdempotencyClaim;
}

@Injectable()
export class PurchasesService {
  constructor(
    private readonly actors: TicketOptionActorRegistry,
    private readonly em: EntityManager,
  ) {}

  /** Hands the purchase to the option's actor; resolves once it is committed. */
  async purchase(command: PurchaseCommand): Promise<PurchaseView> {
    try {
      const receipt = await this.actors.get(command.ticketOptionId).purchase({
        userId: command.userId,
        quantity: command.quantity,
        idempotency: command.idempotency,
      });
      return {
        id: receipt.id,
        ticketOptionId: receipt.ticketOptionId,
        userId: receipt.userId,
        quantity: receipt.quantity,
      };
    } catch (error) {
      if (error instanceof TicketOptionNotFoundError && command.ticketOptionPointer) {
        throw new TicketOptionNotFoundError(command.ticketOptionId, command.ticketOptionPointer);
      }
      throw error;
    }
  }

  async findOne(id: string): Promise<PurchaseView> {
    const purchase = await this.em.fork().findOne(Purchase, { id }, { disableIdentityMap: true });
    if (!purchase) throw new NotFoundError(`Purchase ${JSON.stringify(id)} does not exist.`);
    return {
      id: purchase.id,
      ticketOptionId: purchase.ticketOption.id,
      userId: purchase.userId,
      quantity: purchase.quantity,
    };
  }
}
