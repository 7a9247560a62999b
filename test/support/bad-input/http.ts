/**
 * Sends one request as a client would, with full control of the method, path, headers and framing (node:http:
 * fetch would add or fix headers), and answers the status, headers and parsed JSON body.
 */
import http from 'node:http';

export interface SentRequest {
  method: string;
  path: string;
  headers: Record<string, string>;
  body: string;
  /** No Content-Length: the body goes chunked, so the server has to count. */
  chunked?: boolean;
}

export interface Received {
  status: number;
  headers: http.IncomingHttpHeaders;
  text: string;
  /** The body as JSON, or null when it is not JSON. */
  json: { status?: string; message?: string; alerts?: { result: string; reason?: string }[] } | null;
}

export function send(baseUrl: string, r: SentRequest, agent: http.Agent): Promise<Received> {
  const url = new URL(baseUrl);
  const body = Buffer.from(r.body, 'utf8');
  return new Promise((resolve, reject) => {
    let answered = false;
    const req = http.request(
      {
        host: url.hostname,
        port: url.port,
        method: r.method,
        path: r.path,
        agent,
        headers: {
          ...r.headers,
          ...(r.chunked ? { 'transfer-encoding': 'chunked' } : { 'content-length': String(body.length) }),
        },
      },
      (res) => {
        answered = true;
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.once('error', reject);
        res.once('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          let json: Received['json'] = null;
          try {
            json = JSON.parse(text) as Received['json'];
          } catch {
            json = null;
          }
          resolve({ status: res.statusCode ?? 0, headers: res.headers, text, json });
        });
      },
    );
    // A server that refuses a large body answers and closes before reading it all: an error writing the rest
    // after the answer came is expected, before it is not.
    req.on('error', (err) => {
      if (!answered) reject(err);
    });
    if (r.chunked) {
      for (let at = 0; at < body.length; at += 4096) req.write(body.subarray(at, at + 4096));
      req.end();
    } else req.end(body);
  });
}

/** Runs `fn` over `items`, at most `limit` at once, keeping the order of the results. */
export async function pool<T, R>(items: T[], limit: number, fn: (item: T) => Promise<R>): Promise<R[]> {
  const out = new Array<R>(items.length);
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i]);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return out;
}
