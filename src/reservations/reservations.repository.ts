import { MikroORM } from '@mikro-orm/postgresql';
import { Injectable } from '@nestjs/common';
import { isoUtcSql, runStatement, Statement } from '../database/sql';
import type { PurchaseView } from '../purchases/purchase.document';
import type { TicketOptionFields } from '../ticket-options/ticket-option.document';
import type { ReservationView } from './reservation.document';

/** A reservation as the database clock sees it now: a due hold reads as expired, swept or not. */
const VIEW_COLUMNS = `r.id, r.ticket_option_id AS "ticketOptionId", r.user_id AS "userId", r.quantity,
       CASE WHEN r.status = 'held' AND r.expires_at <= now() THEN 'expired' ELSE r.status END AS status,
       ${isoUtcSql('r.expires_at')} AS "expiresAt",
       ${isoUtcSql('r.created_at')} AS "createdAt",
       r.purchase_id AS "purchaseId"`;

export const READ_RESERVATION: Statement = {
  name: 'reservation-read',
  text: `SELECT ${VIEW_COLUMNS} FROM reservations r WHERE r.id = $1`,
};

/** The reservation, its option and its purchase (if confirmed), in one round trip. */
export const READ_RESERVATION_INCLUDING: Statement = {
  name: 'reservation-read-including',
  text: `SELECT ${VIEW_COLUMNS},
                o.name AS "optionName", o.description AS "optionDescription",
                o.allocation AS "optionAllocation",
                p.status AS "purchaseStatus",
                ${isoUtcSql('p.cancelled_at')} AS "purchaseCancelledAt"
           FROM reservations r JOIN ticket_options o ON o.id = r.ticket_option_id
           LEFT JOIN purchases p ON p.id = r.purchase_id
          WHERE r.id = $1`,
};

type IncludingRow = ReservationView & {
  optionName: string;
  optionDescription: string | null;
  optionAllocation: number;
  purchaseStatus: PurchaseView['status'] | null;
  purchaseCancelledAt: string | null;
};

export interface ReservationWithRelated {
  reservation: ReservationView;
  ticketOption: TicketOptionFields;
  purchase: PurchaseView | null;
}

/**
 * Reads of the `reservations` table. Rows are written only by the option store's commit and by
 * the expiry sweep (src/allocation/ledger-statements.ts), in the statements that move `held`.
 */
@Injectable()
export class ReservationsRepository {
  constructor(private readonly orm: MikroORM) {}

  async findById(id: string): Promise<ReservationView | null> {
    const { rows } = await runStatement<ReservationView>(this.orm, {
      ...READ_RESERVATION,
      values: [id],
    });
    return rows[0] ?? null;
  }

  async findWithRelated(id: string): Promise<ReservationWithRelated | null> {
    const { rows } = await runStatement<IncludingRow>(this.orm, {
      ...READ_RESERVATION_INCLUDING,
      values: [id],
    });
    const row = rows[0];
    if (!row) return null;
    const { optionName, optionDescription, optionAllocation } = row;
    const { purchaseStatus, purchaseCancelledAt, ...reservation } = row;
    delete (reservation as Partial<IncludingRow>).optionName;
    delete (reservation as Partial<IncludingRow>).optionDescription;
    delete (reservation as Partial<IncludingRow>).optionAllocation;
    return {
      reservation,
      ticketOption: {
        id: row.ticketOptionId,
        name: optionName,
        description: optionDescription,
        allocation: optionAllocation,
      },
      purchase:
        row.purchaseId === null || purchaseStatus === null
          ? null
          : {
              id: row.purchaseId,
              ticketOptionId: row.ticketOptionId,
              userId: row.userId,
              quantity: row.quantity,
              status: purchaseStatus,
              cancelledAt: purchaseCancelledAt,
              reservationId: row.id,
            },
    };
  }
}
