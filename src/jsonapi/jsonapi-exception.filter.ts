import { ArgumentsHost, Catch, ExceptionFilter, HttpException } from '@nestjs/common';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { DomainError, ErrorCode, Problem, UnavailableError } from '../common/domain.error';
import { isDatabaseUnavailable } from '../database/database-errors';
import { recordFinalAnswer } from '../idempotency/idempotency-http';
import { ERROR_CATALOG } from './error-catalog';
import { jsonApiHeaders } from './jsonapi-http';

export interface JsonApiErrorObject {
  status: string;
  code: ErrorCode;
  title: string;
  detail: string;
  source?: { pointer: string } | { parameter: string };
}

/** Fastify's own errors (body parser, limits) carry a `code` like `FST_ERR_CTP_BODY_TOO_LARGE`. */
interface FrameworkError {
  code?: string;
  statusCode?: number;
}

const DEFAULT_RETRY_AFTER_SECONDS = 1;

/**
 * The one place that turns a thrown error into a response: a JSON:API error document. Domain
 * errors keep their code and pointer; framework errors are mapped by status; anything unknown is a
 * bare 500 whose cause goes to the log only.
 */
@Catch()
export class JsonApiExceptionFilter implements ExceptionFilter {
  catch(exception: unknown, host: ArgumentsHost): void {
    const http = host.switchToHttp();
    const request = http.getRequest<FastifyRequest>();
    const reply = http.getResponse<FastifyReply>();

    const problems = toProblems(exception);
    const statuses = new Set(problems.map((p) => ERROR_CATALOG[p.code].status));
    // Several problems of different statuses: the most generally applicable one (JSON:API §7).
    const status = statuses.size === 1 ? [...statuses][0] : 400;

    if (status >= 500) {
      request.log.error({ err: exception }, 'request failed');
    } else {
      request.log.debug({ err: exception }, 'request refused');
    }
    if (status === 503) {
      const seconds =
        exception instanceof UnavailableError
          ? exception.retryAfterSeconds
          : DEFAULT_RETRY_AFTER_SECONDS;
      void reply.header('retry-after', String(seconds));
    }
    if (reply.sent) return;
    const document = problemsDocument(problems);
    if (exception instanceof DomainError && exception.final) {
      recordFinalAnswer(request, { status, body: document });
    }
    sendDocument(reply, status, document);
  }
}

/** Sends a JSON:API error document; shared with the few paths Nest's filters never see. */
export function sendProblems(reply: FastifyReply, status: number, problems: Problem[]): void {
  sendDocument(reply, status, problemsDocument(problems));
}

function sendDocument(reply: FastifyReply, status: number, document: string): void {
  void reply.status(status).headers(jsonApiHeaders(reply.request));
  // Fastify appends `; charset=utf-8` to a JSON media type sent with a string, which the onSend
  // hook undoes; where no hook runs (frameworkErrors), bytes keep the media type exact. Elsewhere
  // the payload stays a string for the onSend hooks.
  void reply.send(reply.request.passedJsonApiHooks ? document : Buffer.from(document));
}

/** The JSON:API error document of these problems, as text (for paths without a reply object). */
export function problemsDocument(problems: Problem[]): string {
  return JSON.stringify({ errors: problems.map(toErrorObject) });
}

function toErrorObject(problem: Problem): JsonApiErrorObject {
  const { status, title } = ERROR_CATALOG[problem.code];
  const object: JsonApiErrorObject = {
    status: String(status),
    code: problem.code,
    title,
    detail: problem.detail,
  };
  if (problem.source) object.source = problem.source;
  return object;
}

function toProblems(exception: unknown): Problem[] {
  if (exception instanceof DomainError) return exception.problems;
  if (isDatabaseUnavailable(exception)) {
    return [{ code: 'unavailable', detail: 'The database is unavailable; retry shortly.' }];
  }
  if (exception instanceof HttpException) {
    return [fromStatus(exception.getStatus(), exception)];
  }
  const framework = exception as FrameworkError | undefined;
  if (framework && typeof framework.statusCode === 'number' && framework.statusCode < 500) {
    return [fromStatus(framework.statusCode, exception)];
  }
  return [{ code: 'internal_error', detail: 'The server failed to handle the request.' }];
}

/** Framework errors: the status is trustworthy, the message is not for clients. */
function fromStatus(status: number, exception: unknown): Problem {
  const code = (exception as FrameworkError).code;
  switch (status) {
    case 404:
      return { code: 'not_found', detail: 'No resource or route matches this request.' };
    case 413:
      return { code: 'payload_too_large', detail: 'The request body exceeds the size limit.' };
    case 415:
      return {
        code: 'unsupported_media_type',
        detail: 'The Content-Type of the request is not supported.',
        source: { parameter: 'Content-Type' },
      };
    case 503:
      return { code: 'unavailable', detail: 'The service is temporarily unavailable.' };
    default:
      if (status >= 400 && status < 500) {
        const detail =
          code === 'FST_ERR_CTP_INVALID_CONTENT_LENGTH'
            ? 'The Content-Length does not match the body.'
            : 'The request body is not a valid JSON document.';
        return { code: 'invalid_document', detail };
      }
      return { code: 'internal_error', detail: 'The server failed to handle the request.' };
  }
}
