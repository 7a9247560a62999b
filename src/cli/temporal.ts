/**
 * Where the CLI finds Temporal: the worker's environment variables (src/config.ts), overridden by flags, and the
 * connection, with every way of failing told as an exit code (3 when Temporal cannot be reached).
 */
import {
  Client,
  Connection,
  isGrpcServiceError,
  ServiceError,
  WorkflowNotFoundError,
} from '@temporalio/client';
import { NamespaceNotFoundError } from '@temporalio/common';
import { ConfigError, loadConfig, type Config, type TemporalSecurity } from '../config';
import { temporalConnectionSecurity } from '../temporal/connection-options';
import { CliError, EXIT, usageError } from './errors';

export interface TemporalSettings {
  address: string;
  namespace: string;
  taskQueue: string;
  connectTimeoutMs: number;
  /** TEMPORAL_TLS* and TEMPORAL_API_KEY(_FILE), as the worker connects. */
  security: TemporalSecurity;
}

/** The global flags that say where Temporal is. */
export interface TemporalFlags {
  address?: string;
  namespace?: string;
  taskQueue?: string;
  connectTimeoutMs: number;
}

const HOST_PORT = /^(\[[0-9a-fA-F:]+\]|[A-Za-z0-9.-]+):(\d{1,5})$/;
const NAMESPACE = /^[A-Za-z0-9][A-Za-z0-9._-]{0,254}$/;

/** The worker's configuration from the environment; a bad variable is a usage error that names it. */
export function loadEnvConfig(env: NodeJS.ProcessEnv = process.env): Config {
  try {
    return loadConfig(env);
  } catch (err) {
    if (err instanceof ConfigError) throw usageError(err.message);
    throw err;
  }
}

/**
 * TEMPORAL_ADDRESS, TEMPORAL_NAMESPACE and TEMPORAL_TASK_QUEUE as the worker reads them; unset TEMPORAL_ADDRESS
 * means the embedded dev server `npm start` runs, on 127.0.0.1:TEMPORAL_DEV_PORT. Flags win.
 */
export function temporalSettings(flags: TemporalFlags, config: Config): TemporalSettings {
  const address = flags.address ?? config.temporal.address ?? `127.0.0.1:${config.devServer.port}`;
  const m = HOST_PORT.exec(address);
  if (!m || Number(m[2]) < 1 || Number(m[2]) > 65535)
    throw usageError(
      `--address must be host:port (for example temporal:7233), got ${JSON.stringify(address)}`,
    );
  const namespace = flags.namespace ?? config.temporal.namespace;
  if (!NAMESPACE.test(namespace))
    throw usageError(`--namespace must be a Temporal namespace name, got ${JSON.stringify(namespace)}`);
  const taskQueue = flags.taskQueue ?? config.temporal.taskQueue;
  if (!/^\S{1,255}$/.test(taskQueue))
    throw usageError(
      `--task-queue must be a task queue name without spaces, got ${JSON.stringify(taskQueue)}`,
    );
  return {
    address,
    namespace,
    taskQueue,
    connectTimeoutMs: flags.connectTimeoutMs,
    security: config.temporalSecurity,
  };
}

export interface TemporalSession {
  settings: TemporalSettings;
  connection: Connection;
  client: Client;
  /** Runs `fn` with a deadline on every call it makes, so a call no worker answers cannot hang the CLI. */
  within<T>(ms: number, fn: () => Promise<T>): Promise<T>;
}

const GRPC_UNAVAILABLE = 14;

function unreachable(s: TemporalSettings, why: string): CliError {
  return new CliError(
    `cannot reach Temporal at ${s.address} (namespace ${s.namespace}): ${why}; set TEMPORAL_ADDRESS or --address`,
    EXIT.TEMPORAL_UNREACHABLE,
  );
}

/** A failure of a Temporal call in the terms of the CLI: unreachable (3), no such namespace or run (1). */
export function temporalFailure(err: unknown, s: TemporalSettings): unknown {
  if (err instanceof CliError) return err;
  if (err instanceof NamespaceNotFoundError)
    return new CliError(`namespace ${s.namespace} does not exist on Temporal at ${s.address}`, EXIT.FAILED);
  if (err instanceof WorkflowNotFoundError) return new CliError(err.message, EXIT.FAILED);
  const grpc = isGrpcServiceError(err)
    ? err
    : err instanceof ServiceError && isGrpcServiceError(err.cause)
      ? err.cause
      : null;
  if (grpc?.code === GRPC_UNAVAILABLE) return unreachable(s, grpc.details || grpc.message);
  return err;
}

/** Connects (within the connect timeout), runs `fn`, closes; Temporal's failures become CliErrors. */
export async function withTemporal<T>(
  s: TemporalSettings,
  fn: (t: TemporalSession) => Promise<T>,
): Promise<T> {
  let security: Awaited<ReturnType<typeof temporalConnectionSecurity>>;
  try {
    security = await temporalConnectionSecurity(s.security); // the TLS files and the API key, read now
  } catch (err) {
    if (err instanceof ConfigError) throw usageError(err.message);
    throw err;
  }
  let connection: Connection;
  try {
    connection = await Connection.connect({
      address: s.address,
      connectTimeout: s.connectTimeoutMs,
      ...security,
    });
  } catch (err) {
    throw unreachable(s, err instanceof Error ? err.message : String(err));
  }
  const session: TemporalSession = {
    settings: s,
    connection,
    client: new Client({ connection, namespace: s.namespace }),
    within: (ms, f) => connection.withDeadline(Date.now() + ms, f),
  };
  try {
    return await fn(session);
  } catch (err) {
    throw temporalFailure(err, s);
  } finally {
    await connection.close();
  }
}
