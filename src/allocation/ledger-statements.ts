import type { QueryConfig } from 'pg';
import { isoUtcSql } from '../database/sql';
import type { CommitMode } from './ticket-option.store';

/**
 * The SQL that moves the counters of `ticket_options` (docs/design.md, Actor and commit;
 * Reservations), in one place. Every statement that changes a reservation or cancels a purchase
 * first locks the option rows it touches, in id order, so that writers (actors of every instance,
 * the expiry sweeps) never wait for each other in opposite orders. The locks are `FOR NO KEY
 * UPDATE`, what an UPDATE of non-key columns takes anyway: the foreign-key checks of other
 * instances' inserts (`FOR KEY SHARE` on the option row) do not wait for them.
 */
export type NamedStatement = Omit<QueryConfig, 'values'>;

/**
 * The capacity guard adds in `bigint`: with a stale cache, `purchased + held + taken` of values
 * near 2^31 would overflow `integer` and abort the statement; in `bigint` it is just a refused
 * guard, and the actor re-decides against the fresh row.
 */
function guardOf(mode: CommitMode, taken: string): string {
  return mode === 'guarded'
    ? `t.purchased::bigint + t.held + ${taken} <= t.allocation`
    : 't.version = d.expected_version';
}

/**
 * Direct purchases only (the brief's route, the hot path): ONE statement (one round trip, one
 * transaction, one WAL flush) commits the batches of one or many options. Per option it is all or
 * nothing: the option row is bumped only if its guard holds, and only the purchases (and
 * idempotency completions) of bumped options are inserted. Options whose guard failed come back
 * without a row.
 *
 * - `$1..$3`: per option: id, tickets taken, the version the actor decided against.
 * - `$4..$7`: per purchase: id, option id, user id, quantity (`$8..$10`: idempotency key, claim
 *   and the answer to record for it).
 *
 * With several options, rows are locked in id order first, so that two instances committing
 * overlapping sets of options cannot deadlock. The UPDATE re-checks its guard on the newest row
 * version (READ COMMITTED re-evaluation), which is what makes both guards safe without a lock wait
 * before the statement.
 */
