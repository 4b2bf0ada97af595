import { Injectable } from '@nestjs/common';
import { TicketOptionNotFoundError } from '../allocation/allocation.errors';
import { TicketOptionActorRegistry } from '../allocation/ticket-option-actor.registry';
import type { IdempotencyClaim } from '../allocation/ticket-option.store';
import { NotFoundError } from '../common/domain.error';
import { PurchaseView } from './purchase.document';
import { PurchasesRepository } from './purchases.repository';

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
    private readonly purchases: PurchasesRepository,
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
    const view = await this.purchases.findById(id);
    if (!view) throw new NotFoundError(`Purchase ${JSON.stringify(id)} does not exist.`);
    return view;
  }
}
