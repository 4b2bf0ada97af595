import { MikroORM } from '@mikro-orm/postgresql';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { AppConfig, ConfigError, loadConfig } from '../config/app-config';
import { loadEnvFileIfPresent } from '../config/env-file';
import { EmbeddedPostgresHandle, startEmbeddedPostgres } from '../database/embedded-postgres';
import { placeEmbeddedPostgres } from '../database/embedded-postgres-placement';
import { buildOrmOptions } from '../database/mikro-orm.config';
import { formatSummary, redactUrl } from './audit-summary';
import { auditLedger } from './ledger-audit';

/**
 * `npm run audit` (docs/design.md, Reservations): audits the ledger of DATABASE_URL, or, without it, of the
 * embedded PostgreSQL that `npm start` uses (the one running, or started for the audit and
 * stopped after it). Prints a summary; `--json` prints the report instead.
 *
 * Exit codes: 0 no violation, 1 violations found, 2 no audit was possible (configuration,
 * database unreachable, schema missing).
 */
const EXIT_OK = 0;
const EXIT_VIOLATIONS = 1;
const EXIT_CANNOT_AUDIT = 2;

/** Thrown for what stops the audit before it ran: said in one line, no stack trace. */
class CannotAudit extends Error {}

async function main(args: string[]): Promise<number> {
  const unknown = args.filter((arg) => arg !== '--json');
  if (unknown.length > 0) throw new CannotAudit(`unknown argument(s): ${unknown.join(' ')}`);
  const config = readConfig();
  const database = await resolveDatabase(config);
  let orm: MikroORM | undefined;
  try {
    orm = await MikroORM.init({
      ...buildOrmOptions({
        databaseUrl: database.url,
        poolSize: 1,
        // A read-only audit of a big ledger may take longer than a request may: no statement
        // timeout (interrupt it instead); the other bounds stay the service's.
        timeouts: { ...config.dbTimeouts, statementMs: 0 },
      }),
      logger: () => undefined,
    }).catch((error: unknown) => {
      throw new CannotAudit(`cannot connect to ${redactUrl(database.url)}: ${messageOf(error)}`);
    });
    const report = await auditLedger(orm).catch((error: unknown) => {
      if ((error as { code?: unknown }).code === '42P01') {
        throw new CannotAudit(
          `${redactUrl(database.url)} has no ledger tables (${messageOf(error)}): ` +
            'the service migrates its database when it starts',
        );
      }
      throw error;
    });
    console.log(
      args.includes('--json')
        ? JSON.stringify(report, null, 2)
        : formatSummary(report, redactUrl(database.url)),
    );
    return report.ok ? EXIT_OK : EXIT_VIOLATIONS;
  } finally {
    await orm?.close(true).catch(() => undefined);
    await database.embedded?.stop().catch(() => undefined);
  }
}

function readConfig(): AppConfig {
  try {
    loadEnvFileIfPresent();
    return loadConfig();
  } catch (error) {
    if (error instanceof ConfigError) throw new CannotAudit(error.message);
    throw error;
  }
}

interface AuditedDatabase {
  url: string;
  /** Started by the audit, stopped after it. */
  embedded?: EmbeddedPostgresHandle;
}

/**
 * DATABASE_URL, else the embedded PostgreSQL of `npm start` (src/main.ts): the same data
 * directory (placed as it places it, root included), port and database. When that data
 * directory's server is running (the service is up: its `postmaster.pid` names a live process),
 * the audit reads through it, on the port it records; otherwise the audit starts the server
 * exactly as `npm start` would, and stops it afterwards.
 */
async function resolveDatabase(config: AppConfig): Promise<AuditedDatabase> {
  if (config.databaseUrl) return { url: config.databaseUrl };
  const { dataDir, dataDirChosen, port } = config.embeddedPostgres;
  const relocatable = !dataDirChosen;
  try {
    const placed = await placeEmbeddedPostgres({ dataDir, relocatable });
    const runningPort = runningServerPort(placed.dataDir);
    if (runningPort !== undefined) {
      console.error(
        `DATABASE_URL is not set: auditing the running embedded PostgreSQL ` +
          `(data in ${placed.dataDir}, port ${runningPort})`,
      );
      // The URL startEmbeddedPostgres gives (src/database/embedded-postgres.ts).
      return { url: `postgres://postgres:postgres@127.0.0.1:${runningPort}/tickets` };
    }
    const embedded = await startEmbeddedPostgres({
      dataDir,
      relocatable,
      port,
      database: 'tickets',
      onPlaced: (placement) =>
        console.error(
          `DATABASE_URL is not set: starting the embedded PostgreSQL with its data in ${placement.dataDir}`,
        ),
    });
    return { url: embedded.url, embedded };
  } catch (error) {
    throw new CannotAudit(messageOf(error));
  }
}

/** The port of the server running on `dataDir`, from its `postmaster.pid` (PID, dir, start, port…). */
function runningServerPort(dataDir: string): number | undefined {
  let lines: string[];
  try {
    lines = readFileSync(join(dataDir, 'postmaster.pid'), 'utf8').split('\n');
  } catch {
    return undefined;
  }
  const pid = Number(lines[0]);
  const port = Number(lines[3]);
  if (!Number.isInteger(pid) || pid <= 0 || !Number.isInteger(port)) return undefined;
  try {
    process.kill(pid, 0);
    return port;
  } catch (error) {
    // EPERM: alive, someone else's; ESRCH: a stale file left by a crash.
    return (error as { code?: unknown }).code === 'EPERM' ? port : undefined;
  }
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (error: unknown) => {
    if (error instanceof CannotAudit) console.error(`audit: ${error.message}`);
    else console.error('audit failed:', error);
    process.exit(EXIT_CANNOT_AUDIT);
  },
);
