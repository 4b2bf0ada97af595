import { Migration } from '@mikro-orm/migrations';

/**
 * Reservations (docs/design.md, Reservations): holds with a database-clock expiry, confirmation
 * into a purchase, release, and the cancellation of purchases. The invariant's bound becomes
 * `0 <= purchased + held <= allocation` (`purchased` counts purchases not cancelled), checked in
 * `bigint` so that two counters near 2^31 cannot overflow the check itself. A reservation is
 * confirmed at most once (`purchases.reservation_id` unique) into one purchase, which it names
 * back (`reservations.purchase_id` unique, set exactly when confirmed).
 */
export class Migration20261202000000Reservations extends Migration {
  override up(): void {
    this.addSql(`alter table "ticket_options" add "held" int not null default 0;`);
    this.addSql(`alter table "ticket_options" drop constraint "ticket_options_purchased_check";`);
    this.addSql(`
      alter table "ticket_options" add constraint "ticket_options_within_allocation_check"
        check ("purchased" >= 0 and "held" >= 0 and "purchased"::bigint + "held" <= "allocation");`);
    this.addSql(`
      create table "reservations" (
        "id" uuid not null,
        "ticket_option_id" uuid not null,
        "user_id" uuid not null,
        "quantity" int not null,
        "status" text not null default 'held',
        "expires_at" timestamptz not null,
        "purchase_id" uuid null,
        "created_at" timestamptz not null default now(),
        "updated_at" timestamptz not null default now(),
        primary key ("id"),
        constraint "reservations_quantity_check" check ("quantity" > 0),
        constraint "reservations_status_check"
          check ("status" in ('held', 'confirmed', 'released', 'expired')),
        constraint "reservations_confirmation_check"
          check (("status" = 'confirmed') = ("purchase_id" is not null)),
        constraint "reservations_ticket_option_id_foreign" foreign key ("ticket_option_id")
          references "ticket_options" ("id") on update cascade on delete restrict
      );`);
    this.addSql(`
      alter table "reservations" add constraint "reservations_purchase_id_unique" unique ("purchase_id");`);
    this.addSql(`
      create index "reservations_option_due_index" on "reservations" ("ticket_option_id", "expires_at")
        where "status" = 'held';`);
    this.addSql(`
      create index "reservations_due_index" on "reservations" ("expires_at") where "status" = 'held';`);
    this.addSql(`
      alter table "purchases" add "status" text not null default 'completed',
        add "cancelled_at" timestamptz null, add "reservation_id" uuid null;`);
    this.addSql(`
      alter table "purchases" add constraint "purchases_status_check"
        check ("status" in ('completed', 'cancelled'));`);
    this.addSql(`
      alter table "purchases" add constraint "purchases_cancellation_check"
        check (("status" = 'cancelled') = ("cancelled_at" is not null));`);
    this.addSql(`
      alter table "purchases" add constraint "purchases_reservation_id_unique" unique ("reservation_id");`);
    this.addSql(`
      alter table "purchases" add constraint "purchases_reservation_id_foreign"
        foreign key ("reservation_id") references "reservations" ("id")
        on update cascade on delete restrict;`);
    this.addSql(`
      alter table "reservations" add constraint "reservations_purchase_id_foreign"
        foreign key ("purchase_id") references "purchases" ("id")
        on update cascade on delete restrict;`);
  }

  override down(): void {
    this.addSql(`alter table "reservations" drop constraint "reservations_purchase_id_foreign";`);
    this.addSql(`
      alter table "purchases" drop constraint "purchases_reservation_id_foreign",
        drop constraint "purchases_reservation_id_unique", drop constraint "purchases_cancellation_check",
        drop constraint "purchases_status_check", drop column "reservation_id",
        drop column "cancelled_at", drop column "status";`);
    this.addSql(`drop table if exists "reservations";`);
    this.addSql(`
      alter table "ticket_options" drop constraint "ticket_options_within_allocation_check";`);
    this.addSql(`
      alter table "ticket_options" add constraint "ticket_options_purchased_check"
        check ("purchased" >= 0 and "purchased" <= "allocation");`);
    this.addSql(`alter table "ticket_options" drop column "held";`);
  }
}
