/**
 * An open-loop load generator for the soak: requests are sent at a fixed overall rate, evenly
 * spread in time (a few every 5 ms), on keep-alive connections, whatever the answers' latency; or,
 * for the capacity probe, closed-loop with a fixed number in flight.
 *
 * Why not autocannon's `overallRate` here: autocannon lets each connection send its share of a
 * second back-to-back at the start of that second, all connections in step, so a "steady" rate is
 * really a saturating burst every second and p99 measures the burst's queue; and with a rate it
 * records latencies with a coordinated-omission correction whose expected interval is rounded up
 * to 1 ms (every 20 ms answer also counts as 19, 18, … 1 ms). The soak needs the latency of a
 * steady, moderate load, measured per minute and per kind of request.
 */
import { Agent, IncomingHttpHeaders, request as httpRequest } from 'node:http';
import { performance } from 'node:perf_hooks';

/** Latencies in a log-scaled histogram (1% wide buckets, 0.01 ms to 120 s): percentiles ±1%. */
export class LatencyHistogram {
  private static readonly MIN_MS = 0.01;
  private static readonly LOG_GROWTH = Math.log(1.01);
  private static readonly BUCKETS =
    Math.ceil(Math.log(120_000 / LatencyHistogram.MIN_MS) / LatencyHistogram.LOG_GROWTH) + 1;
  private readonly counts = new Uint32Array(LatencyHistogram.BUCKETS);
  count = 0;
  max = 0;
  sum = 0;

  record(ms: number): void {
    const index = Math.min(
      LatencyHistogram.BUCKETS - 1,
      Math.max(
        0,
        Math.floor(
          Math.log(Math.max(ms, LatencyHistogram.MIN_MS) / LatencyHistogram.MIN_MS) /
            LatencyHistogram.LOG_GROWTH,
        ),
      ),
    );
    this.counts[index]++;
    this.count++;
    this.sum += ms;
    if (ms > this.max) this.max = ms;
  }

  merge(other: LatencyHistogram): void {
    for (let i = 0; i < this.counts.length; i++) this.counts[i] += other.counts[i];
    this.count += other.count;
    this.sum += other.sum;
    this.max = Math.max(this.max, other.max);
  }

  /** The latency under which `fraction` of the answers fall (bucket midpoint), `null` if empty. */
  percentile(fraction: number): number | null {
    if (this.count === 0) return null;
    const rank = Math.max(1, Math.ceil(fraction * this.count));
    let seen = 0;
    for (let i = 0; i < this.counts.length; i++) {
      seen += this.counts[i];
      if (seen >= rank) {
        const value = LatencyHistogram.MIN_MS * Math.exp((i + 0.5) * LatencyHistogram.LOG_GROWTH);
        return Math.min(value, this.max);
      }
    }
    return this.max;
  }

  mean(): number | null {
    return this.count === 0 ? null : this.sum / this.count;
  }
}

/** One request to send, built by the workload just before it is sent. */
export interface PlannedRequest {
  /** What it is, for the statistics ("purchase", "read-option", …). */
  kind: string;
  /** Index of the instance (base URL) it goes to. */
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

/** Either an HTTP answer or a transport failure (connection error, timeout). */
export type Outcome =
  | { answer: Answer; error?: undefined }
  | { answer?: undefined; error: 'timeout' | 'error'; message: string; latencyMs: number };

export interface PhaseOptions {
  /** Requests per second, or `null` for closed loop (keep `maxInFlight` in flight). */
  rate: number | null;
  durationMs: number;
  /** Hard bound on the number of requests of the phase, whatever the rate. */
  maxRequests: number;
  /** At most this many in flight; beyond it a paced request is dropped (and counted), not queued. */
  maxInFlight: number;
  next: () => PlannedRequest;
  onOutcome: (request: PlannedRequest, outcome: Outcome) => void;
  /** Called for every paced request dropped because `maxInFlight` were in flight. */
  onDrop?: () => void;
}

export interface PhaseSummary {
  sent: number;
  /** Paced requests not sent because `maxInFlight` were in flight: the service fell behind. */
  dropped: number;
  /** Requests still unanswered when the drain deadline passed (then aborted). */
  abandoned: number;
  elapsedMs: number;
}

const TICK_MS = 5;

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

export class PacedLoad {
  private readonly agents: Agent[];
  private readonly targets: Array<{ host: string; port: number }>;
  private readonly live = new Set<ReturnType<typeof httpRequest>>();
  private stopped = false;

