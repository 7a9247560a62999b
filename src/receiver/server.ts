/**
 * The receiver's HTTP server (node:http): `POST /webhooks/alertmanager`, `GET /healthz`, `GET /readyz`.
 *
 * Answers follow Alertmanager's retry rules: it retries 5xx and network errors and never 4xx, so a request that
 * can never succeed (not JSON, not the v4 payload, too large, the wrong content type, no or a wrong token, a label
 * that is no Kubernetes name) gets a 4xx before anything is done, and a request whose alerts could not all be
 * handled (Temporal or Kubernetes unreachable) a 5xx. Every answer is JSON with a `message`.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { DEFAULT_MAX_BODY_BYTES, WEBHOOK_PATH } from './defaults';
import { takeNotification, type IntakeOptions } from './intake';
import { parseWebhookPayload } from './payload';

/** RECEIVER_TOKEN or RECEIVER_TOKEN_FILE (read at every request, so a rotated secret needs no restart). */
export interface TokenSource {
  variable: string;
  file?: string;
  value?: string;
}

export interface ReceiverServerOptions extends IntakeOptions {
  host: string;
  /** 0: any free port (tests). */
  port: number;
  /** When set, `Authorization: Bearer <token>` is required on the webhook. */
  token?: TokenSource | null;
  maxBodyBytes?: number;
  log?: (line: string) => void;
}

export interface ReceiverServer {
  /** `http://host:port` (127.0.0.1 when listening on every interface). */
  url: string;
  port: number;
  /** Stops taking requests, finishes those in flight, then resolves. */
  close(): Promise<void>;
}

/** How long a graceful close waits for requests in flight before it cuts their connections. */
const CLOSE_GRACE_MS = 30_000;

type Answer = { status: number; body: unknown; headers?: Record<string, string> };

const json = (status: number, body: unknown, headers?: Record<string, string>): Answer => ({
  status,
  body,
  ...(headers ? { headers } : {}),
});

class TooLarge extends Error {}

/** The body, at most `limit` bytes; TooLarge as soon as it is known to be more (Content-Length or counted). */
function readBody(req: http.IncomingMessage, limit: number): Promise<Buffer> {
  const declared = Number(req.headers['content-length']);
  if (Number.isFinite(declared) && declared > limit) return Promise.reject(new TooLarge());
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const onData = (chunk: Buffer): void => {
      size += chunk.length;
      if (size > limit) {
        req.off('data', onData);
        req.resume(); // drain what is in flight; the answer closes the connection
        reject(new TooLarge());
        return;
      }
      chunks.push(chunk);
    };
    req.on('data', onData);
    req.once('end', () => resolve(Buffer.concat(chunks)));
    req.once('error', reject);
  });
}

const digest = (s: string): Buffer => createHash('sha256').update(s, 'utf8').digest();

/** Constant-time comparison of the presented token with the configured one (equal-length digests). */
function tokenMatches(header: string | undefined, expected: string): boolean {
  const m = /^Bearer[ \t]+(\S+)[ \t]*$/i.exec(header ?? '');
  const given = digest(m ? m[1] : '');
  return timingSafeEqual(given, digest(expected)) && m !== null;
}

async function readToken(source: TokenSource): Promise<string> {
  if (source.file === undefined) return (source.value ?? '').trim();
  try {
    return (await readFile(source.file, 'utf8')).trim();
  } catch (err) {
    const code = (err as { code?: unknown }).code;
    // the file's name, never its content
    throw new Error(
      `${source.variable} (${source.file}) could not be read${typeof code === 'string' ? `: ${code}` : ''}`,
    );
  }
}

function isJson(contentType: string | undefined): boolean {
  const type = (contentType ?? '').split(';')[0].trim().toLowerCase();
  return type === 'application/json';
}

