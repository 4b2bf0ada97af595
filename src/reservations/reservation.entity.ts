import { OptionalProps } from '@mikro-orm/core';
import {
  Check,
  Entity,
  Index,
  ManyToOne,
  OneToOne,
  PrimaryKey,
  Property,
} from '@mikro-orm/decorators/legacy';
import { Purchase } from '../purchases/purchase.entity';
import { TicketOption } from '../ticket-options/ticket-option.entity';

/** What a reservation's `status` column may hold; `expired` is written by whoever sweeps it. */
export const RESERVATION_STATUSES = ['held', 'confirmed', 'released', 'expired'] as const;
export type ReservationStatus = (typeof RESERVATION_STATUSES)[number];

/**
 * A hold of `quantity` tickets of one option until `expires_at` (docs/design.md, Reservations).
 * Rows are written only by the option store's commit and by the expiry sweep, in the statements
 * that move `ticket_options.held` (src/allocation/postgres-ticket-option.store.ts), each under the
 * option's row lock. A confirmed reservation names its purchase; the purchase names it back.
 */
@Entity({ tableName: 'reservations' })
@Check({ name: 'reservations_quantity_check', expression: '"quantity" > 0' })
@Check({
  name: 'reservations_status_check',
  expression: `"status" in ('held', 'confirmed', 'released', 'expired')`,
})
@Check({
  name: 'reservations_confirmation_check',
  expression: `("status" = 'confirmed') = ("purchase_id" is not null)`,
})
// The sweep's scan (due holds, oldest first) and the per-option expiry before a refusal.
@Index({ name: 'reservations_due_index', properties: ['expiresAt'], where: `"status" = 'held'` })
@Index({
  name: 'reservations_option_due_index',
  properties: ['ticketOption', 'expiresAt'],
  where: `"status" = 'held'`,
})
export class Reservation {
  [OptionalProps]?: 'status' | 'purchase' | 'createdAt' | 'updatedAt';

  @PrimaryKey({ type: 'uuid' })
  id!: string;

  @ManyToOne(() => TicketOption, {
    fieldName: 'ticket_option_id',
    deleteRule: 'restrict',
    updateRule: 'cascade',
  })
  ticketOption!: TicketOption;

  @Property({ type: 'uuid' })
  userId!: string;

  @Property({ type: 'integer' })
  quantity!: number;

  @Property({ type: 'text', default: 'held' })
  status: ReservationStatus = 'held';

  /** From the database clock (`now()` of the commit that created the hold). */
  @Property({ type: 'datetime', columnType: 'timestamptz' })
  expiresAt!: Date;

  @OneToOne(() => Purchase, {
    fieldName: 'purchase_id',
    nullable: true,
    owner: true,
    deleteRule: 'restrict',
    updateRule: 'cascade',
  })
  purchase: Purchase | null = null;

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
