// autocannon ships no typings and @types/autocannon is not installed: only what the bench uses.
declare module 'autocannon' {
  interface Request {
    method: 'GET' | 'POST' | 'DELETE';
    headers: Record<string, string>;
    body?: string;
    path?: string;
    /**
     * Called before every request with a copy it may change and return; `context` is the
     * connection's, shared by the requests of one sequence.
     */
    setupRequest(request: Request, context: Record<string, unknown>): Request;
    onResponse(status: number, body: string, context: Record<string, unknown>): void;
  }
  interface Options {
    url: string | string[];
    connections: number;
    /** Seconds, and seconds before a request counts as a timeout. */
    duration: number;
    timeout: number;
    amount?: number;
    requests: Request[];
  }
  interface Result {
    duration: number;
    errors: number;
    timeouts: number;
    non2xx: number;
    statusCodeStats: Record<string, { count: number }>;
    latency: { p50: number; p99: number; max: number };
  }
  export default function autocannon(o: Options, done: (e: Error | null, r: Result) => void): void;
}