/** Starts the receiver's HTTP server; resolves once it listens. */
export async function startReceiverServer(o: ReceiverServerOptions): Promise<ReceiverServer> {
  const log = o.log ?? (() => undefined);
  const limit = o.maxBodyBytes ?? DEFAULT_MAX_BODY_BYTES;
  let closing = false;

  const webhook = async (req: http.IncomingMessage): Promise<Answer> => {
    if (o.token) {
      let expected: string;
      try {
        expected = await readToken(o.token);
      } catch (err) {
        log(`cannot check the token: ${(err as Error).message}`);
        return json(500, {
          status: 'error',
          message: `the receiver cannot read its token (${o.token.variable})`,
        });
      }
      if (!expected) {
        log(`cannot check the token: ${o.token.variable} is empty`);
        return json(500, { status: 'error', message: `the receiver's token (${o.token.variable}) is empty` });
      }
      if (!tokenMatches(req.headers.authorization, expected))
        return json(
          401,
          {
            status: 'refused',
            message: req.headers.authorization
              ? 'the bearer token is not the receiver token'
              : 'Authorization: Bearer <token> is required',
          },
          { 'www-authenticate': 'Bearer realm="vpsie-runbook"' },
        );
    }
    if (!isJson(req.headers['content-type']))
      return json(415, {
        status: 'refused',
        message: `Content-Type must be application/json (Alertmanager's webhook), got ${JSON.stringify(req.headers['content-type'] ?? '')}`,
      });
    let raw: Buffer;
    try {
      raw = await readBody(req, limit);
    } catch (err) {
      if (err instanceof TooLarge)
        return json(
          413,
          {
            status: 'refused',
            message: `body larger than ${limit} bytes (RECEIVER_MAX_BODY_BYTES); lower max_alerts in Alertmanager`,
          },
          { connection: 'close' },
        );
      throw err;
    }
    let body: unknown;
    try {
      body = JSON.parse(raw.toString('utf8'));
    } catch (err) {
      return json(400, { status: 'refused', message: `body is not JSON: ${(err as Error).message}` });
    }
    const parsed = parseWebhookPayload(body);
    if (!parsed.ok)
      return json(400, {
        status: 'refused',
        message: `not an Alertmanager webhook payload (version 4): ${parsed.problems.join('; ')}`,
      });
    const answer = await takeNotification(parsed.payload, o);
    return json(
      answer.httpStatus,
      answer.body,
      answer.retryAfterSeconds !== undefined
        ? { 'retry-after': String(answer.retryAfterSeconds) }
        : undefined,
    );
  };

  const route = async (req: http.IncomingMessage): Promise<Answer> => {
    const path = new URL(req.url ?? '/', 'http://receiver').pathname;
    const only = (method: string, fn: () => Promise<Answer>): Promise<Answer> | Answer =>
      req.method === method || (method === 'GET' && req.method === 'HEAD')
        ? fn()
        : json(
            405,
            { status: 'refused', message: `${path} takes ${method} only` },
            { allow: method === 'GET' ? 'GET, HEAD' : method },
          );
    switch (path) {
      case WEBHOOK_PATH:
        return only('POST', () => webhook(req));
      case '/healthz':
        return only('GET', async () => json(200, { status: 'alive' }));
      case '/readyz':
        return only('GET', async () => {
          if (closing) return json(503, { status: 'not ready', message: 'shutting down' });
          try {
            await o.door.ready();
            return json(200, { status: 'ready', message: 'Temporal answers' });
          } catch (err) {
            return json(503, { status: 'not ready', message: (err as Error).message });
          }
        });
      default:
        return json(404, {
          status: 'refused',
          message: `no such path ${path}; Alertmanager posts to ${WEBHOOK_PATH}`,
        });
    }
  };

  const server = http.createServer((req, res) => {
    route(req)
      .catch((err: unknown): Answer => {
        log(`${req.method} ${req.url}: ${(err as Error).stack ?? String(err)}`);
        return json(500, { status: 'error', message: `unexpected: ${(err as Error).message}` });
      })
      .then((answer) => {
        const text = `${JSON.stringify(answer.body)}\n`;
        if (req.url?.startsWith(WEBHOOK_PATH) || answer.status >= 500) {
          const body = answer.body as { message?: string; alerts?: { result: string; reason?: string }[] };
          // what failed, once per reason, so the log says why Alertmanager will retry
          const why = [
            ...new Set((body.alerts ?? []).filter((a) => a.result === 'failed').map((a) => a.reason)),
          ];
          log(
            `${req.method} ${req.url} ${answer.status}: ${body.message ?? ''}${why.length ? ` (${why.join('; ')})` : ''}`,
          );
        }
        res.writeHead(answer.status, {
          'content-type': 'application/json; charset=utf-8',
          'content-length': Buffer.byteLength(text),
          ...(closing ? { connection: 'close' } : {}),
          ...answer.headers,
        });
        res.end(req.method === 'HEAD' ? undefined : text);
      });
  });
  // A slow or stuck client cannot hold a connection for long.
  server.headersTimeout = 10_000;
  server.requestTimeout = 60_000;

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(o.port, o.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const port = (server.address() as AddressInfo).port;
  const shown =
    o.host === '0.0.0.0' || o.host === '::' ? '127.0.0.1' : o.host.includes(':') ? `[${o.host}]` : o.host;

  let closed: Promise<void> | undefined;
  return {
    url: `http://${shown}:${port}`,
    port,
    close(): Promise<void> {
      closed ??= new Promise<void>((resolve) => {
        closing = true;
        const force = setTimeout(() => server.closeAllConnections(), CLOSE_GRACE_MS);
        force.unref();
        server.close(() => {
          clearTimeout(force);
          resolve();
        });
        // keep-alive connections with no request in flight go now; the others after their answer
        server.closeIdleConnections();
      });
      return closed;
    },
  };
}
