import { OptionalProps } from '@mikro-orm/core';
import {
  Check,
  Entity,
  ManyToOne,
  OneToOne,
  PrimaryKey,
  Property,
} from '@mikro-orm/decorators/legacy';
import { Reservation } from '../reservations/reservation.entity';
import { TicketOption } from '../ticket-options/ticket-option.entity';

export const PURCHASE_STATUSES = ['completed', 'cancelled'] as const;
export type PurchaseStatus = (typeof PURCHASE_STATUSES)[number];

/**
 * One acknowledged purchase. Rows are written only by the allocation actor's commit, in the same
 * statement that moves `ticket_options.purchased` (see allocation/ticket-option.store.ts): created
 * (directly, or by confirming a reservation) and cancelled. A cancelled row is kept for the record.
 */
@Entity({ tableName: 'purchases' })
@Check({ name: 'purchases_quantity_check', expression: '"quantity" > 0' })
@Check({
  name: 'purchases_status_check',
  expression: `"status" in ('completed', 'cancelled')`,
})
@Check({
  name: 'purchases_cancellation_check',
  expression: `("status" = 'cancelled') = ("cancelled_at" is not null)`,
})
export class Purchase {
  [OptionalProps]?: 'status' | 'cancelledAt' | 'reservation' | 'createdAt' | 'updatedAt';

  @PrimaryKey({ type: 'uuid' })
  id!: string;

  @ManyToOne(() => TicketOption, {
    fieldName: 'ticket_option_id',
    deleteRule: 'restrict',
    updateRule: 'cascade',
    index: true,
  })
  ticketOption!: TicketOption;

  @Property({ type: 'uuid' })
  userId!: string;

  @Property({ type: 'integer' })
  quantity!: number;

  @Property({ type: 'text', default: 'completed' })
  status: PurchaseStatus = 'completed';

  @Property({ type: 'datetime', columnType: 'timestamptz', nullable: true })
  cancelledAt: Date | null = null;

  /** The reservation this purchase confirmed (unique: a reservation is confirmed at most once). */
  @OneToOne(() => Reservation, {
    fieldName: 'reservation_id',
    nullable: true,
    owner: true,
    deleteRule: 'restrict',
    updateRule: 'cascade',
  })
  reservation: Reservation | null = null;

  @Property({ type: 'datetime', columnType: 'timestamptz', defaultRaw: 'now()' })
  createdAt: Date = new Date();

  @Property({
    type: 'datetime',
    columnType: 'timestamptz',
    defaultRaw: 'now()',
    onUpdate: () => new Date(),
  })
  updatedAt: Date = new Date();
}
