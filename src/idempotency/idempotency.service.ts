import { EntityManager, MikroORM } from '@mikro-orm/postgresql';
import { Inject, Injectable, Logger, OnModuleDestroy, OnModuleInit } from '@nestjs/common';
import { randomUUID } from 'node:crypto';
import type { IdempotencyClaim } from '../allocation/ticket-option.store';
import { DomainError, UnavailableError } from '../common/domain.error';
import { APP_CONFIG } from '../config/config.module';
import type { AppConfig } from '../config/app-config';
import { runStatement } from '../database/sql';
import { purchaseDocument, purchasePath } from '../purchases/purchase.document';
import { ticketOptionPath } from '../ticket-options/ticket-option.document';

/**
 * How long a claim protects a request that is being processed. Far longer than any commit (they
 * are bounded by the statement timeout); past it, a retry with the same body may take the claim
 * over, which is safe because a claim is only ever completed together with what it created.
 */
const CLAIM_LEASE_SECONDS = 60;
const PURGE_INTERVAL_MS = 10 * 60_000;
const PURGE_CHUNK = 5_000;

/** Claims the key, or takes over an expired row or a stale claim of the same request. */
const CLAIM = {
  name: 'idempotency-claim',
  text: `
    INSERT INTO idempotency_keys AS k (key, fingerprint, claim) VALUES ($1, $2, $3)
    ON CONFLICT (key) DO UPDATE
       SET fingerprint = excluded.fingerprint, claim = excluded.claim, locked_at = now(),
           created_at = now(), completed_at = NULL, response_status = NULL, response_body = NULL,
           purchase_id = NULL, ticket_option_id = NULL
     WHERE k.created_at < now() - make_interval(secs => $4)
        OR (k.completed_at IS NULL AND k.fingerprint = excluded.fingerprint
            AND k.locked_at < now() - make_interval(secs => $5))
    RETURNING k.claim`,
};

const READ = {
  name: 'idempotency-read',
  text: `
    SELECT k.fingerprint, k.completed_at, k.response_status, k.response_body, k.ticket_option_id,
           p.id AS purchase_id, p.ticket_option_id AS purchase_option_id, p.user_id, p.quantity
      FROM idempotency_keys k LEFT JOIN purchases p ON p.id = k.purchase_id
     WHERE k.key = $1`,
};

const COMPLETE = {
  name: 'idempotency-complete',
  text: `
    UPDATE idempotency_keys SET completed_at = now(), response_status = $3, response_body = $4
     WHERE key = $1 AND claim = $2 AND completed_at IS NULL`,
};

const RELEASE = {
  name: 'idempotency-release',
  text: 'DELETE FROM idempotency_keys WHERE key = $1 AND claim = $2 AND completed_at IS NULL',
};

const PURGE = {
  name: 'idempotency-purge',
  text: `
    DELETE FROM idempotency_keys WHERE key IN (
      SELECT key FROM idempotency_keys WHERE created_at < now() - make_interval(secs => $1)
       LIMIT ${PURGE_CHUNK})`,
};

interface KeyRow {
  fingerprint: string;
  completed_at: Date | null;
  response_status: number | null;
  response_body: unknown;
  ticket_option_id: string | null;
  purchase_id: string | null;
  purchase_option_id: string | null;
  user_id: string | null;
  quantity: number | null;
}

/** The original answer to send again, with `Idempotent-Replayed: true`. */
export interface Replay {
  status: number;
  body: unknown;
  location?: string;
}

export type Begin = { claimed: IdempotencyClaim } | { replay: Replay };

/**
 * Idempotency keys (SPEC §2), stored in PostgreSQL so that every instance sees them. A request
 * with a key first claims it; what the request creates completes the claim in the same
 * transaction (the purchase commit, the ticket option insert), so a key is never completed
 * without its effect nor the effect written without its key. Refusals that are final are
 * completed too; anything else releases the claim so that a retry runs again.
 */
@Injectable()
export class IdempotencyService implements OnModuleInit, OnModuleDestroy {
  private readonly logger = new Logger(IdempotencyService.name);
  private purgeTimer: NodeJS.Timeout | undefined;
  private readonly retentionSeconds: number;

