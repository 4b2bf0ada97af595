import { MikroORM } from '@mikro-orm/postgresql';
import { randomUUID } from 'node:crypto';
import { buildOrmOptions } from '../src/database/mikro-orm.config';
import { PostgresTicketOptionStore } from '../src/allocation/postgres-ticket-option.store';
import { runStatement } from '../src/database/sql';
(async () => {
  const orm = await MikroORM.init(buildOrmOptions({ databaseUrl: process.env.DATABASE_URL!, poolSize: 2 }));
  for (const mode of ['guarded', 'cas'] as const) {
  const store = new PostgresTicketOptionStore(orm, { actor: { commitMode: mode, maxWritesInFlight: 2 } } as any);
  const opt = randomUUID();
  await runStatement(orm, { text: `insert into ticket_options (id, name, allocation) values ($1, 'x', 10)`, values: [opt] });
  let st = (await store.load(opt))!;
  console.log('load', st);
  const user = randomUUID();
  const h1 = randomUUID(), h2 = randomUUID(), p1 = randomUUID();
  let out: any = await store.commit({ optionId: opt, expected: st, taken: 5, purchases: [{ id: p1, userId: user, quantity: 2 }], holds: [{ id: h1, userId: user, quantity: 2, ttlSeconds: 60 }, { id: h2, userId: user, quantity: 1, ttlSeconds: 1 }] });
  console.log('holds', out);
  st = { allocation: 10, purchased: out.purchased, held: out.held, version: out.version };
  const cp = randomUUID();
  out = await store.commit({ optionId: opt, expected: st, taken: 0, purchases: [], confirms: [{ reservationId: h1, purchaseId: cp }], cancels: [p1], releases: [h2] });
  console.log('confirm/cancel/release', out);
  st = { allocation: 10, purchased: out.purchased, held: out.held, version: out.version };
  out = await store.commit({ optionId: opt, expected: st, taken: 0, purchases: [], confirms: [{ reservationId: h2, purchaseId: randomUUID() }], cancels: [p1], releases: [h1] });
  console.log('again', out);
  st = { allocation: 10, purchased: out.purchased, held: out.held, version: out.version };
  out = await store.commit({ optionId: opt, expected: st, taken: 3, purchases: [{ id: randomUUID(), userId: user, quantity: 3 }] });
  console.log('plain', out);
  console.log('refresh', await store.refresh(opt));
  console.log('sweep', await store.expireDue(100));
  console.log((await runStatement(orm, { text: `select status, quantity, purchase_id is not null as p from reservations where ticket_option_id=$1`, values: [opt] })).rows);
  console.log((await runStatement(orm, { text: `select status, quantity, reservation_id is not null as r, cancelled_at is not null as c from purchases where ticket_option_id=$1`, values: [opt] })).rows);
  }
  await orm.close();
})().catch((e) => { console.error(e); process.exit(1); });
