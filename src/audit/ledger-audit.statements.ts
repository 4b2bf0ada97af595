import type { Statement } from '../database/sql';

/**
 * The ledger audit's SQL (docs/design.md, Reservations: the invariant and its audit). Each
 * statement is one pass of grouped SQL over the whole tables (hash aggregates and joins, no
 * statement per option), so it scales with the table sizes, not with round trips. Both run in one
 * REPEATABLE READ snapshot (ledger-audit.ts), which is what makes counters and rows comparable
 * while the service keeps selling: every write moves a counter and its rows in one transaction.
 *
 * `$1` bounds how many violations each statement lists; the counts per kind are always complete.
 */

/**
 * Per option: the counters against the rows, and the bound.
 *
 * - `purchased` must equal SUM(quantity) of its purchases with status `completed` (a cancelled
 *   purchase returned its tickets).
 * - `held` must equal SUM(quantity) of its reservations with status `held`, expired or not:
 *   only a statement that changes a reservation's row (confirmation, release, the expiry sweep)
 *   moves the counter, so a hold past `expires_at` that nobody swept yet still counts. That is
 *   the counter's permitted over-count (the safe direction), and it implies the weaker rule
 *   `held >= SUM(quantity of holds held and unexpired)`. Overdue holds are reported, not judged.
 * - `0 <= purchased`, `0 <= held`, `purchased + held <= allocation` (in bigint).
 */
export const AUDIT_OPTIONS: Statement = {
  name: 'audit-ledger-options',
  text: `
WITH sold AS (
  SELECT ticket_option_id AS id,
         coalesce(sum(quantity) FILTER (WHERE status = 'completed'), 0)::bigint AS completed_quantity,
         count(*) FILTER (WHERE status = 'completed')::bigint AS completed,
         count(*) FILTER (WHERE status = 'cancelled')::bigint AS cancelled
    FROM purchases GROUP BY ticket_option_id
), holds AS (
  SELECT ticket_option_id AS id,
         coalesce(sum(quantity) FILTER (WHERE status = 'held'), 0)::bigint AS held_quantity,
         coalesce(sum(quantity) FILTER (WHERE status = 'held' AND expires_at <= now()), 0)::bigint
           AS overdue_quantity,
         count(*) FILTER (WHERE status = 'held')::bigint AS held,
         count(*) FILTER (WHERE status = 'confirmed')::bigint AS confirmed,
         count(*) FILTER (WHERE status = 'released')::bigint AS released,
         count(*) FILTER (WHERE status = 'expired')::bigint AS expired
    FROM reservations GROUP BY ticket_option_id
), judged AS (
  SELECT o.id, o.allocation, o.purchased, o.held,
         coalesce(s.completed_quantity, 0) AS completed_quantity,
         coalesce(h.held_quantity, 0) AS held_quantity,
         coalesce(h.overdue_quantity, 0) AS overdue_quantity,
         coalesce(s.completed, 0) AS purchases_completed,
         coalesce(s.cancelled, 0) AS purchases_cancelled,
         coalesce(h.held, 0) AS reservations_held,
         coalesce(h.confirmed, 0) AS reservations_confirmed,
         coalesce(h.released, 0) AS reservations_released,
         coalesce(h.expired, 0) AS reservations_expired,
         array_remove(ARRAY[
           CASE WHEN o.purchased <> coalesce(s.completed_quantity, 0) THEN 'purchased_counter' END,
           CASE WHEN o.held <> coalesce(h.held_quantity, 0) THEN 'held_counter' END,
           CASE WHEN o.purchased < 0 OR o.held < 0
                  OR o.purchased::bigint + o.held > o.allocation THEN 'allocation_bound' END
         ], NULL) AS kinds
    FROM ticket_options o
    LEFT JOIN sold s ON s.id = o.id
    LEFT JOIN holds h ON h.id = o.id
)
SELECT now() AS checked_at,
       count(*) AS options,
       coalesce(sum(allocation), 0) AS allocation,
       coalesce(sum(purchased), 0) AS purchased_counter,
       coalesce(sum(completed_quantity), 0) AS completed_quantity,
       coalesce(sum(held), 0) AS held_counter,
       coalesce(sum(held_quantity), 0) AS held_quantity,
       coalesce(sum(overdue_quantity), 0) AS overdue_held_quantity,
       coalesce(sum(purchases_completed), 0) AS purchases_completed,
       coalesce(sum(purchases_cancelled), 0) AS purchases_cancelled,
       coalesce(sum(reservations_held), 0) AS reservations_held,
       coalesce(sum(reservations_confirmed), 0) AS reservations_confirmed,
       coalesce(sum(reservations_released), 0) AS reservations_released,
       coalesce(sum(reservations_expired), 0) AS reservations_expired,
       (SELECT coalesce(json_object_agg(kind, n), '{}')
          FROM (SELECT kind, count(*) AS n FROM judged, unnest(kinds) AS kind GROUP BY kind) c
       ) AS counts,
       (SELECT coalesce(json_agg(v ORDER BY v."optionId", v.kind), '[]')
          FROM (SELECT kind, j.id AS "optionId", NULL::uuid AS "reservationId",
                       NULL::uuid AS "purchaseId",
                       json_build_object('allocation', j.allocation, 'purchased', j.purchased,
                         'held', j.held, 'completedQuantity', j.completed_quantity,
                         'heldQuantity', j.held_quantity, 'overdueHeldQuantity', j.overdue_quantity
                       ) AS figures
                  FROM judged j, unnest(j.kinds) AS kind
                 ORDER BY j.id, kind LIMIT $1) v
       ) AS listed
  FROM judged`,
};

