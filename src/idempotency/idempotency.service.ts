import { EntityManager, MikroORM } from '@mikro-orm/postgresql';
import { Inject, Injectable, Logger, OnModuleDestroy, OnModuleInit } from '@nestjs/common';
import { randomUUID } from 'node:crypto';
import { DomainError, UnavailableError } from '../common/domain.error';
import { APP_CONFIG } from '../config/config.module';
import type { AppConfig } from '../config/app-config';
import { runStatement } from '../database/sql';
import type { IdempotencyClaim } from './idempotency-claim';

const PURGE_INTERVAL_MS = 10 * 60_000;
const PURGE_CHUNK = 5_000;
/**
 * A claim still unsettled this long after it was taken is no longer renewed: no request lives
 * that long (requests and statements are bounded by their timeouts), so it leaked; its lease
 * then runs out and a retry may take it over.
 */
const MAX_RENEWED_MS = 10 * 60_000;

/**
 * Claims the key, or takes over an expired row, or an unfinished claim of the same request whose
 * lease ran out (its instance stopped renewing it: dead, or stalled past the lease).
 */
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

/**
 * Extends the lease of the claims this instance still holds. A row locked right now is being
 * completed by its commit (which locks the claims it completes), and a takeover would wait for
 * that commit too: it is skipped rather than waited for, so one slow commit never stalls the
 * renewal of every other claim.
 */
const RENEW = {
  name: 'idempotency-renew',
  text: `
    UPDATE idempotency_keys k SET locked_at = now()
      FROM (SELECT i.key FROM idempotency_keys i
              JOIN unnest($1::text[], $2::uuid[]) AS c(key, claim)
                ON i.key = c.key AND i.claim = c.claim
             WHERE i.completed_at IS NULL
               FOR UPDATE OF i SKIP LOCKED) r
     WHERE k.key = r.key`,
};

const READ = {
  name: 'idempotency-read',
  text: `SELECT fingerprint, completed_at, response_status, response_body::text AS response_text
           FROM idempotency_keys WHERE key = $1`,
};

const COMPLETE = {
  name: 'idempotency-complete',
  text: `
    UPDATE idempotency_keys SET completed_at = now(), response_status = $3, response_body = $4
     WHERE key = $1 AND claim = $2 AND completed_at IS NULL`,
};