export function purchaseStatement(
  mode: CommitMode,
  multiOption: boolean,
  keyed: boolean,
): NamedStatement {
  const lock = multiOption
    ? `, locked AS (
      SELECT t.id FROM ticket_options t JOIN d ON d.id = t.id ORDER BY t.id FOR NO KEY UPDATE OF t
    )`
    : '';
  const purchaseColumns = keyed
    ? `unnest($4::uuid[], $5::uuid[], $6::uuid[], $7::int[], $8::text[], $9::uuid[], $10::text[])
         AS p(id, option_id, user_id, quantity, idem_key, idem_claim, idem_body)`
    : 'unnest($4::uuid[], $5::uuid[], $6::uuid[], $7::int[]) AS p(id, option_id, user_id, quantity)';
  // A keyed purchase commits only with its claim. The claims still held are locked first (a
  // takeover after our snapshot is seen: FOR UPDATE re-reads the newest row); an option with a
  // purchase whose claim was taken over is not bumped at all, and that purchase comes back as
  // `lost`, so the other options of the statement still commit and the option re-decides without it.
  const claims = keyed
    ? `, claimed AS (
      SELECT k.key FROM idempotency_keys k JOIN p ON k.key = p.idem_key
       WHERE k.claim = p.idem_claim AND k.completed_at IS NULL
       ORDER BY k.key FOR UPDATE OF k
    ), lost AS (
      SELECT p.id, p.option_id FROM p
       WHERE p.idem_key IS NOT NULL AND p.idem_key NOT IN (SELECT key FROM claimed)
    )`
    : '';
  const notLost = keyed ? ' AND t.id NOT IN (SELECT option_id FROM lost)' : '';
  // Every claim of a bumped option was locked above, so this completes all of them; if it ever
  // did not, the division by zero aborts the statement (nothing written; every batch re-decides).
  const keyedCte = keyed
    ? `, keyed AS (
      UPDATE idempotency_keys k
         SET purchase_id = p.id, response_status = 201, response_body = p.idem_body::json,
             completed_at = now()
        FROM p JOIN bumped b ON b.id = p.option_id
       WHERE p.idem_key IS NOT NULL AND k.key = p.idem_key AND k.claim = p.idem_claim
         AND k.completed_at IS NULL
      RETURNING 1
    )`
    : '';
  const keyedCheck = keyed
    ? `WHERE 1 / (CASE WHEN (SELECT count(*) FROM keyed) =
        (SELECT count(*) FROM p JOIN bumped b ON b.id = p.option_id WHERE p.idem_key IS NOT NULL)
        THEN 1 ELSE 0 END) = 1`
    : '';
  const lostRows = keyed
    ? `
    UNION ALL
    SELECT 'lost', l.id, l.option_id, NULL, NULL, NULL, NULL, NULL, NULL, NULL FROM lost l`
    : '';
  return {
    name: `allocation-commit-${mode}${multiOption ? '-multi' : ''}${keyed ? '-keyed' : ''}`,
    text: `
    WITH d AS (
      SELECT * FROM unnest($1::uuid[], $2::int[], $3::int[]) AS d(id, taken, expected_version)
    ), p AS (
      SELECT * FROM ${purchaseColumns}
    )${lock}${claims}, bumped AS (
      UPDATE ticket_options t
         SET purchased = t.purchased + d.taken, version = t.version + 1, updated_at = now()
        FROM d${multiOption ? ' JOIN locked l ON l.id = d.id' : ''}
       WHERE t.id = d.id AND ${guardOf(mode, 'd.taken')}${notLost}
      RETURNING t.id, t.purchased, t.held, t.version, t.updated_at
    ), inserted AS (
      INSERT INTO purchases (id, ticket_option_id, user_id, quantity, created_at, updated_at)
      SELECT p.id, p.option_id, p.user_id, p.quantity, b.updated_at, b.updated_at
        FROM p JOIN bumped b ON b.id = p.option_id
      RETURNING ticket_option_id
    )${keyedCte}
    SELECT 'option' AS kind, b.id, b.id AS option_id, b.purchased, b.held, b.version,
           ${isoUtcSql('b.updated_at')} AS at, NULL::text AS created_at, NULL::text AS status,
           (SELECT count(*) FROM inserted i WHERE i.ticket_option_id = b.id)::int AS inserted
      FROM bumped b
    ${keyedCheck}${lostRows}`,
  };
}

/** Which kinds of operation a ledger statement carries (each kind adds its parameters and CTEs). */
export interface LedgerShape {
  purchases: boolean;
  holds: boolean;
  confirms: boolean;
  releases: boolean;
  cancels: boolean;
  keyed: boolean;
}

/** One letter per kind, for the prepared statement's name (one name per distinct text). */
const SHAPE_LETTERS: Record<keyof LedgerShape, string> = {
  purchases: 'p',
  holds: 'h',
  confirms: 'c',
  releases: 'r',
  cancels: 'x',
  keyed: 'k',
};

/** The parameter arrays of a ledger statement, in order, by name. */
export const LEDGER_PARAMETERS = {
  options: ['uuid', 'int', 'int', 'int'], // id, sold taken, held taken, expected version
  purchases: ['uuid', 'uuid', 'uuid', 'int'], // id, option id, user id, quantity
  holds: ['uuid', 'uuid', 'uuid', 'int', 'int'], // id, option id, user id, quantity, ttl seconds
  confirms: ['uuid', 'uuid', 'uuid'], // reservation id, option id, new purchase id
  releases: ['uuid', 'uuid'], // reservation id, option id
  cancels: ['uuid', 'uuid'], // purchase id, option id
  keyed: ['uuid', 'uuid', 'text', 'uuid', 'text'], // created id, option id, key, claim, answer
} as const;

type Group = keyof typeof LEDGER_PARAMETERS;

