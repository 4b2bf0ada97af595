import { createServer } from 'node:net';

/** True when nothing listens on 127.0.0.1:port. */
export function isPortFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once('error', () => resolve(false));
    server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)));
  });
}

/** Ports handed out by this process: two calls in a row must not return the same free port. */
const handedOut = new Set<number>();

/**
 * A free port below the kernel's ephemeral range (32768+), where client sockets would collide
 * with it. Starts from a pseudo-random point so parallel runs rarely pick the same one.
 */
export async function findFreePort(from = 20000, to = 32000): Promise<number> {
  const span = to - from;
  const start = from + ((process.pid * 7919 + Date.now()) % span);
  for (let i = 0; i < span; i++) {
    const port = from + ((start - from + i) % span);
    if (handedOut.has(port)) continue;
    if (await isPortFree(port)) {
      handedOut.add(port);
      return port;
    }
  }
  throw new Error(`no free port between ${from} and ${to}`);
}