  constructor(
    baseUrls: string[],
    private readonly timeoutMs: number,
    socketsPerTarget: number,
  ) {
    this.targets = baseUrls.map((base) => {
      const url = new URL(base);
      return { host: url.hostname, port: Number(url.port) };
    });
    this.agents = baseUrls.map(
      () =>
        new Agent({
          keepAlive: true,
          maxSockets: socketsPerTarget,
          maxFreeSockets: socketsPerTarget,
        }),
    );
  }

  /** Ends the current phase early (no new request is sent). */
  stop(): void {
    this.stopped = true;
  }

  async run(options: PhaseOptions): Promise<PhaseSummary> {
    this.stopped = false;
    const start = performance.now();
    const endAt = start + options.durationMs;
    let sent = 0;
    let dropped = 0;
    let inFlight = 0;
    const closedLoop = options.rate === null;
    const canSend = (): boolean =>
      !this.stopped && sent + dropped < options.maxRequests && performance.now() < endAt;

    const send = (): void => {
      const planned = options.next();
      sent++;
      inFlight++;
      this.send(planned, (outcome) => {
        inFlight--;
        options.onOutcome(planned, outcome);
        if (closedLoop && canSend() && inFlight < options.maxInFlight) send();
      });
    };

    if (closedLoop) {
      while (canSend() && inFlight < options.maxInFlight) send();
      while (canSend()) await sleep(50);
    } else {
      const rate = options.rate!;
      while (canSend()) {
        const due = Math.min(
          options.maxRequests,
          Math.floor(((performance.now() - start) * rate) / 1000) + 1,
        );
        while (sent + dropped < due && canSend()) {
          if (inFlight >= options.maxInFlight) {
            dropped++;
            options.onDrop?.();
          } else send();
        }
        await sleep(TICK_MS);
      }
    }
    const elapsedMs = performance.now() - start;

    // Drain: every request has its own timeout, so this ends; the deadline is a second guard.
    const drainUntil = performance.now() + this.timeoutMs + 2000;
    while (inFlight > 0 && performance.now() < drainUntil) await sleep(10);
    const abandoned = inFlight;
    for (const request of this.live) request.destroy();
    return { sent, dropped, abandoned, elapsedMs };
  }

  close(): void {
    this.stopped = true;
    for (const request of this.live) request.destroy();
    for (const agent of this.agents) agent.destroy();
  }

  private send(planned: PlannedRequest, done: (outcome: Outcome) => void): void {
    const target = this.targets[planned.target];
    const headers: Record<string, string> = {
      accept: 'application/vnd.api+json',
      ...planned.headers,
    };
    if (planned.body !== undefined) {
      headers['content-type'] = 'application/vnd.api+json';
      headers['content-length'] = String(Buffer.byteLength(planned.body));
    }
    const started = performance.now();
    let finished = false;
    const finish = (outcome: Outcome): void => {
      if (finished) return;
      finished = true;
      this.live.delete(request);
      done(outcome);
    };
    const request = httpRequest(
      {
        agent: this.agents[planned.target],
        host: target.host,
        port: target.port,
        method: planned.method,
        path: planned.path,
        headers,
      },
      (response) => {
        const chunks: Buffer[] = [];
        response.on('data', (chunk: Buffer) => chunks.push(chunk));
        response.on('end', () =>
          finish({
            answer: {
              status: response.statusCode ?? 0,
              body: Buffer.concat(chunks).toString('utf8'),
              headers: response.headers,
              latencyMs: performance.now() - started,
            },
          }),
        );
        response.on('error', (error) =>
          finish({
            error: 'error',
            message: error.message,
            latencyMs: performance.now() - started,
          }),
        );
      },
    );
    this.live.add(request);
    request.setTimeout(this.timeoutMs, () => {
      finish({
        error: 'timeout',
        message: `no answer within ${this.timeoutMs} ms`,
        latencyMs: performance.now() - started,
      });
      request.destroy();
    });
    request.on('error', (error) =>
      finish({ error: 'error', message: error.message, latencyMs: performance.now() - started }),
    );
    request.end(planned.body);
  }
}
