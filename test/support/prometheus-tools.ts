/**
 * The Prometheus tools the tests run: promtool (Debian package `prometheus`) and the real Alertmanager and
 * amtool (Debian package `prometheus-alertmanager`, which names the server binary prometheus-alertmanager).
 * `bash scripts/install-prometheus.sh` installs them (without starting their services); the global setup runs
 * it when one is missing. PROMTOOL_BIN, ALERTMANAGER_BIN and AMTOOL_BIN override the lookup.
 */
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { freePort } from '../../src/temporal/free-port';

const INSTALL_HINT =
  'run `bash scripts/install-prometheus.sh` (installs Debian prometheus and prometheus-alertmanager)';

export interface PrometheusTools {
  promtool: string;
  alertmanager: string;
  amtool: string;
}

function isExecutable(file: string): boolean {
  try {
    fs.accessSync(file, fs.constants.X_OK);
    return fs.statSync(file).isFile();
  } catch {
    return false;
  }
}

/** $ENV_VAR, then /usr/bin (where the Debian packages put them), then PATH. */
function find(envVar: string, names: string[]): string {
  const fromEnv = process.env[envVar];
  if (fromEnv) {
    if (!isExecutable(fromEnv))
      throw new Error(`${envVar}=${fromEnv} is not an executable file; ${INSTALL_HINT}`);
    return fromEnv;
  }
  const dirs = ['/usr/bin', ...(process.env.PATH ?? '').split(path.delimiter).filter(Boolean)];
  const found = dirs.flatMap((d) => names.map((n) => path.join(d, n))).find(isExecutable);
  if (found) return found;
  throw new Error(
    `${names.join(' or ')} not found (looked at $${envVar}, /usr/bin and PATH); ${INSTALL_HINT}, or set ${envVar}`,
  );
}

/** Finds promtool, alertmanager and amtool; throws naming the missing one and how to install it. */
export function findPrometheusTools(): PrometheusTools {
  return {
    promtool: find('PROMTOOL_BIN', ['promtool']),
    alertmanager: find('ALERTMANAGER_BIN', ['prometheus-alertmanager', 'alertmanager']),
    amtool: find('AMTOOL_BIN', ['amtool']),
  };
}

/** A real Alertmanager started by {@link startAlertmanager}. */
export interface RunningAlertmanager {
  /** `http://127.0.0.1:<port>`: its API (`/api/v2/…`), `/metrics`, `/-/ready`. */
  url: string;
  /** What it has logged so far (the last 256 KiB), for failure messages. */
  output(): string;
  /** SIGTERM, then waits for it to exit (SIGKILL and an error after `timeoutMs`); answers its exit code. */
  stop(timeoutMs?: number): Promise<number | null>;
}

export interface AlertmanagerOptions {
  /** Default: {@link findPrometheusTools}'s. */
  binary?: string;
  configFile: string;
  /** Its `--storage.path` (notification log and silences): a directory of the test's own. */
  storagePath: string;
  /** How long to wait for `/-/ready`. Default 30 s. */
  readyTimeoutMs?: number;
}

const OUTPUT_LIMIT = 256 * 1024;

/**
 * Starts Alertmanager on 127.0.0.1 (a free port) without clustering (`--cluster.listen-address=`: one
 * instance, no gossip port), logging at debug level, and resolves once `/-/ready` answers 200. Throws with what
 * it logged when it exits first; a port taken in the meantime is retried with another.
 */
export async function startAlertmanager(o: AlertmanagerOptions): Promise<RunningAlertmanager> {
  const binary = o.binary ?? findPrometheusTools().alertmanager;
  for (let attempt = 1; ; attempt++) {
    try {
      return await startAlertmanagerOnce(binary, await freePort(), o);
    } catch (err) {
      if (attempt < 3 && /address already in use/.test(String(err))) continue;
      throw err;
    }
  }
}

async function startAlertmanagerOnce(
  binary: string,
  port: number,
  o: AlertmanagerOptions,
): Promise<RunningAlertmanager> {
  const url = `http://127.0.0.1:${port}`;
  const child = spawn(
    binary,
    [
      `--config.file=${o.configFile}`,
      `--storage.path=${o.storagePath}`,
      `--web.listen-address=127.0.0.1:${port}`,
      '--cluster.listen-address=',
      '--log.level=debug',
    ],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let output = '';
  const append = (d: Buffer): void => {
    output = (output + d.toString()).slice(-OUTPUT_LIMIT);
  };
  child.stdout.on('data', append);
  child.stderr.on('data', append);
  let exit: { code: number | null; signal: NodeJS.Signals | null } | null = null;
  const exited = new Promise<void>((resolve) => {
    child.once('error', (err) => {
      append(Buffer.from(`spawn ${binary}: ${err.message}\n`));
      exit ??= { code: null, signal: null };
      resolve();
    });
    child.once('exit', (code, signal) => {
      exit = { code, signal };
      resolve();
    });
  });

  const stop = async (timeoutMs = 15_000): Promise<number | null> => {
    if (!exit) child.kill('SIGTERM');
    let timer: NodeJS.Timeout | undefined;
    const inTime = await Promise.race([
      exited.then(() => true),
      new Promise<false>((resolve) => (timer = setTimeout(() => resolve(false), timeoutMs))),
    ]);
    clearTimeout(timer);
    if (!inTime) {
      child.kill('SIGKILL');
      await exited;
      throw new Error(`Alertmanager did not exit within ${timeoutMs} ms of SIGTERM; it logged:\n${output}`);
    }
    return exit!.code;
  };

  const deadline = Date.now() + (o.readyTimeoutMs ?? 30_000);
  for (;;) {
    if (exit) {
      const { code, signal } = exit as { code: number | null; signal: NodeJS.Signals | null };
      throw new Error(`Alertmanager exited (code ${code}, signal ${signal}) before it was ready:\n${output}`);
    }
    try {
      const res = await fetch(`${url}/-/ready`, { signal: AbortSignal.timeout(2_000) });
      if (res.ok) return { url, output: () => output, stop };
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) {
      await stop().catch(() => undefined);
      throw new Error(
        `Alertmanager not ready at ${url}/-/ready after ${o.readyTimeoutMs ?? 30_000} ms:\n${output}`,
      );
    }
    await new Promise((r) => setTimeout(r, 100));
  }
}