  constructor(
    private readonly orm: MikroORM,
    @Inject(APP_CONFIG) config: AppConfig,
  ) {
    this.retentionSeconds = config.idempotencyRetentionHours * 3600;
  }

  onModuleInit(): void {
    this.purgeTimer = setInterval(() => {
      this.purgeExpired().catch((error: unknown) =>
        this.logger.warn(`purging expired idempotency keys failed: ${String(error)}`),
      );
    }, PURGE_INTERVAL_MS);
    this.purgeTimer.unref();
  }

  onModuleDestroy(): void {
    clearInterval(this.purgeTimer);
  }

  async begin(key: string, fingerprint: string): Promise<Begin> {
    // Two rounds at most: the row read after a lost claim may be purged before we read it.
    for (let round = 0; round < 2; round++) {
      const claim = randomUUID();
      const claimed = await runStatement(this.orm, {
        ...CLAIM,
        values: [key, fingerprint, claim, this.retentionSeconds, CLAIM_LEASE_SECONDS],
      });
      if (claimed.rowCount === 1) return { claimed: { key, claim } };

      const [row] = (await runStatement<KeyRow>(this.orm, { ...READ, values: [key] })).rows;
      if (!row) continue;
      if (row.fingerprint !== fingerprint) {
        throw new DomainError({
          code: 'idempotency_key_reused',
          detail: 'This Idempotency-Key was already used with a different request.',
          source: { parameter: 'Idempotency-Key' },
        });
      }
      if (row.completed_at === null) {
        throw new DomainError({
          code: 'idempotency_key_in_flight',
          detail: 'A request with this Idempotency-Key is still being processed; retry shortly.',
          source: { parameter: 'Idempotency-Key' },
        });
      }
      return { replay: replayOf(row) };
    }
    throw new UnavailableError('The Idempotency-Key could not be claimed; retry.');
  }

  /** Records a final answer that created nothing (e.g. a justified refusal). */
  async complete(claim: IdempotencyClaim, status: number, body: unknown): Promise<void> {
    await runStatement(this.orm, {
      ...COMPLETE,
      values: [claim.key, claim.claim, status, JSON.stringify(body)],
    });
  }

  /**
   * Completes the claim inside the caller's transaction with what it created; throws (so the
   * transaction rolls back) if the claim was taken over meanwhile.
   */
  async completeWithin(
    em: EntityManager,
    claim: IdempotencyClaim,
    answer: { status: number; body: unknown; ticketOptionId: string },
  ): Promise<void> {
    const result = await em.getConnection().execute<{ affectedRows: number }>(
      `UPDATE idempotency_keys
            SET completed_at = now(), response_status = ?, response_body = ?, ticket_option_id = ?
          WHERE key = ? AND claim = ? AND completed_at IS NULL`,
      [answer.status, JSON.stringify(answer.body), answer.ticketOptionId, claim.key, claim.claim],
      'run',
      em.getTransactionContext(),
    );
    if (result.affectedRows !== 1) {
      throw new UnavailableError('The Idempotency-Key claim was lost; retry.');
    }
  }

  /** Forgets an unfinished claim so that a retry processes the request again. */
  async release(claim: IdempotencyClaim): Promise<void> {
    await runStatement(this.orm, { ...RELEASE, values: [claim.key, claim.claim] });
  }

  /** Deletes keys older than the retention; returns how many. */
  async purgeExpired(): Promise<number> {
    let total = 0;
    for (;;) {
      const { rowCount } = await runStatement(this.orm, {
        ...PURGE,
        values: [this.retentionSeconds],
      });
      total += rowCount;
      if (rowCount < PURGE_CHUNK) return total;
    }
  }
}

function replayOf(row: KeyRow): Replay {
  if (row.purchase_id !== null) {
    // A purchase never changes: its document is rebuilt from the row, identical to the original.
    return {
      status: row.response_status ?? 201,
      body: purchaseDocument({
        id: row.purchase_id,
        ticketOptionId: row.purchase_option_id!,
        userId: row.user_id!,
        quantity: row.quantity!,
      }),
      location: purchasePath(row.purchase_id),
    };
  }
  return {
    status: row.response_status!,
    body: row.response_body,
    location: row.ticket_option_id === null ? undefined : ticketOptionPath(row.ticket_option_id),
  };
}
