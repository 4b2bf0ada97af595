// autocannon ships no typings and @types/autocannon is not installed: only what the bench uses.
declare module 'autocannon' {
  namespace autocannon {
    interface Request {
      method?: 'GET' | 'POST';
      path?: string;
      headers?: Record<string, string>;
      body?: string;
      /** Called before every request with a copy it may change and return. */
      setupRequest?: (request: Request) => Request;
      onResponse?: (status: number, body: string) => void;
    }
    interface Options {
      url: string | string[];
      connections: number;
      /** Seconds, and for a timeout. */
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
  }
  function autocannon(
    o: autocannon.Options,
    done: (e: Error | null, r: autocannon.Result) => void,
  ): unknown;
  export = autocannon;
}
