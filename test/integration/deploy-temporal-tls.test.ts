/**
 * The Temporal connection options of the deployment (TEMPORAL_TLS*, TEMPORAL_API_KEY_FILE) on real connections:
 * the client's Connection (receiver, metrics, start-up) and the worker's NativeConnection (the SDK's Rust core)
 * reach the real Temporal dev server through a TLS front that asks for a client certificate (as a Temporal
 * frontend with mTLS, or Temporal Cloud, does), and an API key reaches the server as `Authorization: Bearer`.
 * Certificates come from openssl, as an operator would make them.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import * as http2 from 'node:http2';
import * as net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tls from 'node:tls';
import { once } from 'node:events';
import { Connection } from '@temporalio/client';
import { NativeConnection } from '@temporalio/worker';
import { loadConfig } from '../../src/config';
import { temporalConnectionSecurity } from '../../src/temporal/connection-options';
import { temporalAddress } from '../support/temporal';

/** The name in the front's certificate: not 127.0.0.1, so the connection needs TEMPORAL_TLS_SERVER_NAME. */
const SERVER_NAME = 'temporal-frontend.test';

let dir: string;
const path = (name: string) => join(dir, name);

function openssl(args: string[]): void {
  execFileSync('openssl', args, { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'] });
}

/** A key and a certificate signed by the test CA, for a server (SAN: DNS name) or a client (CN). */
function issue(name: string, ext: string, subject: string): void {
  writeFileSync(path(`${name}.ext`), ext);
  openssl(
    ['req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'].concat([
      '-keyout',
      `${name}.key`,
      '-out',
      `${name}.csr`,
      '-subj',
      subject,
    ]),
  );
  openssl(
    ['x509', '-req', '-in', `${name}.csr`, '-CA', 'ca.crt', '-CAkey', 'ca.key', '-CAcreateserial'].concat([
      '-days',
      '2',
      '-out',
      `${name}.crt`,
      '-extfile',
      `${name}.ext`,
    ]),
  );
}

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'deploy-temporal-tls-'));
  openssl(
    ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'].concat([
      '-keyout',
      'ca.key',
      '-out',
      'ca.crt',
      '-days',
      '2',
      '-subj',
      '/CN=vpsie-runbook test CA',
    ]),
  );
  issue('server', `subjectAltName=DNS:${SERVER_NAME}\nextendedKeyUsage=serverAuth\n`, `/CN=${SERVER_NAME}`);
  issue('client', 'extendedKeyUsage=clientAuth\n', '/CN=vpsie-runbook-worker');
  writeFileSync(path('api-key'), 'tc-test.api-key.0123456789\n');
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** A TLS front for the dev server that requires a client certificate, and says who connected or why not. */
async function mtlsFront(): Promise<{
  address: string;
  clients: string[];
  refused: string[];
  close(): Promise<void>;
}> {
  const [host, port] = temporalAddress().split(':');
  const clients: string[] = [];
  const refused: string[] = [];
  const sockets = new Set<net.Socket>();
  const server = tls.createServer(
    {
      key: readFileSync(path('server.key')),
      cert: readFileSync(path('server.crt')),
      ca: readFileSync(path('ca.crt')),
      requestCert: true,
      rejectUnauthorized: true,
      ALPNProtocols: ['h2'],
    },
    (socket) => {
      clients.push(String(socket.getPeerCertificate().subject?.CN));
      const upstream = net.connect(Number(port), host);
      for (const s of [socket, upstream]) {
        sockets.add(s);
        s.on('error', () => s.destroy());
        s.on('close', () => sockets.delete(s));
      }
      socket.pipe(upstream).pipe(socket);
    },
  );
  server.on('tlsClientError', (err) => refused.push(err.message));
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return {
    address: `127.0.0.1:${(server.address() as net.AddressInfo).port}`,
    clients,
    refused,
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

describe('the deployment reaches Temporal over mTLS (TEMPORAL_TLS_*)', () => {
  it('connects the client and the worker with the client certificate, and checks the server against the CA and name', async () => {
    const front = await mtlsFront();
    try {
      const config = loadConfig({
        TEMPORAL_ADDRESS: front.address,
        TEMPORAL_TLS_SERVER_CA_CERT_PATH: path('ca.crt'),
        TEMPORAL_TLS_CLIENT_CERT_PATH: path('client.crt'),
        TEMPORAL_TLS_CLIENT_KEY_PATH: path('client.key'),
        TEMPORAL_TLS_SERVER_NAME: SERVER_NAME,
      });
      const security = await temporalConnectionSecurity(config.temporalSecurity);
      const connection = await Connection.connect({ address: front.address, ...security });
      try {
        const ns = await connection.workflowService.describeNamespace({ namespace: 'default' });
        expect(ns.namespaceInfo?.name).toBe('default');
      } finally {
        await connection.close();
      }
      const native = await NativeConnection.connect({ address: front.address, ...security });
      await native.close();
      expect(front.clients.length).toBeGreaterThanOrEqual(2);
      expect(new Set(front.clients)).toEqual(new Set(['vpsie-runbook-worker']));
    } finally {
      await front.close();
    }
  });

  it('is refused by the front without a client certificate', async () => {
    const front = await mtlsFront();
    try {
      const config = loadConfig({
        TEMPORAL_ADDRESS: front.address,
        TEMPORAL_TLS_SERVER_CA_CERT_PATH: path('ca.crt'),
        TEMPORAL_TLS_SERVER_NAME: SERVER_NAME,
      });
      const security = await temporalConnectionSecurity(config.temporalSecurity);
      await expect(
        Connection.connect({ address: front.address, ...security, connectTimeout: 3_000 }),
      ).rejects.toThrow();
      expect(front.clients).toEqual([]);
      expect(front.refused.join('\n')).toMatch(/peer did not return a certificate/);
    } finally {
      await front.close();
    }
  });

  it("does not trust a server whose certificate does not carry TEMPORAL_TLS_SERVER_NAME's name", async () => {
    const front = await mtlsFront();
    try {
      const config = loadConfig({
        TEMPORAL_ADDRESS: front.address,
        TEMPORAL_TLS_SERVER_CA_CERT_PATH: path('ca.crt'),
        TEMPORAL_TLS_CLIENT_CERT_PATH: path('client.crt'),
        TEMPORAL_TLS_CLIENT_KEY_PATH: path('client.key'),
        TEMPORAL_TLS_SERVER_NAME: 'another-frontend.test',
      });
      const security = await temporalConnectionSecurity(config.temporalSecurity);
      await expect(
        Connection.connect({ address: front.address, ...security, connectTimeout: 3_000 }),
      ).rejects.toThrow();
      expect(front.clients).toEqual([]);
      // the client broke off the handshake: it reached the front and refused its certificate
      expect(front.refused.length).toBeGreaterThan(0);
    } finally {
      await front.close();
    }
  });
});

describe('the deployment sends its Temporal Cloud API key (TEMPORAL_API_KEY_FILE)', () => {
  it('as Authorization: Bearer over TLS, from the client and from the worker', async () => {
    // A gRPC endpoint that records the headers and refuses the key, as Temporal Cloud refuses an unknown one.
    const seen: { authorization?: string; path?: string }[] = [];
    const server = http2.createSecureServer({
      key: readFileSync(path('server.key')),
      cert: readFileSync(path('server.crt')),
    });
    const sessions = new Set<http2.ServerHttp2Session>();
    server.on('session', (session) => {
      sessions.add(session);
      session.on('close', () => sessions.delete(session));
    });
    server.on('stream', (stream, headers) => {
      seen.push({ authorization: headers.authorization, path: headers[':path'] });
      stream.respond(
        {
          ':status': 200,
          'content-type': 'application/grpc',
          'grpc-status': '16',
          'grpc-message': 'API key not accepted',
        },
        { endStream: true },
      );
    });
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    const address = `127.0.0.1:${(server.address() as net.AddressInfo).port}`;
    try {
      const config = loadConfig({
        TEMPORAL_ADDRESS: address,
        TEMPORAL_API_KEY_FILE: path('api-key'),
        TEMPORAL_TLS_SERVER_CA_CERT_PATH: path('ca.crt'),
        TEMPORAL_TLS_SERVER_NAME: SERVER_NAME,
      });
      const security = await temporalConnectionSecurity(config.temporalSecurity);
      // the client's ServiceError says "Failed to connect"; the server's answer is its cause
      await expect(Connection.connect({ address, ...security, connectTimeout: 5_000 })).rejects.toMatchObject(
        {
          cause: { details: 'API key not accepted' },
        },
      );
      await expect(NativeConnection.connect({ address, ...security })).rejects.toThrow(
        /API key not accepted/,
      );
      expect(seen.length).toBeGreaterThanOrEqual(2);
      for (const s of seen) {
        expect(s.authorization).toBe('Bearer tc-test.api-key.0123456789');
        expect(s.path).toBe('/temporal.api.workflowservice.v1.WorkflowService/GetSystemInfo');
      }
    } finally {
      for (const session of sessions) session.destroy(); // the clients keep theirs open
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
  });
});
