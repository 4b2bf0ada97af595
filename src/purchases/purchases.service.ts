import { MikroORM } from '@mikro-orm/postgresql';
import { Injectable } from '@nestjs/common';
import { TicketOptionNotFoundError } from '../allocation/allocation.errors';
import { TicketOptionActorRegistry } from '../allocation/ticket-option-actor.registry';
import { randomUUID } from 'node:crypto';
import { NotFoundError } from '../common/domain.error';
import { runStatement } from '../database/sql';
import type { IdempotencyClaim } from '../idempotency/idempotency-claim';
import { purchaseDocument, PurchaseView } from './purchase.document';

export interface PurchaseCommand {
  ticketOptionId: string;
  userId: string;
  quantity: number;
  /** Where the option id came from in the request, for the 404's `source.pointer`. */
  ticketOptionPointer?: string;
  /** Completed by the commit that writes this purchase. */
  idempotency?: IdempotencyClaim;
}

const READ_PURCHASE = {
  name: 'purchase-read',
  text: `SELECT id, ticket_option_id AS "ticketOptionId", user_id AS "userId", quantity
           FROM purchases WHERE id = $1`,
};

@Injectable()
export class PurchasesService {
  constructor(
    private readonly actors: TicketOptionActorRegistry,
    private readonly orm: MikroORM,
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
    const [view] = (await runStatement<PurchaseView>(this.orm, { ...READ_PURCHASE, values: [id] }))
      .rows;
    if (!view) throw new NotFoundError(`Purchase ${JSON.stringify(id)} does not exist.`);
    return view;
  }
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
