/**
 * A fake kubelet for tests: a small HTTPS server on 127.0.0.1 that answers the one kubelet endpoint the
 * apiserver's `pods/log` subresource proxies to, `GET /containerLogs/{namespace}/{pod}/{container}`.
 *
 * The apiserver reaches a kubelet through the Node the pod is bound to (`spec.nodeName`): the first address in
 * `status.addresses` of a preferred type (default order Hostname, InternalDNS, InternalIP, ExternalDNS,
 * ExternalIP) and `status.daemonEndpoints.kubeletEndpoint.Port`, always over HTTPS. Without
 * `--kubelet-certificate-authority` the apiserver does not verify the kubelet's serving certificate, so the
 * self-signed one made here at start (with the `openssl` CLI: node:crypto cannot issue X.509 certificates) is
 * enough. A Node with only an InternalIP of 127.0.0.1 and this server's port makes
 * `kubectl logs` / `CoreV1Api.readNamespacedPodLog` travel apiserver → this server, like on a real cluster.
 *
 * Query parameters honoured as the kubelet does: `tailLines`, `sinceSeconds`, `sinceTime`, `timestamps`,
 * `limitBytes`, `follow` (streams new lines until the client goes away or stop()), `previous` (400: there is no
 * previous container). Unknown pods or containers answer 404.
 */
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as https from 'node:https';
import type { IncomingMessage, ServerResponse } from 'node:http';
import * as os from 'node:os';
import * as path from 'node:path';
import { closeNow, listenOnLoopback } from '../loopback-server';

export interface LogLine {
  /** When the container wrote the line (what `sinceSeconds`, `sinceTime` and `timestamps` use). */
  time: Date;
  /** The line without its trailing newline. */
  text: string;
}

export interface KubeletRequest {
  method: string;
  path: string;
  query: Record<string, string>;
  status: number;
  at: Date;
}

interface ServingCert {
  key: string;
  cert: string;
}

let servingCert: ServingCert | undefined;

