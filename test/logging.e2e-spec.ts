import { allowConnections, refuseConnections } from './support/database-outage';
import { JsonApiClient, purchaseBody } from './support/jsonapi-client';
import { findFreePort } from './support/ports';
import { ServerProcess, spawnServer, waitUntilServing } from './support/server-process';
import { createTestDatabase } from './support/test-app';
import { waitFor } from './support/waiting';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

type LogLine = Record<string, any>;

/** Every line the process wrote; each must be one JSON object (pino), stderr included. */
function logLinesOf(server: ServerProcess): LogLine[] {
  return server
    .output()
    .split('\n')
    .filter((line) => line !== '')
    .map((line) => {
      try {
        return JSON.parse(line) as LogLine;
      } catch {
        throw new Error(`not a JSON log line: ${line}`);
      }
    });
}

/** Runs the real src/main.ts on a fresh database, hands it to `use`, then stops it with SIGTERM. */
async function withServer(
  logLevel: string,
  use: (client: JsonApiClient, databaseUrl: string) => Promise<void>,
): Promise<ServerProcess> {
  const database = await createTestDatabase();
  const port = await findFreePort();
  const server = spawnServer({
    PORT: String(port),
    HOST: '127.0.0.1',
    DATABASE_URL: database.url,
    LOG_LEVEL: logLevel,
  });
  try {
    const baseUrl = `http://127.0.0.1:${port}`;
    await waitUntilServing(server, baseUrl);
    await use(new JsonApiClient(baseUrl), database.url);
    server.child.kill('SIGTERM');
    expect(await server.exited).toBe(0);
    return server;
  } finally {
    server.child.kill('SIGKILL');
    await server.exited;
    await database.drop();
  }
}

describe('logging', () => {
  it('writes one JSON line per request with the request id it returns, keeps an incoming id, and logs 5xx causes only', async () => {
    const answers: Array<{ id: string; method: string; url: string; status: number }> = [];
    const server = await withServer('info', async (client, databaseUrl) => {
      const record = (
        method: string,
        url: string,
        response: Awaited<ReturnType<JsonApiClient['get']>>,
      ) => {
        answers.push({
          method,
          url,
          status: response.status,
          id: response.headers.get('x-request-id')!,
        });
        return response;
      };

      const kept = record(
        'GET',
        '/health/live',
        await client.get('/health/live', { 'x-request-id': 'lb-7f3a-0001' }),
      );
      expect(kept.headers.get('x-request-id')).toBe('lb-7f3a-0001');

      const generated = record(
        'GET',
        '/ticket_options/00000000-0000-4000-8000-000000000000',
        await client.get('/ticket_options/00000000-0000-4000-8000-000000000000'),
      );
      expect(generated.status).toBe(404);
      expect(generated.headers.get('x-request-id')).toMatch(UUID);

      // An id that is not a sane header value is replaced, not echoed.
      const replaced = record(
        'GET',
        '/health/live',
        await client.get('/health/live', { 'x-request-id': 'x'.repeat(300) }),
      );
      expect(replaced.headers.get('x-request-id')).toMatch(UUID);

      const optionId = await client.createTicketOption({ name: 'Logged', allocation: 5 });
      answers.push({ method: 'POST', url: '/ticket_options', status: 201, id: '' });

      // The database goes away under a purchase: 503 to the client, the cause to the log.
      await refuseConnections(databaseUrl);
      try {
        const failed = record(
          'POST',
          '/purchases',
          await client.post('/purchases', purchaseBody(optionId, 1), {
            'x-request-id': 'lb-7f3a-0002',
          }),
        );
        expect(failed.status).toBe(503);
        expect(failed.body.errors).toEqual([
          expect.objectContaining({ status: '503', code: 'unavailable' }),
        ]);
        expect(failed.text).not.toMatch(/accepting connections|terminat|ECONN|pg_|at /i);
      } finally {
        await allowConnections(databaseUrl);
      }
    });

    const lines = logLinesOf(server);
    const requestLines = lines.filter((line) => line.msg === 'request completed');
    // waitUntilServing's one answered probe, then ours: one line each, nothing more.
    expect(requestLines).toHaveLength(1 + answers.length);
    for (const answer of answers.filter((a) => a.id !== '')) {
      const mine = requestLines.filter((line) => line.requestId === answer.id);
      expect(mine).toHaveLength(1);
      expect(mine[0]).toMatchObject({
        level: 30,
        method: answer.method,
        url: answer.url,
        statusCode: answer.status,
      });
      expect(typeof mine[0].responseTimeMs).toBe('number');
      expect(typeof mine[0].time).toBe('number');
    }

    // The 503: logged at error with the request id, the error and its cause.
    const failure = lines.find((line) => line.requestId === 'lb-7f3a-0002' && line.level === 50);
    expect(failure).toMatchObject({
      msg: 'request failed',
      err: { type: 'UnavailableError', cause: { message: expect.any(String) } },
    });
    expect(failure!.err.cause.message).toMatch(/accepting connections|terminat|does not allow/i);

    // Nest's own lines (bootstrap, migrations) and main.ts's go through the same JSON logger.
    expect(lines).toContainEqual(
      expect.objectContaining({
        context: 'NestApplication',
        msg: 'Nest application successfully started',
      }),
    );
    expect(lines).toContainEqual(
      expect.objectContaining({
        context: 'Database',
        msg: expect.stringMatching(/^applied migrations/),
      }),
    );
    expect(lines).toContainEqual(expect.objectContaining({ msg: 'SIGTERM received: draining' }));
    expect(lines[lines.length - 1]).toMatchObject({ msg: 'stopped', exitCode: 0 });
  });

  it('LOG_LEVEL=warn drops the request lines; LOG_LEVEL=silent writes nothing at all', async () => {
    const visit = async (client: JsonApiClient) => {
      // Readiness pings with a fixed 1 s budget, which a busy machine can miss once: ask again.
      await waitFor(
        'readiness',
        async () => (await client.get('/health/ready')).status,
        (status) => status === 200,
      );
      expect((await client.get('/nowhere')).status).toBe(404);
    };
    const warn = await withServer('warn', visit);
    expect(logLinesOf(warn).filter((line) => line.level < 40)).toEqual([]);
    const silent = await withServer('silent', visit);
    expect(silent.output()).toBe('');
  });
});
