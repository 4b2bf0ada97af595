import { OptionalProps } from '@mikro-orm/core';
import { Check, Entity, ManyToOne, PrimaryKey, Property } from '@mikro-orm/decorators/legacy';
import { TicketOption } from '../ticket-options/ticket-option.entity';

/**
 * One acknowledged purchase. Rows are written only by the allocation actor's commit, in the same
 * statement that raises `ticket_options.purchased` (see allocation/ticket-option.store.ts).
 */
@Entity({ tableName: 'purchases' })
@Check({ name: 'purchases_quantity_check', expression: '"quantity" > 0' })
export class Purchase {
  [OptionalProps]?: 'createdAt' | 'updatedAt';

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