/** COMPLETE inside the transaction that created the ticket option it names. */
const COMPLETE_WITH_EFFECT = {
  name: 'idempotency-complete-with-effect',
  text: `
    UPDATE idempotency_keys
       SET completed_at = now(), response_status = $3, response_body = $4, ticket_option_id = $5
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
  response_text: string | null;
}

/** The original answer to send again, with `Idempotent-Replayed: true`. */
export interface Replay {
  status: number;
  body: unknown;
  /** The very text first sent. */
  text: string;
  location?: string;
}

export type Begin = { claimed: IdempotencyClaim } | { replay: Replay };

/**
 * Idempotency keys (docs/design.md, Idempotency), stored in PostgreSQL so that every instance
 * sees them. A request with a key first claims it; what the request creates completes the claim
 * in the same transaction, with the answer to replay (the purchase commit, the ticket option
 * insert), so a key is never completed without its effect nor the effect written without its key.
 * Refusals that are final are completed too; anything else releases the claim so that a retry
 * runs again.
 *
 * A claim is alive while its instance renews it (every quarter of the lease): a retry of the same
 * request may take over once the lease ran out, i.e. within a lease of the instance's death. A
 * claim taken over is never completed by its old holder: the commit checks the claim.
 */
@Injectable()
export class IdempotencyService implements OnModuleInit, OnModuleDestroy {
  private readonly logger = new Logger(IdempotencyService.name);
  private purgeTimer: NodeJS.Timeout | undefined;
  private renewTimer: NodeJS.Timeout | undefined;
  private renewing = false;
  private readonly retentionSeconds: number;
  private readonly leaseSeconds: number;
  /** Claims held by requests of this process: key → claim and when it was taken. */
  private readonly held = new Map<string, { claim: string; since: number }>();

  constructor(
    private readonly orm: MikroORM,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
  ) {
    this.retentionSeconds = config.idempotencyRetentionHours * 3600;
    this.leaseSeconds = config.idempotencyClaimLeaseMs / 1000;
  }

  onModuleInit(): void {
    this.purgeTimer = setInterval(() => {
      this.purgeExpired().catch((error: unknown) =>
        this.logger.warn(`purging expired idempotency keys failed: ${String(error)}`),
      );
    }, PURGE_INTERVAL_MS);
    this.purgeTimer.unref();
    this.renewTimer = setInterval(
      () => void this.renewHeld(),
      this.config.idempotencyClaimLeaseMs / 4,
    );
    this.renewTimer.unref();
  }

  onModuleDestroy(): void {
    clearInterval(this.purgeTimer);
    clearInterval(this.renewTimer);
  }

  /** Claims held by this process right now (for tests and metrics). */
  get heldClaims(): number {
    return this.held.size;
  }

  async begin(key: string, fingerprint: string): Promise<Begin> {
    // Two rounds at most: the row read after a lost claim may be purged before we read it.
    for (let round = 0; round < 2; round++) {
      const claim = randomUUID();
      const claimed = await runStatement(this.orm, {
        ...CLAIM,
        values: [key, fingerprint, claim, this.retentionSeconds, this.leaseSeconds],
      });
      if (claimed.rowCount === 1) {
        this.held.set(key, { claim, since: Date.now() });
        return { claimed: { key, claim } };
      }
      const [row] = (await runStatement<KeyRow>(this.orm, { ...READ, values: [key] })).rows;
      if (!row) continue;
      return { replay: replayOf(row, fingerprint) };
    }
    throw new UnavailableError('The Idempotency-Key could not be claimed; retry.');
  }

  /** The request holding `claim` has answered: its claim needs no more renewal. */
  settled(claim: IdempotencyClaim): void {
    if (this.held.get(claim.key)?.claim === claim.claim) this.held.delete(claim.key);
  }

  /** Records a final answer that created nothing (e.g. a justified refusal). */
  async complete(claim: IdempotencyClaim, status: number, body: string): Promise<void> {
    this.settled(claim);
    await runStatement(this.orm, { ...COMPLETE, values: [claim.key, claim.claim, status, body] });
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
    const { rowCount } = await runStatement(em, {
      ...COMPLETE_WITH_EFFECT,
      values: [
        claim.key,
        claim.claim,
        answer.status,
        JSON.stringify(answer.body),
        answer.ticketOptionId,
      ],
    });
    if (rowCount !== 1) {
      throw new UnavailableError('The Idempotency-Key claim was lost; retry.');
    }
  }

  /** Forgets an unfinished claim so that a retry processes the request again. */
  async release(claim: IdempotencyClaim): Promise<void> {
    this.settled(claim);
    await runStatement(this.orm, { ...RELEASE, values: [claim.key, claim.claim] });
  }

  /** Extends the lease of every claim still held; one renewal at a time. */
  async renewHeld(): Promise<void> {
    if (this.renewing || this.held.size === 0) return;
    this.renewing = true;
    try {
      const keys: string[] = [];
      const claims: string[] = [];
      const oldest = Date.now() - MAX_RENEWED_MS;
      for (const [key, { claim, since }] of this.held) {
        if (since < oldest) {
          this.held.delete(key);
          this.logger.warn(`idempotency claim of key ${JSON.stringify(key)} leaked: not renewed`);
          continue;
        }
        keys.push(key);
        claims.push(claim);
      }
      if (keys.length > 0) await runStatement(this.orm, { ...RENEW, values: [keys, claims] });
    } catch (error) {
      // The leases run out if this keeps failing; a retry may then take over (safely).
      this.logger.warn(`renewing idempotency claims failed: ${String(error)}`);
    } finally {
      this.renewing = false;
    }
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

/** The answer to give a request whose key is taken: a replay, or why not. */
function replayOf(row: KeyRow, fingerprint: string): Replay {
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
  // A 201's Location is the created resource's own link (JSON:API `links.self`).
  const text = row.response_text!;
  const body = JSON.parse(text) as { data?: { links?: { self?: unknown } } };
  const self = body.data?.links?.self;
  return {
    status: row.response_status!,
    body,
    text,
    location: row.response_status === 201 && typeof self === 'string' ? self : undefined,
  };
}