function unnest(group: Group, first: number, columns: string): string {
  const casts = LEDGER_PARAMETERS[group].map((type, i) => `$${first + i}::${type}[]`);
  return `unnest(${casts.join(', ')}) AS ${columns}`;
}

/** The groups of parameters a shape sends, in order (the store sends values in the same order). */
export function ledgerGroups(shape: LedgerShape): Group[] {
  const order: Group[] = ['purchases', 'holds', 'confirms', 'releases', 'cancels', 'keyed'];
  return ['options', ...order.filter((group) => shape[group as keyof LedgerShape])];
}

/**
 * Everything else an actor commits: purchases, holds, confirmations, releases, cancellations (and
 * their idempotency completions), for one or many options, in ONE statement. The option rows
 * whose guard holds are locked first, in id order; every change below is limited to locked
 * options, and the counters move by what was actually changed:
 * `purchased += purchases + confirmed - cancelled`, `held += holds - confirmed - released`.
 * Confirms and releases change a reservation only if it is held (re-checked on the newest row
 * version); a due hold is never confirmed (`expires_at` against the database clock of this very
 * statement).
 * Each row comes back: `option` (bumped), `lost` (claim taken over), `hold` (its times), `target`
 * (changed, unchanged, or `recheck-*`: the store reads why it did not change).
 */
export function ledgerStatement(mode: CommitMode, shape: LedgerShape): NamedStatement {
  const ctes: string[] = [];
  const rows: string[] = [];
  let next = 1;
  const params = (group: Group, columns: string) => {
    const sql = unnest(group, next, columns);
    next += LEDGER_PARAMETERS[group].length;
    return sql;
  };
  ctes.push(`d AS (SELECT * FROM ${params('options', 'd(id, sold, hold, expected_version)')})`);
  if (shape.purchases) {
    ctes.push(`p AS (SELECT * FROM ${params('purchases', 'p(id, option_id, user_id, quantity)')})`);
  }
  if (shape.holds) {
    ctes.push(
      `h AS (SELECT * FROM ${params('holds', 'h(id, option_id, user_id, quantity, ttl)')})`,
    );
  }
  if (shape.confirms) {
    ctes.push(
      `c AS (SELECT * FROM ${params('confirms', 'c(reservation_id, option_id, purchase_id)')})`,
    );
  }
  if (shape.releases) {
    ctes.push(`rl AS (SELECT * FROM ${params('releases', 'rl(reservation_id, option_id)')})`);
  }
  if (shape.cancels) {
    ctes.push(`x AS (SELECT * FROM ${params('cancels', 'x(purchase_id, option_id)')})`);
  }
  if (shape.keyed) {
    ctes.push(
      `k AS (SELECT * FROM ${params('keyed', 'k(id, option_id, idem_key, idem_claim, idem_body)')})`,
      `claimed AS (SELECT ik.key FROM idempotency_keys ik JOIN k ON ik.key = k.idem_key
        WHERE ik.claim = k.idem_claim AND ik.completed_at IS NULL ORDER BY ik.key FOR UPDATE OF ik)`,
      `lost AS (SELECT k.id, k.option_id FROM k WHERE k.idem_key NOT IN (SELECT key FROM claimed))`,
    );
    rows.push(
      `SELECT 'lost', l.id, l.option_id, NULL, NULL, NULL, NULL, NULL, NULL, NULL FROM lost l`,
    );
  }
  ctes.push(`locked AS MATERIALIZED (
      SELECT t.id FROM ticket_options t JOIN d ON d.id = t.id
       WHERE ${guardOf(mode, 'd.sold + d.hold')}${shape.keyed ? ' AND t.id NOT IN (SELECT option_id FROM lost)' : ''}
       ORDER BY t.id FOR NO KEY UPDATE OF t)`);
  const moved: string[] = [];
  if (shape.confirms) addConfirms(ctes, rows, moved);
  if (shape.releases) addReleases(ctes, rows, moved);
  if (shape.cancels) addCancels(ctes, rows, moved);
  const created: string[] = [];
  if (shape.purchases) {
    ctes.push(`inserted AS (
      INSERT INTO purchases (id, ticket_option_id, user_id, quantity, created_at, updated_at)
      SELECT p.id, p.option_id, p.user_id, p.quantity, now(), now()
        FROM p JOIN locked l ON l.id = p.option_id
      RETURNING id, ticket_option_id)`);
    created.push(
      'SELECT id, NULL::timestamptz AS expires_at, NULL::timestamptz AS created_at FROM inserted',
    );
  }
  if (shape.holds) {
    ctes.push(`holds_in AS (
      INSERT INTO reservations (id, ticket_option_id, user_id, quantity, expires_at, created_at, updated_at)
      SELECT h.id, h.option_id, h.user_id, h.quantity,
             date_trunc('milliseconds', now()) + make_interval(secs => h.ttl),
             date_trunc('milliseconds', now()), now()
        FROM h JOIN locked l ON l.id = h.option_id
      RETURNING id, ticket_option_id, expires_at, created_at)`);
    created.push('SELECT id, expires_at, created_at FROM holds_in');
    rows.push(`SELECT 'hold', hi.id, hi.ticket_option_id, NULL, NULL, NULL, ${isoUtcSql('hi.expires_at')},
                      ${isoUtcSql('hi.created_at')}, NULL, NULL FROM holds_in hi`);
  }
  if (shape.confirms) {
    created.push(
      'SELECT id, NULL::timestamptz AS expires_at, NULL::timestamptz AS created_at FROM confirmed_purchases',
    );
  }
  ctes.push(bumpedCte(moved));
  let check = '';
  if (shape.keyed) {
    ctes.push(`created AS (${created.join(' UNION ALL ')})`, keyedCte());
    check = `WHERE 1 / (CASE WHEN (SELECT count(*) FROM keyed) =
        (SELECT count(*) FROM k JOIN created cr ON cr.id = k.id) THEN 1 ELSE 0 END) = 1`;
  }
  const inserted = shape.purchases
    ? '(SELECT count(*) FROM inserted i WHERE i.ticket_option_id = b.id)::int'
    : '0';
  const optionRow = `SELECT 'option' AS kind, b.id, b.id AS option_id, b.purchased, b.held, b.version,
           ${isoUtcSql('b.updated_at')} AS at, NULL::text AS created_at, NULL::text AS status,
           ${inserted} AS inserted
      FROM bumped b ${check}`;
  const name = (Object.keys(SHAPE_LETTERS) as Array<keyof LedgerShape>)
    .filter((kind) => shape[kind])
    .map((kind) => SHAPE_LETTERS[kind])
    .join('');
  return {
    name: `ledger-commit-${mode}-${name}`,
    text: `WITH ${ctes.join(',\n    ')}\n    ${[optionRow, ...rows].join('\n    UNION ALL ')}`,
  };
}

