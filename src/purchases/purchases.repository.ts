import { MikroORM } from '@mikro-orm/postgresql';
import { Injectable } from '@nestjs/common';
import { isoUtcSql, runStatement, Statement } from '../database/sql';
import type { PurchaseView } from './purchase.document';

const VIEW_COLUMNS = `p.id, p.ticket_option_id AS "ticketOptionId", p.user_id AS "userId",
       p.quantity, p.status,
       ${isoUtcSql('p.cancelled_at')} AS "cancelledAt",
       p.reservation_id AS "reservationId"`;

export const READ_PURCHASE: Statement = {
  name: 'purchase-read',
  text: `SELECT ${VIEW_COLUMNS} FROM purchases p WHERE p.id = $1`,
};

/** The purchase and its option in one round trip (the foreign key guarantees the option). */
export const READ_PURCHASE_WITH_OPTION: Statement = {
  name: 'purchase-read-with-option',
  text: `SELECT ${VIEW_COLUMNS}, o.name, o.description, o.allocation
           FROM purchases p JOIN ticket_options o ON o.id = p.ticket_option_id
          WHERE p.id = $1`,
};

export type PurchaseWithOptionRow = PurchaseView & {
  name: string;
  description: string | null;
  allocation: number;
};

/**
 * Reads of the `purchases` table. Rows are written (created, confirmed from a reservation,
 * cancelled) only by the option store's commit (src/allocation/ledger-statements.ts), in the
 * statement that moves `purchased`.
 */
@Injectable()
export class PurchasesRepository {
  constructor(private readonly orm: MikroORM) {}

  async findById(id: string): Promise<PurchaseView | null> {
    const { rows } = await runStatement<PurchaseView>(this.orm, { ...READ_PURCHASE, values: [id] });
    return rows[0] ?? null;
  }

  async findWithOption(id: string): Promise<PurchaseWithOptionRow | null> {
    const { rows } = await runStatement<PurchaseWithOptionRow>(this.orm, {
      ...READ_PURCHASE_WITH_OPTION,
      values: [id],
    });
    return rows[0] ?? null;
  }
}