/** A self-signed certificate for 127.0.0.1 / localhost, made once per process with the openssl CLI. */
export function selfSignedCert(): ServingCert {
  if (servingCert) return servingCert;
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'fake-kubelet-'));
  try {
    const keyFile = path.join(dir, 'kubelet.key');
    const certFile = path.join(dir, 'kubelet.crt');
    try {
      execFileSync(
        'openssl',
        [
          'req',
          '-x509',
          '-newkey',
          'ec',
          '-pkeyopt',
          'ec_paramgen_curve:prime256v1',
          '-nodes',
          '-days',
          '2',
          '-subj',
          '/CN=fake-kubelet',
          '-addext',
          'subjectAltName=IP:127.0.0.1,DNS:localhost',
          '-keyout',
          keyFile,
          '-out',
          certFile,
        ],
        { stdio: ['ignore', 'ignore', 'pipe'], timeout: 20_000 },
      );
    } catch (err) {
      throw new Error(
        `fake kubelet: cannot make a self-signed certificate with the openssl CLI (is openssl installed?): ${
          (err as Error).message
        }`,
      );
    }
    servingCert = { key: fs.readFileSync(keyFile, 'utf8'), cert: fs.readFileSync(certFile, 'utf8') };
    return servingCert;
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

/** RFC 3339 with nanoseconds, as the kubelet prefixes lines when `timestamps=true`. */
function rfc3339Nano(d: Date): string {
  return d.toISOString().replace(/\.(\d{3})Z$/, '.$1000000Z');
}

const key = (namespace: string, pod: string, container: string) => `${namespace}/${pod}/${container}`;

interface Follower {
  res: ServerResponse;
  timestamps: boolean;
  bytesLeft: number;
}

interface ContainerLog {
  lines: LogLine[];
  followers: Set<Follower>;
}

export class FakeKubelet {
  /** Every request answered (or being streamed), in order. */
  readonly requests: KubeletRequest[] = [];

  private readonly logs = new Map<string, ContainerLog>();
  private readonly pods = new Set<string>();
  private server?: https.Server;
  private listenPort = 0;

  /** Starts on 127.0.0.1 (random port); answers the port. */
  async start(): Promise<number> {
    if (this.server) return this.listenPort;
    const { key: tlsKey, cert } = selfSignedCert();
    const server = https.createServer({ key: tlsKey, cert }, (req, res) => this.handle(req, res));
    server.on('tlsClientError', () => undefined);
    this.listenPort = await listenOnLoopback(server);
    this.server = server;
    return this.listenPort;
  }

  get port(): number {
    if (!this.server) throw new Error('FakeKubelet: not started');
    return this.listenPort;
  }

  /** Ends streams and closes every connection at once. */
  async stop(): Promise<void> {
    const server = this.server;
    if (!server) return;
    this.server = undefined;
    for (const log of this.logs.values()) {
      for (const f of log.followers) f.res.end();
      log.followers.clear();
    }
    await closeNow(server);
  }

  /** Makes a container known (its log starts empty). */
  addContainer(namespace: string, pod: string, container: string): void {
    this.pods.add(`${namespace}/${pod}`);
    if (!this.logs.has(key(namespace, pod, container)))
      this.logs.set(key(namespace, pod, container), { lines: [], followers: new Set() });
  }

  /** Forgets a pod and its containers (its log requests answer 404 from now on). */
  removePod(namespace: string, pod: string): void {
    this.pods.delete(`${namespace}/${pod}`);
    for (const [k, log] of this.logs) {
      if (k.startsWith(`${namespace}/${pod}/`)) {
        for (const f of log.followers) f.res.end();
        this.logs.delete(k);
      }
    }
  }

  /** Appends a line to a container's log (the container is added when unknown). */
  append(namespace: string, pod: string, container: string, text: string, time: Date = new Date()): void {
    this.addContainer(namespace, pod, container);
    const log = this.logs.get(key(namespace, pod, container)) as ContainerLog;
    for (const part of text.split('\n')) {
      const line = { time, text: part };
      log.lines.push(line);
      for (const f of log.followers) this.writeFollow(f, line);
    }
  }

  /** The lines of a container's log (copies). */
  lines(namespace: string, pod: string, container: string): LogLine[] {
    return (this.logs.get(key(namespace, pod, container))?.lines ?? []).map((l) => ({ ...l }));
  }

  private writeFollow(f: Follower, line: LogLine): void {
    if (f.bytesLeft <= 0) return;
    let chunk = Buffer.from(`${f.timestamps ? `${rfc3339Nano(line.time)} ` : ''}${line.text}\n`);
    if (chunk.length > f.bytesLeft) chunk = chunk.subarray(0, f.bytesLeft);
    f.bytesLeft -= chunk.length;
    f.res.write(chunk);
    if (f.bytesLeft <= 0) f.res.end();
  }

  private handle(req: IncomingMessage, res: ServerResponse): void {
    const url = new URL(req.url ?? '/', 'https://kubelet.invalid');
    const query = Object.fromEntries(url.searchParams);
    const record: KubeletRequest = {
      method: req.method ?? 'GET',
      path: url.pathname,
      query,
      status: 0,
      at: new Date(),
    };
    this.requests.push(record);
    const reply = (status: number, text: string) => {
      record.status = status;
      res.writeHead(status, {
        'Content-Type': 'text/plain; charset=utf-8',
        'Content-Length': Buffer.byteLength(text),
      });
      res.end(text);
    };

    const m = /^\/containerLogs\/([^/]+)\/([^/]+)\/([^/]+)\/?$/.exec(url.pathname);
    if (!m) return reply(404, `404 page not found: ${url.pathname}\n`);
    if (record.method !== 'GET') return reply(405, `method ${record.method} not allowed\n`);
    const [namespace, pod, container] = m.slice(1).map(decodeURIComponent);
    if (!this.pods.has(`${namespace}/${pod}`))
      return reply(404, `pod "${pod}" in namespace "${namespace}" not found\n`);
    const log = this.logs.get(key(namespace, pod, container));
    if (!log) return reply(404, `container "${container}" in pod "${pod}" is not available\n`);

    const bool = (name: string) => query[name] === 'true' || query[name] === '1';
    const int = (name: string): number | undefined | 'bad' => {
      const raw = query[name];
      if (raw === undefined) return undefined;
      return /^-?\d+$/.test(raw) ? Number(raw) : 'bad';
    };
    const tailLines = int('tailLines');
    const sinceSeconds = int('sinceSeconds');
    const limitBytes = int('limitBytes');
    if (tailLines === 'bad' || sinceSeconds === 'bad' || limitBytes === 'bad')
      return reply(400, 'tailLines, sinceSeconds and limitBytes must be integers\n');
    if (bool('previous'))
      return reply(400, `previous terminated container "${container}" in pod "${pod}" not found\n`);

    let since: number | undefined;
    if (sinceSeconds !== undefined) since = Date.now() - sinceSeconds * 1000;
    if (query.sinceTime !== undefined) {
      const t = Date.parse(query.sinceTime);
      if (Number.isNaN(t)) return reply(400, `sinceTime ${query.sinceTime} is not RFC 3339\n`);
      since = t;
    }
    let lines = since === undefined ? log.lines : log.lines.filter((l) => l.time.getTime() >= since);
    if (tailLines !== undefined) lines = tailLines <= 0 ? [] : lines.slice(-tailLines);
    const timestamps = bool('timestamps');
    const render = (l: LogLine) => `${timestamps ? `${rfc3339Nano(l.time)} ` : ''}${l.text}\n`;
    let body = Buffer.from(lines.map(render).join(''));
    let bytesLeft = limitBytes !== undefined && limitBytes > 0 ? limitBytes : Infinity;
    if (body.length > bytesLeft) body = body.subarray(0, bytesLeft);
    bytesLeft -= body.length;

    record.status = 200;
    if (!bool('follow') || bytesLeft <= 0) {
      res.writeHead(200, { 'Content-Type': 'text/plain; charset=utf-8', 'Content-Length': body.length });
      res.end(body);
      return;
    }
    res.writeHead(200, { 'Content-Type': 'text/plain; charset=utf-8', 'Transfer-Encoding': 'chunked' });
    res.write(body);
    const follower: Follower = { res, timestamps, bytesLeft };
    log.followers.add(follower);
    const done = () => log.followers.delete(follower);
    res.on('close', done);
    req.on('close', done);
  }
}
