import { Migration } from '@mikro-orm/migrations';

/**
 * Every completed key records the answer it replays (docs/design.md, Idempotency): purchase
 * commits now write the 201 document with the key, so replaying needs no knowledge of purchases.
 * Keys completed before (a purchase id, no body) get the document that 201 had, rebuilt once here.
 * The answer is kept as `json`, not `jsonb`: a replay is then the very bytes first sent.
 */
export class Migration20261201000000IdempotencyAnswers extends Migration {
  override up(): void {
    this.addSql(`
      update "idempotency_keys" k set "response_body" = jsonb_build_object('data', jsonb_build_object(
          'type', 'purchases', 'id', p."id",
          'attributes', jsonb_build_object('quantity', p."quantity"),
          'relationships', jsonb_build_object(
            'ticket_option', jsonb_build_object('data',
              jsonb_build_object('type', 'ticket_options', 'id', p."ticket_option_id")),
            'user', jsonb_build_object('data', jsonb_build_object('type', 'users', 'id', p."user_id"))),
          'links', jsonb_build_object('self', '/purchases/' || p."id")))
        from "purchases" p
       where p."id" = k."purchase_id" and k."response_body" is null;`);
    this.addSql(`
      alter table "idempotency_keys" alter column "response_body" type json using "response_body"::json;`);
    this.addSql(`
      alter table "idempotency_keys" add constraint "idempotency_keys_answer_check"
        check (("completed_at" is null) = ("response_body" is null));`);
  }

  override down(): void {
    this.addSql(`
      alter table "idempotency_keys" alter column "response_body" type jsonb using "response_body"::jsonb;`);
    this.addSql(
      `alter table "idempotency_keys" drop constraint if exists "idempotency_keys_answer_check";`,
    );
  }
}
