import { Injectable } from '@nestjs/common';
import { TicketOptionNotFoundError } from '../allocation/allocation.errors';
import { TicketOptionActorRegistry } from '../allocation/ticket-option-actor.registry';
import { randomUUID } from 'node:crypto';
import { NotFoundError } from '../common/domain.error';
import type { IdempotencyClaim } from '../idempotency/idempotency-claim';
import { purchaseDocument, PurchaseIncluded, PurchaseView } from './purchase.document';
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
        ...(command.idempotency && keyedRequest(command, command.idempotency)),
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
    if (!view) throw purchaseNotFound(id);
    return view;
  }

  /** The purchase and the related resources named by `include` (paths already validated). */
  async findOneIncluding(
    id: string,
    include: ReadonlySet<string>,
  ): Promise<{ purchase: PurchaseView; included: PurchaseIncluded }> {
    if (!include.has('ticket_option')) return { purchase: await this.findOne(id), included: {} };
    const row = await this.purchases.findWithOption(id);
    if (!row) throw purchaseNotFound(id);
    const { name, description, allocation, ...purchase } = row;
    return {
      purchase,
      included: { ticketOption: { id: purchase.ticketOptionId, name, description, allocation } },
    };
  }
}

function purchaseNotFound(id: string): NotFoundError {
  return new NotFoundError(`Purchase ${JSON.stringify(id)} does not exist.`);
}

/** A keyed purchase's id is chosen here, so that its commit records the very answer it gets. */
function keyedRequest(command: PurchaseCommand, claim: IdempotencyClaim) {
  const id = randomUUID();
  const document = purchaseDocument({
    id,
    ticketOptionId: command.ticketOptionId,
    userId: command.userId,
    quantity: command.quantity,
  });
  return { id, idempotency: { ...claim, responseBody: JSON.stringify(document) } };
}
