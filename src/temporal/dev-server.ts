import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { Connection } from '@temporalio/client';
import type { SearchAttributeType } from '@temporalio/common';
import type { SearchAttributeKey } from '@temporalio/common/lib/search-attributes';
import { freePort } from './free-port';

export interface DevServerOptions {
  /** The Temporal CLI; unset: the SDK downloads its own copy of the dev server (needs internet). */
  binary?: string;
  ip?: string;
  /** 0 or unset: a free port. */
  port?: number;
  /** Unset: no Web UI (headless). */
  uiPort?: number;
  /** Unset: in memory, gone when the server stops. */
  dbFile?: string;
  namespace?: string;
  searchAttributes?: readonly SearchAttributeKey<SearchAttributeType>[];
  /** How long to wait for the server to answer; default 60 s (a cold SQLite file takes a few seconds). */
  startTimeoutMs?: number;
  log?: (line: string) => void;
}

export interface DevServer {
  address: string;
  uiUrl: string | null;
  stop(): Promise<void>;
  /**
   * Stops the server and starts it again on the same address and database file (a server restart, as an upgrade
   * or a crash-and-restart does it); resolves once it answers, with the new process's handle. `whileDown` runs
   * between the two (the outage). Only for a server started from `binary`.
   */
  restart?(whileDown?: () => Promise<void>): Promise<DevServer>;
}

const SA_TYPE_NAMES: Record<string, string> = {
  KEYWORD: 'Keyword',
  TEXT: 'Text',
  INT: 'Int',
  DOUBLE: 'Double',
  BOOL: 'Bool',
  DATETIME: 'Datetime',
  KEYWORD_LIST: 'KeywordList',
};

function stopProcess(child: ChildProcess, graceMs = 10_000): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    const kill = setTimeout(() => child.kill('SIGKILL'), graceMs);
    child.once('exit', () => {
      clearTimeout(kill);
      resolve();
    });
    child.kill('SIGTERM');
  });
}

/**
 * Starts `temporal server start-dev` and resolves once its frontend answers. The process is a child of ours:
 * stop() ends it, and so does our exit.
 */
export async function startDevServer(opts: DevServerOptions): Promise<DevServer> {
  const ip = opts.ip ?? '127.0.0.1';
  if (!opts.binary) return startDownloadedDevServer(opts, ip, opts.port || (await freePort(ip)));
  // A free port found here, and the ones the server picks for its own services, can be taken by another
  // process before the server binds them (two test servers starting at once): then start again, on new ports.
  for (let attempt = 1; ; attempt++) {
    try {
      return await launchDevServer(opts, opts.binary, ip, opts.port || (await freePort(ip)));
    } catch (err) {
      if (opts.port || attempt >= PORT_RACE_ATTEMPTS || !(err instanceof PortTakenError)) throw err;
      opts.log?.(`Temporal dev server lost a port race (${err.message.split('\n')[0]}); starting it again`);
    }
  }
}

/** How many times a start that lost a port to another process is tried. */
const PORT_RACE_ATTEMPTS = 3;

/** The server exited during start-up because a port it wanted was taken. */
class PortTakenError extends Error {}

async function launchDevServer(
  opts: DevServerOptions,
  binary: string,
  ip: string,
  port: number,
): Promise<DevServer> {
  const args = ['server', 'start-dev', '--ip', ip, '--port', String(port), '--log-level', 'warn'];
  args.push('--namespace', opts.namespace ?? 'default');
  if (opts.uiPort) args.push('--ui-port', String(opts.uiPort), '--ui-ip', ip);
  else args.push('--headless');
  if (opts.dbFile) {
    mkdirSync(dirname(opts.dbFile), { recursive: true });
    args.push('--db-filename', opts.dbFile);
  }
  for (const key of opts.searchAttributes ?? []) {
    args.push('--search-attribute', `${key.name}=${SA_TYPE_NAMES[key.type] ?? 'Keyword'}`);
  }

  const child = spawn(binary, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  // If we exit without stop() (an uncaught error, process.exit), the server must not outlive us.
  const killOnExit = (): void => void child.kill('SIGKILL');
  process.once('exit', killOnExit);
  child.once('exit', () => process.off('exit', killOnExit));
  // The first lines say why a server died (a panic's message comes before its long stack), the last what it did.
  const head: string[] = [];
  const tail: string[] = [];
  const keep = (chunk: Buffer): void => {
    if (head.length < 10) head.push(chunk.toString());
    else tail.push(chunk.toString());
    if (tail.length > 40) tail.shift();
  };
  const output = (): string => {
    const text = head.join('') + (tail.length ? `\n…\n${tail.join('')}` : '');
    return text.length > 4000 ? `${text.slice(0, 2000)}\n…\n${text.slice(-2000)}` : text;
  };
  child.stdout?.on('data', keep);
  child.stderr?.on('data', keep);
  let exited: string | null = null;
  child.once('exit', (code, signal) => (exited = `exited with ${signal ?? code}`));
  child.once('error', (err) => (exited = `failed to start: ${err.message}`));

  const address = `${ip}:${port}`;
  const deadline = Date.now() + (opts.startTimeoutMs ?? 60_000);
  for (;;) {
    if (exited) {
      const text = output();
      const Failure = /address already in use/i.test(text) ? PortTakenError : Error;
      throw new Failure(`Temporal dev server ${exited}:\n${text}`);
    }
    try {
      const conn = await Connection.connect({ address, connectTimeout: 1000 });
      await conn.workflowService.describeNamespace({ namespace: opts.namespace ?? 'default' });
      await conn.close();
      break;
    } catch (err) {
      if (Date.now() > deadline) {
        await stopProcess(child);
        throw new Error(`Temporal dev server did not answer on ${address}: ${(err as Error).message}`);
      }
      await new Promise((r) => setTimeout(r, 250));
    }
  }
  const uiUrl = opts.uiPort ? `http://${ip}:${opts.uiPort}` : null;
  opts.log?.(`Temporal dev server on ${address}${uiUrl ? `, Web UI at ${uiUrl}` : ''}`);
  return {
    address,
    uiUrl,
    stop: () => stopProcess(child),
    restart: async (whileDown) => {
      await stopProcess(child);
      await whileDown?.();
      return launchDevServer(opts, binary, ip, port);
    },
  };
}

/** The last resort on a machine without the CLI or Go: the SDK fetches the dev server itself. */
async function startDownloadedDevServer(
  opts: DevServerOptions,
  ip: string,
  port: number,
): Promise<DevServer> {
  const { TestWorkflowEnvironment } = await import('@temporalio/testing');
  opts.log?.('no Temporal CLI found: letting the SDK download its dev server');
  if (opts.dbFile) mkdirSync(dirname(opts.dbFile), { recursive: true });
  const env = await TestWorkflowEnvironment.createLocal({
    server: {
      ip,
      port,
      namespace: opts.namespace ?? 'default',
      ...(opts.uiPort ? { ui: true, uiPort: opts.uiPort } : {}),
      ...(opts.dbFile ? { dbFilename: opts.dbFile } : {}),
      searchAttributes: [...(opts.searchAttributes ?? [])],
    },
  });
  const uiUrl = opts.uiPort ? `http://${ip}:${opts.uiPort}` : null;
  return { address: env.address, uiUrl, stop: () => env.teardown() };
}
