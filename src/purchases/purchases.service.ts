import { MikroORM } from '@mikro-orm/postgresql';
import { Injectable } from '@nestjs/common';
import { TicketOptionNotFoundError } from '../allocation/allocation.errors';
import { TicketOptionActorRegistry } from '../allocation/ticket-option-actor.registry';
import { randomUUID } from 'node:crypto';
import { NotFoundError } from '../common/domain.error';
import { runStatement } from '../database/sql';
import type { IdempotencyClaim } from '../idempotency/idempotency-claim';
import { purchaseDocument, PurchaseIncluded, PurchaseView } from './purchase.document';

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

/** The purchase and its option in one round trip (the foreign key guarantees the option). */
const READ_PURCHASE_WITH_OPTION = {
  name: 'purchase-read-with-option',
  text: `SELECT p.id, p.ticket_option_id AS "ticketOptionId", p.user_id AS "userId", p.quantity,
                o.name, o.description, o.allocation
           FROM purchases p JOIN ticket_options o ON o.id = p.ticket_option_id
          WHERE p.id = $1`,
};

type PurchaseWithOptionRow = PurchaseView & {
  name: string;
  description: string | null;
  allocation: number;
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
    if (!view) throw purchaseNotFound(id);
    return view;
  }

  /** The purchase and the related resources named by `include` (paths already validated). */
  async findOneIncluding(
    id: string,
    include: ReadonlySet<string>,
  ): Promise<{ purchase: PurchaseView; included: PurchaseIncluded }> {
    if (!include.has('ticket_option')) return { purchase: await this.findOne(id), included: {} };
    const [row] = (
      await runStatement<PurchaseWithOptionRow>(this.orm, {
        ...READ_PURCHASE_WITH_OPTION,
        values: [id],
      })
    ).rows;
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