/**
 * A confirm changes its reservation only if it is still held and not due, re-checked on the
 * newest row version (the UPDATE's READ COMMITTED re-evaluation, under the option's lock): no
 * separate row lock is needed. One that did not change comes back as `recheck-confirm`: the store
 * reads why (expired, released, confirmed) after the statement, from committed rows.
 */
function addConfirms(ctes: string[], rows: string[], moved: string[]): void {
  ctes.push(
    `confirmed AS (
      UPDATE reservations r SET status = 'confirmed', purchase_id = c.purchase_id, updated_at = now()
        FROM c JOIN locked l ON l.id = c.option_id
       WHERE r.id = c.reservation_id AND r.ticket_option_id = c.option_id
         AND r.status = 'held' AND r.expires_at > now()
      RETURNING r.id, r.ticket_option_id, r.user_id, r.quantity, c.purchase_id)`,
    `confirmed_purchases AS (
      INSERT INTO purchases (id, ticket_option_id, user_id, quantity, reservation_id, created_at, updated_at)
      SELECT cf.purchase_id, cf.ticket_option_id, cf.user_id, cf.quantity, cf.id, now(), now()
        FROM confirmed cf
      RETURNING id, ticket_option_id)`,
  );
  rows.push(`SELECT 'target', c.reservation_id, c.option_id, NULL, NULL, NULL, NULL, NULL,
                    CASE WHEN cf.id IS NOT NULL THEN 'changed' ELSE 'recheck-confirm' END, NULL
               FROM c JOIN locked l ON l.id = c.option_id
               LEFT JOIN confirmed cf ON cf.id = c.reservation_id`);
  moved.push('confirmed:+purchased:-held');
}

