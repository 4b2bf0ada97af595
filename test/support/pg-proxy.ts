import { createServer, Server, Socket, connect } from 'node:net';

/**
 * A TCP proxy between the application and PostgreSQL that can lose a connection at the worst
 * moment: after the server has COMMITTED a statement but before its answer reaches the client.
 * That is the ambiguous commit a real network fault produces, made deterministic.
 */
export class PgProxy {
  private readonly pairs = new Set<{ client: Socket; upstream: Socket }>();
  private armed: { marker: string; done: () => void } | null = null;

  private constructor(
    private readonly server: Server,
    readonly port: number,
  ) {}

  static async start(target: { host: string; port: number }): Promise<PgProxy> {
    const holder: { proxy?: PgProxy } = {};
    const server = createServer((client) => holder.proxy!.accept(client, target));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const address = server.address();
    if (!address || typeof address === 'string') throw new Error('no TCP address');
    holder.proxy = new PgProxy(server, address.port);
    return holder.proxy;
  }

  /** The same database URL, through the proxy. */
  urlFor(databaseUrl: string): string {
    const url = new URL(databaseUrl);
    url.hostname = '127.0.0.1';
    url.port = String(this.port);
    return url.toString();
  }

  /**
   * Arms the proxy: the next time a client sends a message containing `marker` (e.g. a prepared
   * statement's name), the server's answers are withheld until PostgreSQL reports ReadyForQuery
   * (the implicit transaction is committed by then), and the connection is cut instead of
   * delivering them. Resolves once the connection has been cut.
   */
  loseAnswerAfterCommit(marker: string): Promise<void> {
    return new Promise((resolve) => (this.armed = { marker, done: resolve }));
  }

  async close(): Promise<void> {
    for (const { client, upstream } of this.pairs) {
      client.destroy();
      upstream.destroy();
    }
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private accept(client: Socket, target: { host: string; port: number }): void {
    const upstream = connect(target.port, target.host);
    const pair = { client, upstream };
    this.pairs.add(pair);
    let trap: { done: () => void; pending: Buffer } | null = null;

    client.on('data', (chunk: Buffer) => {
      if (this.armed && chunk.includes(this.armed.marker)) {
        trap = { done: this.armed.done, pending: Buffer.alloc(0) };
        this.armed = null;
      }
      upstream.write(chunk);
    });
    upstream.on('data', (chunk: Buffer) => {
      if (!trap) {
        client.write(chunk);
        return;
      }
      trap.pending = Buffer.concat([trap.pending, chunk]);
      if (containsReadyForQuery(trap.pending)) {
        client.destroy();
        upstream.destroy();
        trap.done();
      }
    });
    const end = () => {
      client.destroy();
      upstream.destroy();
      this.pairs.delete(pair);
    };
    client.on('close', end);
    upstream.on('close', end);
    client.on('error', end);
    upstream.on('error', end);
  }
}

/** Walks backend messages (type byte + int32 length) looking for a complete ReadyForQuery. */
function containsReadyForQuery(buffer: Buffer): boolean {
  let offset = 0;
  while (offset + 5 <= buffer.length) {
    const type = String.fromCharCode(buffer[offset]);
    const length = buffer.readInt32BE(offset + 1);
    if (offset + 1 + length > buffer.length) return false;
    if (type === 'Z') return true;
    offset += 1 + length;
  }
  return false;
}
