import { MikroORM } from '@mikro-orm/postgresql';
import { Injectable } from '@nestjs/common';
import { runStatement, Statement } from '../database/sql';
import type { PurchaseView } from './purchase.document';

export const READ_PURCHASE: Statement = {
  name: 'purchase-read',
  text: `SELECT id, ticket_option_id AS "ticketOptionId", user_id AS "userId", quantity
           FROM purchases WHERE id = $1`,
};

/**
 * Reads of the `purchases` table. Rows are written only by the option store's commit
 * (src/allocation/postgres-ticket-option.store.ts), in the statement that raises `purchased`.
 */
@Injectable()
export class PurchasesRepository {
  constructor(private readonly orm: MikroORM) {}

  async findById(id: string): Promise<PurchaseView | null> {
    const { rows } = await runStatement<PurchaseView>(this.orm, { ...READ_PURCHASE, values: [id] });
    return rows[0] ?? null;
  }
}