/** A release, likewise: `unchanged` for a due hold (now expired), `recheck-release` otherwise. */
function addReleases(ctes: string[], rows: string[], moved: string[]): void {
  ctes.push(
    `released AS (
      UPDATE reservations r
         SET status = CASE WHEN r.expires_at <= now() THEN 'expired' ELSE 'released' END,
             updated_at = now()
        FROM rl JOIN locked l ON l.id = rl.option_id
       WHERE r.id = rl.reservation_id AND r.ticket_option_id = rl.option_id AND r.status = 'held'
      RETURNING r.id, r.ticket_option_id, r.quantity, r.status)`,
  );
  rows.push(`SELECT 'target', rl.reservation_id, rl.option_id, NULL, NULL, NULL, NULL, NULL,
                    CASE WHEN rs.status = 'released' THEN 'changed'
                         WHEN rs.id IS NOT NULL THEN 'unchanged' ELSE 'recheck-release' END, NULL
               FROM rl JOIN locked l ON l.id = rl.option_id
               LEFT JOIN released rs ON rs.id = rl.reservation_id`);
  moved.push('released:-held');
}

function addCancels(ctes: string[], rows: string[], moved: string[]): void {
  ctes.push(
    `cancelled AS (
      UPDATE purchases pu SET status = 'cancelled', cancelled_at = now(), updated_at = now()
        FROM x JOIN locked l ON l.id = x.option_id
       WHERE pu.id = x.purchase_id AND pu.ticket_option_id = x.option_id AND pu.status = 'completed'
      RETURNING pu.id, pu.ticket_option_id, pu.quantity)`,
    `cancel_rows AS (
      SELECT pu.id FROM purchases pu JOIN x ON x.purchase_id = pu.id AND x.option_id = pu.ticket_option_id
        JOIN locked l ON l.id = x.option_id)`,
  );
  rows.push(`SELECT 'target', cx.id, NULL, NULL, NULL, NULL, NULL, NULL,
                    CASE WHEN cn.id IS NOT NULL THEN 'changed' ELSE 'unchanged' END, NULL
               FROM cancel_rows cx LEFT JOIN cancelled cn ON cn.id = cx.id`);
  moved.push('cancelled:-purchased');
}

/** The option rows, moved by what this statement took and by what its other CTEs changed. */
function bumpedCte(moved: string[]): string {
  let purchased = 't.purchased + d.sold';
  let held = 't.held + d.hold';
  const joins: string[] = [];
  for (const entry of moved) {
    const [cte, ...effects] = entry.split(':');
    joins.push(`LEFT JOIN (SELECT ticket_option_id AS id, sum(quantity)::int AS q FROM ${cte}
                 GROUP BY 1) m_${cte} ON m_${cte}.id = d.id`);
    for (const effect of effects) {
      const term = `${effect[0]} coalesce(m_${cte}.q, 0)`;
      if (effect.endsWith('purchased')) purchased += ` ${term}`;
      else held += ` ${term}`;
    }
  }
  return `bumped AS (
      UPDATE ticket_options t
         SET purchased = ${purchased}, held = ${held}, version = t.version + 1, updated_at = now()
        FROM d JOIN locked l ON l.id = d.id ${joins.join(' ')}
       WHERE t.id = d.id
      RETURNING t.id, t.purchased, t.held, t.version, t.updated_at)`;
}

