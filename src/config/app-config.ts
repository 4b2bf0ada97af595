import { resolve } from 'node:path';
import { COMMIT_MODES, CommitMode } from '../allocation/ticket-option.store';

export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

/** Tuning of the per-option actors (see README, "Configuration"). */
export interface ActorConfig {
  /** Most purchases decided and written by one commit. */
  maxBatchSize: number;
  /** Attempts of one commit before a lost version race is reported as 503. */
  maxCommitAttempts: number;
  /** Purchases waiting in one actor beyond which new ones get 503 (memory stays bounded). */
  maxQueueDepth: number;
  /** An actor unused this long is passivated (its cached state dropped). */
  idleMs: number;
  /** Most actors alive in one process; the least recently used idle one is passivated first. */
  maxLiveActors: number;
  /** How a commit guards the option row against other instances (see ticket-option.store.ts). */
  commitMode: CommitMode;
  /** Commit statements in flight at once per process; further batches coalesce into the next. */
  maxWritesInFlight: number;
  /** While a commit statement runs, another starts only once the latest has run this long (ms). */
  slowWriteMs: number;
}

/** Holds (docs/design.md, Reservations). */
export interface ReservationConfig {
  /** `ttl_seconds` of a hold that does not say. */
  defaultTtlSeconds: number;
  /** The longest hold a client may ask for. */
  maxTtlSeconds: number;
  /** How often each instance expires due holds (SKIP LOCKED: instances share the work). */
  sweepMs: number;
  /** Most due holds one sweep statement expires. */
  sweepLimit: number;
  /** Holds created here whose option is remembered, so that confirming needs no read (0: off). */
  routeCacheSize: number;
}

export interface DatabaseTimeouts {
  /** `statement_timeout` of every pooled session. */
  statementMs: number;
  /** `lock_timeout` of every pooled session. */
  lockMs: number;
  /** Opening the migration lock's own connection (pooled ones are bounded by `acquireMs`). */
  connectMs: number;
  /** Getting a pooled connection: waiting for a free one, or opening one (pg-pool has one bound). */
  acquireMs: number;
}

export interface EmbeddedPostgresConfig {
  dataDir: string;
  /** EMBEDDED_PG_DATA_DIR was set: use that directory as given, never another. */
  dataDirChosen: boolean;
  port: number;
}

/** The one typed configuration object, parsed and checked once at start-up. */
export interface AppConfig {
  port: number;
  host: string;
  /** Absent: `npm start` runs an embedded PostgreSQL (see `embeddedPostgres`). */
  databaseUrl: string | undefined;
  logLevel: LogLevel;
  dbPoolSize: number;
  /** Timeouts that turn a stuck database into a quick 503 instead of a hang (see README). */
  dbTimeouts: DatabaseTimeouts;
  /** Most time to receive a whole request (slow clients cannot hold a connection forever). */
  httpRequestTimeoutMs: number;
  bodyLimitBytes: number;
  /** Idempotency keys are kept at least this long (docs/design.md, Wire contract: 24 h), then purged. */
  idempotencyRetentionHours: number;
  /**
   * How long a claim on an Idempotency-Key outlives its last renewal: the instance holding it
   * renews it while the request runs, so a retry can take over this soon after that instance died.
   */
  idempotencyClaimLeaseMs: number;
  actor: ActorConfig;
  reservations: ReservationConfig;
  embeddedPostgres: EmbeddedPostgresConfig;
}

export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(`Invalid configuration:\n${problems.map((p) => `  - ${p}`).join('\n')}`);
    this.name = 'ConfigError';
  }
}

type Env = Record<string, string | undefined>;

/**
 * Reads the environment into an {@link AppConfig}. Every problem is collected so that an operator
 * fixes them all in one go; any problem throws {@link ConfigError}.
 */
