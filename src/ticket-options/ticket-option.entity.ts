import { OptionalProps } from '@mikro-orm/core';
import { Check, Entity, PrimaryKey, Property } from '@mikro-orm/decorators/legacy';
import { randomUUID } from 'node:crypto';

/**
 * A ticket option: a fixed `allocation` of tickets, of which `purchased` are sold and `held` are
 * held by reservations (docs/design.md, Invariant). Every change of the counters bumps `version`, which is what lets many instances commit optimistically (see allocation/).
 * Name, description and allocation never change after creation.
 */
@Entity({ tableName: 'ticket_options' })
// The invariant's last line of defence (docs/design.md, Invariant), as the initial migration creates it.
@Check({ name: 'ticket_options_name_check', expression: 'char_length(btrim("name")) >= 1' })
@Check({ name: 'ticket_options_allocation_check', expression: '"allocation" >= 0' })
@Check({
  name: 'ticket_options_within_allocation_check',
  expression: '"purchased" >= 0 and "held" >= 0 and "purchased"::bigint + "held" <= "allocation"',
})
export class TicketOption {
  [OptionalProps]?: 'description' | 'purchased' | 'held' | 'version' | 'createdAt' | 'updatedAt';

  @PrimaryKey({ type: 'uuid' })
  id: string = randomUUID();

  @Property({ type: 'string', length: 255 })
  name!: string;

  @Property({ type: 'text', nullable: true })
  description: string | null = null;

  @Property({ type: 'integer' })
  allocation!: number;

  /** Tickets sold: the quantities of the purchases not cancelled. */
  @Property({ type: 'integer', default: 0 })
  purchased: number = 0;

  /** Tickets held by reservations not yet confirmed, released or swept as expired. */
  @Property({ type: 'integer', default: 0 })
  held: number = 0;

  @Property({ type: 'integer', version: true, default: 1 })
  version!: number;

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