/** Completes the claims of what was created, with the answer (a hold's times filled in). */
function keyedCte(): string {
  const time = (column: string) => `'"' || ${isoUtcSql(`cr.${column}`)} || '"'`;
  return `keyed AS (
      UPDATE idempotency_keys ik
         SET purchase_id = CASE WHEN cr.expires_at IS NULL THEN cr.id END, response_status = 201,
             response_body = CASE WHEN cr.expires_at IS NULL THEN k.idem_body
               ELSE replace(replace(k.idem_body, '"@expires_at@"', ${time('expires_at')}),
                            '"@created_at@"', ${time('created_at')}) END::json,
             completed_at = now()
        FROM k JOIN created cr ON cr.id = k.id
       WHERE ik.key = k.idem_key AND ik.claim = k.idem_claim AND ik.completed_at IS NULL
      RETURNING 1)`;
}

/** Why confirms or releases changed nothing: the reservations as committed now. */
export const RESERVATION_STATES: NamedStatement = {
  name: 'reservations-states',
  text: `SELECT id, status, expires_at <= now() AS due FROM reservations WHERE id = ANY($1::uuid[])`,
};

export const LOAD_STATE: NamedStatement = {
  name: 'allocation-load-state',
  text: 'SELECT allocation, purchased, held, version FROM ticket_options WHERE id = $1',
};

/**
 * The newest state of one option, its due holds expired first (what a refusal is decided
 * against). The row lock makes the values the committed ones, not those of the snapshot.
 */
export const REFRESH_STATE: NamedStatement = {
  name: 'allocation-refresh-state',
  text: `
    WITH locked AS MATERIALIZED (
      SELECT id, allocation, purchased, held, version FROM ticket_options WHERE id = $1 FOR NO KEY UPDATE
    ), expired AS (
      UPDATE reservations r SET status = 'expired', updated_at = now()
        FROM locked l
       WHERE r.ticket_option_id = l.id AND r.status = 'held' AND r.expires_at <= now()
      RETURNING r.quantity
    ), gone AS (
      SELECT coalesce(sum(quantity), 0)::int AS q, count(*)::int AS n FROM expired
    ), bumped AS (
      UPDATE ticket_options t SET held = t.held - g.q, version = t.version + 1, updated_at = now()
        FROM gone g, locked l
       WHERE t.id = l.id AND g.n > 0
      RETURNING t.held, t.version
    )
    SELECT l.allocation, l.purchased, coalesce(b.held, l.held) AS held,
           coalesce(b.version, l.version) AS version, g.n AS "expiredHolds"
      FROM locked l CROSS JOIN gone g LEFT JOIN bumped b ON true`,
};

/**
 * The expiry sweep (every instance, periodically): the options with the oldest due holds are
 * locked (those another writer holds right now are skipped: their next refusal or the next sweep
 * expires them), their due holds expired and `held` given back, in one statement.
 */
export const EXPIRE_DUE: NamedStatement = {
  name: 'reservations-expire-due',
  text: `
    WITH due AS (
      SELECT DISTINCT ticket_option_id AS id FROM (
        SELECT ticket_option_id FROM reservations
         WHERE status = 'held' AND expires_at <= now() ORDER BY expires_at LIMIT $1) s
    ), locked AS MATERIALIZED (
      SELECT t.id FROM ticket_options t JOIN due ON due.id = t.id
       ORDER BY t.id FOR NO KEY UPDATE OF t SKIP LOCKED
    ), expired AS (
      UPDATE reservations r SET status = 'expired', updated_at = now()
        FROM locked l
       WHERE r.ticket_option_id = l.id AND r.status = 'held' AND r.expires_at <= now()
      RETURNING r.ticket_option_id, r.quantity
    ), sums AS (
      SELECT ticket_option_id AS id, sum(quantity)::int AS q, count(*)::int AS n
        FROM expired GROUP BY 1
    ), bumped AS (
      UPDATE ticket_options t SET held = t.held - s.q, version = t.version + 1, updated_at = now()
        FROM sums s WHERE t.id = s.id
      RETURNING t.id
    )
    SELECT s.id AS "optionId", s.q AS tickets, s.n AS holds FROM sums s JOIN bumped b ON b.id = s.id`,
};
