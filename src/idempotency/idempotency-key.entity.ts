import {
  Check,
  Entity,
  Index,
  ManyToOne,
  PrimaryKey,
  Property,
} from '@mikro-orm/decorators/legacy';
import { Purchase } from '../purchases/purchase.entity';
import { TicketOption } from '../ticket-options/ticket-option.entity';

/**
 * The `idempotency_keys` table as its migration creates it. Only IdempotencyService and the
 * option store's commit read and write it, in SQL; this entity exists so that the ORM's schema
 * diff knows the table (it would otherwise generate `drop table "idempotency_keys"`).
 */
@Entity({ tableName: 'idempotency_keys' })
@Check({
  name: 'idempotency_keys_completion_check',
  expression: '("completed_at" is null) = ("response_status" is null)',
})
@Check({
  name: 'idempotency_keys_answer_check',
  expression: '("completed_at" is null) = ("response_body" is null)',
})
export class IdempotencyKey {
  @PrimaryKey({ type: 'string', length: 255 })
  key!: string;

  @Property({ type: 'character', length: 64 })
  fingerprint!: string;

  @Property({ type: 'uuid' })
  claim!: string;

  @Property({ type: 'datetime', columnType: 'timestamptz', defaultRaw: 'now()' })
  lockedAt!: Date;

  @Index({ name: 'idempotency_keys_created_at_index' })
  @Property({ type: 'datetime', columnType: 'timestamptz', defaultRaw: 'now()' })
  createdAt!: Date;

  @Property({ type: 'datetime', columnType: 'timestamptz', nullable: true })
  completedAt!: Date | null;

  @Property({ type: 'smallint', nullable: true })
  responseStatus!: number | null;

  /** `json`, not `jsonb`: a replay sends the very text first sent. */
  @Property({ type: 'json', columnType: 'json', nullable: true })
  responseBody!: unknown;

  @ManyToOne(() => Purchase, { fieldName: 'purchase_id', nullable: true, deleteRule: 'cascade' })
  purchase!: Purchase | null;

  @ManyToOne(() => TicketOption, {
    fieldName: 'ticket_option_id',
    nullable: true,
    deleteRule: 'cascade',
  })
  ticketOption!: TicketOption | null;
}
