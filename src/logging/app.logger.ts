import type { LoggerService } from '@nestjs/common';
import { Logger as NestPinoLogger, PinoLogger } from 'nestjs-pino';
import { writeSync } from 'node:fs';
import pino, { DestinationStream, Logger } from 'pino';
import pinoPretty from 'pino-pretty';
import type { LogLevel } from '../config/app-config';

/**
 * The one pino logger of an application: Fastify logs through it (one line per request, with the
 * request id, see jsonapi-http.ts) and so does Nest (bootstrap, MikroORM, health, filters).
 * Errors keep their `cause` as a nested object (e.g. the driver error behind a 503).
 */
export function createAppLogger(level: LogLevel, destination?: DestinationStream): Logger {
  const options = { level, serializers: { err: pino.stdSerializers.errWithCause } };
  if (destination) return pino(options, destination);
  if (prettyLogs(process.stdout.isTTY, process.env.NODE_ENV)) {
    return pino(options, pinoPretty({ colorize: true, sync: true }));
  }
  return pino(options, stdoutBatched());
}

let stdout: DestinationStream | undefined;

/**
 * The process's one stdout destination (every logger of the process shares it): pino's own
 * asynchronous writer, as before, fed in batches.
 */
function stdoutBatched(): DestinationStream {
  if (!stdout) {
    const sonic = pino.destination({ dest: 1, sync: false });
    stdout = batchedLines({
      write: (text) => sonic.write(text),
      writeAtExit: (text) => {
        sonic.flushSync(); // what it still holds goes first
        if (text !== '') writeSync(1, text);
      },
    });
  }
  return stdout;
}

/** Most time a line waits for the lines that follow it, to leave in the same write. */
export const LOG_BATCH_MS = 10;
/** Pending text beyond which the lines leave at once. */
const LOG_BATCH_BYTES = 64 * 1024;

/** Where batches go: `write` as they fill, `writeAtExit` (synchronous) for the last one. */
export interface BatchOutput {
  write(text: string): unknown;
  writeAtExit(text: string): void;
}

/**
 * Hands lines over in batches: at most {@link LOG_BATCH_MS} after the first pending line (or once
 * 64 KB are pending), as one write, instead of one write per line (under load, one per request).
 * What is pending when the process exits (process.exit included) is written synchronously then.
 */
export function batchedLines(out: BatchOutput): DestinationStream {
  let pending = '';
  let timer: NodeJS.Timeout | undefined;
  const flush = (): void => {
    clearTimeout(timer);
    timer = undefined;
    if (pending === '') return;
    const text = pending;
    pending = '';
    out.write(text);
  };
  process.on('exit', () => {
    clearTimeout(timer);
    const text = pending;
    pending = '';
    try {
      out.writeAtExit(text);
    } catch {
      // stdout is gone: nothing left to tell
    }
  });
  return {
    write(line: string): void {
      pending += line;
      if (pending.length >= LOG_BATCH_BYTES) flush();
      else timer ??= setTimeout(flush, LOG_BATCH_MS);
    },
  };
}

/**
 * Human-readable lines for a developer at a terminal; JSON everywhere else (pipes, files, log
 * shippers, tests that parse the lines) and always in production.
 */
export function prettyLogs(stdoutIsTty: boolean | undefined, nodeEnv: string | undefined): boolean {
  return stdoutIsTty === true && nodeEnv !== 'production';
}

/**
 * nestjs-pino's PinoLogger bound to one given pino logger. The stock one falls back to a
 * process-wide logger (the first one it ever saw) outside of its request-context middleware; we
 * run no such middleware (Fastify's request logger already carries the request id, and a Nest
 * middleware would sit on the purchase hot path), and each app instance keeps its own logger.
 */
class BoundPinoLogger extends PinoLogger {
  constructor(private readonly bound: Logger) {
    super({ pinoHttp: { logger: bound } });
  }

  override get logger(): Logger {
    return this.bound;
  }
}

/** Nest's LoggerService writing through `logger` (levels are pino's, so `silent` silences Nest too). */
export function nestLoggerFor(logger: Logger): LoggerService {
  return new NestPinoLogger(new BoundPinoLogger(logger), {});
}
