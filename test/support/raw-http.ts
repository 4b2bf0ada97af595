import { request as httpRequest } from 'node:http';
import { connect } from 'node:net';

/** A response read below fetch: header names lower-cased, the body as bytes. */
export interface RawResponse {
  status: number;
  headers: Record<string, string>;
  body: Buffer;
  text: string;
}

/**
 * Sends `bytes` as they are over a fresh TCP connection (nothing fetch or node:http would refuse
 * or normalise: control characters in headers, invalid bytes in the request line, a Content-Length
 * that lies) and reads the answer until the server closes the connection. Send
 * `Connection: close`, or a request the server refuses, or it waits for the server's idle timeout.
 */
export function sendRawHttp(port: number, bytes: Buffer | string): Promise<RawResponse> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1', () => socket.end(bytes));
    const chunks: Buffer[] = [];
    socket.on('data', (chunk: Buffer) => chunks.push(chunk));
    socket.on('error', reject);
    socket.on('close', () => {
      try {
        resolve(parseRawResponse(Buffer.concat(chunks)));
      } catch (error) {
        reject(error instanceof Error ? error : new Error(String(error)));
      }
    });
  });
}

/** Parses one HTTP/1.1 response (Content-Length or read-to-close; no chunked bodies expected). */
export function parseRawResponse(raw: Buffer): RawResponse {
  const end = raw.indexOf('\r\n\r\n');
  if (end < 0) throw new Error(`no complete HTTP response: ${JSON.stringify(raw.toString())}`);
  const [statusLine, ...lines] = raw.subarray(0, end).toString('latin1').split('\r\n');
  const match = /^HTTP\/1\.[01] (\d{3})/.exec(statusLine);
  if (!match) throw new Error(`bad status line: ${JSON.stringify(statusLine)}`);
  const headers: Record<string, string> = {};
  for (const line of lines) {
    const colon = line.indexOf(':');
    headers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim();
  }
  let body = raw.subarray(end + 4);
  if (headers['content-length'] !== undefined) {
    body = body.subarray(0, Number(headers['content-length']));
  }
  if (headers['transfer-encoding'] === 'chunked') throw new Error('chunked response not expected');
  return { status: Number(match[1]), headers, body, text: body.toString('utf8') };
}

/**
 * One request through node:http, which (unlike fetch) sends header values with bytes 0x80–0xff
 * as latin1, keeps a request path exactly as given, and lets the caller drop Content-Type.
 */
export function sendNodeHttp(
  port: number,
  options: {
    method: string;
    path: string;
    headers?: Record<string, string>;
    body?: Buffer | string;
  },
): Promise<RawResponse> {
  return new Promise((resolve, reject) => {
    const request = httpRequest(
      {
        host: '127.0.0.1',
        port,
        method: options.method,
        path: options.path,
        headers: options.headers,
        agent: false,
      },
      (response) => {
        const chunks: Buffer[] = [];
        response.on('data', (chunk: Buffer) => chunks.push(chunk));
        response.on('error', reject);
        response.on('end', () => {
          const body = Buffer.concat(chunks);
          const headers: Record<string, string> = {};
          for (const [name, value] of Object.entries(response.headers)) {
            if (value !== undefined)
              headers[name] = Array.isArray(value) ? value.join(', ') : value;
          }
          resolve({ status: response.statusCode ?? 0, headers, body, text: body.toString('utf8') });
        });
      },
    );
    request.on('error', reject);
    request.end(options.body);
  });
}