export function loadConfig(env: Env = process.env): AppConfig {
  const problems: string[] = [];

  const int = (name: string, fallback: number, min: number, max: number): number => {
    const raw = env[name];
    if (raw === undefined || raw === '') return fallback;
    if (!/^\d+$/.test(raw.trim())) {
      problems.push(`${name} must be an integer between ${min} and ${max}, got "${raw}"`);
      return fallback;
    }
    const value = Number(raw.trim());
    if (value < min || value > max) {
      problems.push(`${name} must be an integer between ${min} and ${max}, got "${raw}"`);
      return fallback;
    }
    return value;
  };

  const databaseUrl = env.DATABASE_URL?.trim() || undefined;
  if (databaseUrl !== undefined) {
    let parsed: URL | undefined;
    try {
      parsed = new URL(databaseUrl);
    } catch {
      parsed = undefined;
    }
    if (!parsed || !['postgres:', 'postgresql:'].includes(parsed.protocol) || !parsed.hostname) {
      problems.push(
        'DATABASE_URL must be a PostgreSQL URL such as postgres://user:password@host:5432/database',
      );
    }
  }

  const logLevel = (env.LOG_LEVEL?.trim() || 'info') as LogLevel;
  if (!LOG_LEVELS.includes(logLevel)) {
    problems.push(`LOG_LEVEL must be one of ${LOG_LEVELS.join(', ')}, got "${env.LOG_LEVEL}"`);
  }

  const host = env.HOST?.trim() || '0.0.0.0';

  const commitMode = (env.ACTOR_COMMIT_MODE?.trim() || 'guarded') as CommitMode;
  if (!COMMIT_MODES.includes(commitMode)) {
    problems.push(
      `ACTOR_COMMIT_MODE must be one of ${COMMIT_MODES.join(', ')}, got "${env.ACTOR_COMMIT_MODE}"`,
    );
  }

  const config: AppConfig = {
    port: int('PORT', 3000, 0, 65535),
    host,
    databaseUrl,
    logLevel,
    dbPoolSize: int('DB_POOL_SIZE', 10, 1, 1000),
    dbTimeouts: {
      statementMs: int('DB_STATEMENT_TIMEOUT_MS', 5_000, 100, 3_600_000),
      lockMs: int('DB_LOCK_TIMEOUT_MS', 2_000, 100, 3_600_000),
      connectMs: int('DB_CONNECT_TIMEOUT_MS', 3_000, 100, 600_000),
      acquireMs: int('DB_ACQUIRE_TIMEOUT_MS', 3_000, 100, 600_000),
    },
    httpRequestTimeoutMs: int('HTTP_REQUEST_TIMEOUT_MS', 30_000, 1_000, 3_600_000),
    bodyLimitBytes: int('BODY_LIMIT_BYTES', 1024 * 1024, 1024, 100 * 1024 * 1024),
    idempotencyRetentionHours: int('IDEMPOTENCY_RETENTION_HOURS', 24, 24, 24 * 365),
    idempotencyClaimLeaseMs: int('IDEMPOTENCY_CLAIM_LEASE_MS', 5_000, 1_000, 600_000),
    actor: {
      maxBatchSize: int('ACTOR_MAX_BATCH_SIZE', 512, 1, 10000),
      maxCommitAttempts: int('ACTOR_MAX_COMMIT_ATTEMPTS', 20, 1, 1000),
      maxQueueDepth: int('ACTOR_MAX_QUEUE_DEPTH', 10_000, 1, 1_000_000),
      idleMs: int('ACTOR_IDLE_MS', 60_000, 1_000, 86_400_000),
      maxLiveActors: int('ACTOR_MAX_LIVE', 10_000, 1, 10_000_000),
      commitMode,
      maxWritesInFlight: int('DB_MAX_WRITES_IN_FLIGHT', 4, 1, 1000),
      slowWriteMs: int('DB_SLOW_WRITE_MS', 5, 0, 60_000),
    },
    reservations: {
      defaultTtlSeconds: int('RESERVATION_TTL_S', 600, 1, 86_400),
      maxTtlSeconds: int('RESERVATION_MAX_TTL_S', 3_600, 1, 86_400),
      sweepMs: int('RESERVATION_SWEEP_MS', 250, 10, 60_000),
      sweepLimit: int('RESERVATION_SWEEP_LIMIT', 1_000, 1, 100_000),
      routeCacheSize: int('RESERVATION_ROUTE_CACHE', 100_000, 0, 10_000_000),
    },
    embeddedPostgres: {
      dataDir: resolve(env.EMBEDDED_PG_DATA_DIR?.trim() || '.data/postgres'),
      dataDirChosen: Boolean(env.EMBEDDED_PG_DATA_DIR?.trim()),
      port: int('EMBEDDED_PG_PORT', 15432, 1, 65535),
    },
  };

  const { defaultTtlSeconds, maxTtlSeconds } = config.reservations;
  if (defaultTtlSeconds > maxTtlSeconds) {
    problems.push(
      `RESERVATION_TTL_S (${defaultTtlSeconds}) must not exceed RESERVATION_MAX_TTL_S (${maxTtlSeconds})`,
    );
  }
  if (problems.length > 0) throw new ConfigError(problems);
  return config;
}