/**
 * The cross references between reservations and purchases:
 *
 * - a confirmed reservation names a purchase that exists, is the one and only purchase naming
 *   it back (`purchases.reservation_id`), and has its quantity, option and user;
 * - a purchase with a `reservation_id` points at an existing, confirmed reservation that names
 *   that very purchase;
 * - a reservation that is not confirmed has no purchase, in either direction.
 *
 * The schema's foreign keys, unique constraints and CHECKs make most of these impossible; the
 * audit checks them anyway, as the last word on the data rather than on the schema.
 */
export const AUDIT_CROSS_REFERENCES: Statement = {
  name: 'audit-ledger-cross-references',
  text: `
WITH naming AS (
  SELECT reservation_id AS id, count(*) AS n
    FROM purchases WHERE reservation_id IS NOT NULL GROUP BY reservation_id
), reservation_side AS (
  SELECT r.ticket_option_id AS option_id, r.id AS reservation_id, r.purchase_id,
         array_remove(ARRAY[
           CASE WHEN r.status = 'confirmed' AND r.purchase_id IS NULL
                THEN 'confirmed_without_purchase' END,
           CASE WHEN r.status = 'confirmed' AND r.purchase_id IS NOT NULL AND p.id IS NULL
                THEN 'confirmed_purchase_missing' END,
           CASE WHEN r.status = 'confirmed' AND coalesce(n.n, 0) <> 1
                THEN 'confirmed_purchase_count' END,
           CASE WHEN r.status = 'confirmed' AND p.reservation_id IS DISTINCT FROM r.id
                 AND p.id IS NOT NULL THEN 'purchase_not_pointing_back' END,
           CASE WHEN r.status = 'confirmed' AND (p.quantity <> r.quantity
                  OR p.ticket_option_id <> r.ticket_option_id OR p.user_id <> r.user_id)
                THEN 'confirmed_purchase_mismatch' END,
           CASE WHEN r.status <> 'confirmed' AND (r.purchase_id IS NOT NULL OR n.id IS NOT NULL)
                THEN 'unconfirmed_reservation_with_purchase' END
         ], NULL) AS kinds
    FROM reservations r
    LEFT JOIN purchases p ON p.id = r.purchase_id
    LEFT JOIN naming n ON n.id = r.id
   WHERE r.status = 'confirmed' OR r.purchase_id IS NOT NULL OR n.id IS NOT NULL
), purchase_side AS (
  SELECT p.ticket_option_id AS option_id, p.reservation_id, p.id AS purchase_id,
         array_remove(ARRAY[
           CASE WHEN r.id IS NULL THEN 'purchase_reservation_missing' END,
           CASE WHEN r.status <> 'confirmed' THEN 'purchase_of_unconfirmed_reservation' END,
           CASE WHEN r.purchase_id IS DISTINCT FROM p.id AND r.id IS NOT NULL
                THEN 'reservation_not_naming_purchase' END
         ], NULL) AS kinds
    FROM purchases p
    LEFT JOIN reservations r ON r.id = p.reservation_id
   WHERE p.reservation_id IS NOT NULL
), found AS (
  SELECT kind, option_id, reservation_id, purchase_id
    FROM reservation_side, unnest(kinds) AS kind
  UNION ALL
  SELECT kind, option_id, reservation_id, purchase_id
    FROM purchase_side, unnest(kinds) AS kind
)
SELECT (SELECT coalesce(json_object_agg(kind, n), '{}')
          FROM (SELECT kind, count(*) AS n FROM found GROUP BY kind) c) AS counts,
       (SELECT coalesce(json_agg(v ORDER BY v."optionId", v.kind, v."reservationId", v."purchaseId"), '[]')
          FROM (SELECT kind, option_id AS "optionId", reservation_id AS "reservationId",
                       purchase_id AS "purchaseId", NULL::json AS figures
                  FROM found
                 ORDER BY option_id, kind, reservation_id, purchase_id LIMIT $1) v
       ) AS listed`,
};

/** The snapshot both statements share, on a plain pool (the ORM opens the same one itself). */
export const BEGIN_SNAPSHOT = 'BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY';
