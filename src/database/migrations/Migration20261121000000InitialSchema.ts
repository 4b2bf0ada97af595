import { Migration } from '@mikro-orm/migrations';

/**
 * Tables of docs/design.md, Operations. The CHECK constraints encode the invariant of docs/design.md, Invariant so that the database
 * refuses an oversell even if the application were wrong.
 */
export class Migration20261121000000InitialSchema extends Migration {
  override up(): void {
    this.addSql(`
      create table "ticket_options" (
        "id" uuid not null,
        "name" varchar(255) not null,
        "description" text null,
        "allocation" integer not null,
        "purchased" integer not null default 0,
        "version" integer not null default 1,
        "created_at" timestamptz not null default now(),
        "updated_at" timestamptz not null default now(),
        constraint "ticket_options_pkey" primary key ("id"),
        constraint "ticket_options_name_check" check (char_length(btrim("name")) >= 1),
        constraint "ticket_options_allocation_check" check ("allocation" >= 0),
        constraint "ticket_options_purchased_check" check ("purchased" >= 0 and "purchased" <= "allocation")
      );`);
    this.addSql(`
      create table "purchases" (
        "id" uuid not null,
        "ticket_option_id" uuid not null,
        "user_id" uuid not null,
        "quantity" integer not null,
        "created_at" timestamptz not null default now(),
        "updated_at" timestamptz not null default now(),
        constraint "purchases_pkey" primary key ("id"),
        constraint "purchases_quantity_check" check ("quantity" > 0),
        constraint "purchases_ticket_option_id_foreign" foreign key ("ticket_option_id")
          references "ticket_options" ("id") on update cascade on delete restrict
      );`);
    this.addSql(
      `create index "purchases_ticket_option_id_index" on "purchases" ("ticket_option_id");`,
    );
  }

  override down(): void {
    this.addSql(`drop table if exists "purchases";`);
    this.addSql(`drop table if exists "ticket_options";`);
  }
}
