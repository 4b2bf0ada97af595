/**
 * The soak's load generator: open loop, requests at a fixed overall rate spread evenly in time (a
 * few every 5 ms) on keep-alive connections, whatever the latency; or closed loop with a fixed
 * number in flight (the capacity probe). Not autocannon: with a rate it sends each connection's
 * share of a second in one burst, all connections in step, so p99 would measure the burst.
 */
import { Agent, IncomingHttpHeaders, request as httpRequest } from 'node:http';
import { performance } from 'node:perf_hooks';
import { sleep } from './harness';
import { JSON_API } from './load';

/** One request, built by the workload just before it is sent to instance `target`. */
export interface PlannedRequest {
  kind: string;
  target: number;
  method: 'GET' | 'POST';
  path: string;
  headers?: Record<string, string>;
  body?: string;
}

export interface Answer {
  status: number;
  body: string;
  headers: IncomingHttpHeaders;
  latencyMs: number;
}

/** An HTTP answer, or a transport failure (connection error, timeout). */
export type Outcome = { answer: Answer } | { answer?: undefined; error: 'timeout' | 'error' };

export interface Phase {
  /** Requests per second, or null for closed loop (always `maxInFlight` in flight). */
  rate: number | null;
  durationMs: number;
  /** A bound on the requests of the phase, whatever the rate. */
  maxRequests: number;
  /** Beyond this many in flight a paced request is dropped (and counted), never queued. */
  maxInFlight: number;
  next(): PlannedRequest;
  onOutcome(request: PlannedRequest, outcome: Outcome): void;
  onDrop?(): void;
}

export class PacedLoad {
  private readonly agents: Agent[];
  private readonly live = new Set<ReturnType<typeof httpRequest>>();
  private stopped = false;
  private counts = { sent: 0, dropped: 0, inFlight: 0 };

  constructor(
    private readonly urls: URL[],
    private readonly timeoutMs: number,
    sockets: number,
  ) {
    this.agents = urls.map(() => new Agent({ keepAlive: true, maxSockets: sockets }));
  }

  /** Ends the current phase early. */
  stop(): void {
    this.stopped = true;
  }

  close(): void {
    this.stop();
    this.live.forEach((request) => request.destroy());
    this.agents.forEach((agent) => agent.destroy());
  }

  /** Sends the phase's requests; resolves once they are answered (or abandoned at the deadline). */
  async run(phase: Phase) {
    [this.stopped, this.counts] = [false, { sent: 0, dropped: 0, inFlight: 0 }];
    const [c, start, closed] = [this.counts, performance.now(), phase.rate === null];
    const [sent, elapsed] = [() => c.sent + c.dropped, () => performance.now() - start];
    const open = () => !this.stopped && sent() < phase.maxRequests && elapsed() < phase.durationMs;
    // Closed loop: every answer sends the next request.
    const refill = (): void => {
      while (closed && c.inFlight < phase.maxInFlight && open()) this.send(phase, refill);
    };
    for (refill(); open(); await sleep(closed ? 50 : 5)) {
      const due = Math.min(phase.maxRequests, (elapsed() * (phase.rate ?? 0)) / 1000);
      while (!closed && sent() < due && open()) {
        if (c.inFlight < phase.maxInFlight) this.send(phase);
        else {
          c.dropped++;
          phase.onDrop?.();
        }
      }
    }
    const elapsedMs = elapsed();
    // Every request has its own timeout, so this ends; the deadline is a second guard.
    const until = performance.now() + this.timeoutMs + 2000;
    while (c.inFlight > 0 && performance.now() < until) await sleep(10);
    this.live.forEach((request) => request.destroy());
    return { sent: c.sent, dropped: c.dropped, abandoned: c.inFlight, elapsedMs };
  }

  private send(phase: Phase, then?: () => void): void {
    const [planned, started, c] = [phase.next(), performance.now(), this.counts];
    const url = new URL(planned.path, this.urls[planned.target]);
    const headers = { accept: JSON_API, 'content-type': JSON_API, ...planned.headers };
    const options = { agent: this.agents[planned.target], method: planned.method, headers };
    c.sent++;
    c.inFlight++;
    const finish = (outcome: Outcome): void => {
      if (!this.live.delete(request)) return;
      c.inFlight--;
      phase.onOutcome(planned, outcome);
      then?.();
    };
    const request = httpRequest(url, options, (response) => {
      const chunks: Buffer[] = [];
      response.on('data', (chunk: Buffer) => chunks.push(chunk));
      response.on('error', () => finish({ error: 'error' }));
      response.on('end', () => {
        const [status, latencyMs] = [response.statusCode ?? 0, performance.now() - started];
        const body = Buffer.concat(chunks).toString('utf8');
        finish({ answer: { status, body, headers: response.headers, latencyMs } });
      });
    });
    this.live.add(request);
    request.setTimeout(this.timeoutMs, () => {
      finish({ error: 'timeout' });
      request.destroy();
    });
    request.on('error', () => finish({ error: 'error' }));
    request.end(planned.body);
  }
}
