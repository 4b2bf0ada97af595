import { Migration } from '@mikro-orm/migrations';

/**
 * Idempotency keys of docs/design.md, Wire contract, kept in PostgreSQL so that a retry landing on another instance
 * replays the first answer. A row is claimed (in flight) before the request is processed and
 * completed in the same transaction as what it created (purchase or ticket option).
 */
export class Migration20261121100000IdempotencyKeys extends Migration {
  override up(): void {
    this.addSql(`
      create table "idempotency_keys" (
        "key" varchar(255) not null,
        "fingerprint" char(64) not null,
        "claim" uuid not null,
        "locked_at" timestamptz not null default now(),
        "created_at" timestamptz not null default now(),
        "completed_at" timestamptz null,
        "response_status" smallint null,
        "response_body" jsonb null,
        "purchase_id" uuid null,
        "ticket_option_id" uuid null,
        constraint "idempotency_keys_pkey" primary key ("key"),
        constraint "idempotency_keys_purchase_id_foreign" foreign key ("purchase_id")
          references "purchases" ("id") on delete cascade,
        constraint "idempotency_keys_ticket_option_id_foreign" foreign key ("ticket_option_id")
          references "ticket_options" ("id") on delete cascade,
        constraint "idempotency_keys_completion_check" check (
          ("completed_at" is null) = ("response_status" is null)
        )
      );`);
    this.addSql(
      `create index "idempotency_keys_created_at_index" on "idempotency_keys" ("created_at");`,
    );
  }

  override down(): void {
    this.addSql(`drop table if exists "idempotency_keys";`);
  }
}
