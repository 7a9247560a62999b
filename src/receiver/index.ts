/**
 * The alert intake: Alertmanager's webhook in, runbook runs out. `startReceiver` is what `npm start` (beside the
 * worker), `npm run receiver` (on its own) and tests call.
 *
 * Modules: payload.ts (the v4 payload, zod), alerts.ts (what each alert means, pure), temporal.ts (starting,
 * joining and signalling runs), handled.ts (the firings already answered), limiter.ts (the bound on Temporal
 * work in flight), intake.ts (one notification, alert by alert, and its answer), server.ts (HTTP).
 */
import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import { Client, type ConnectionLike } from '@temporalio/client';
import { resolveInput, type RunbookOptions } from '../runbook/input';
import { DEFAULT_ALERT_NAMES } from './alerts';
import { DEFAULT_MAX_BODY_BYTES, DEFAULT_RECEIVER_HOST, DEFAULT_RECEIVER_PORT } from './defaults';
import type { HandledOptions } from './handled';
import type { VPSieNodeLister } from './intake';
import type { LimiterOptions } from './limiter';
import { startReceiverServer, type ReceiverServer, type TokenSource } from './server';
import { RunbookDoor } from './temporal';

export { DEFAULT_ALERT_NAMES } from './alerts';
export { WEBHOOK_PATH } from './defaults';
export type { AlertAnswer, IntakeAnswer } from './intake';
export type { ReceiverServer, TokenSource } from './server';
export type { RunAction, RunAnswer } from './temporal';

export interface ReceiverOptions {
  /** A client connection to Temporal (`Connection.lazy` lets the receiver start while Temporal is down). */
  connection: ConnectionLike;
  namespace?: string;
  /** The worker's task queue. */
  taskQueue: string;
  /** Reads a NodeGroup's VPSieNodes for a per-NodeGroup alert (a KubernetesClient); null: such alerts fail. */
  kubernetes: VPSieNodeLister | null;
  /** Default 0.0.0.0:8080; port 0 takes any free port. */
  host?: string;
  port?: number;
  token?: TokenSource | null;
  maxBodyBytes?: number;
  alertNames?: readonly string[];
  /** Options of every run started (tests and the demo shorten waits and limits); default the production ones. */
  runOptions?: RunbookOptions;
  /** Deadline of the Temporal calls for one VPSieNode; default 10 s. */
  temporalTimeoutMs?: number;
  kubernetesTimeoutMs?: number;
  /** Bounds of the record of answered firings (default 10,000 entries, 10 minutes; handled.ts). */
  handled?: HandledOptions;
  /** Bounds of the Temporal work in flight (default 16 decisions, 5,000 waiting, 5 s wait; limiter.ts). */
  limits?: LimiterOptions;
  log?: (line: string) => void;
}

/**
 * The receiver's Temporal identity, unique to this receiver: a run's first event names the client that started
 * it, so a run's history says which receiver process started it.
 */
function receiverIdentity(): string {
  return `vpsie-runbook-receiver ${process.pid}@${hostname()} ${randomUUID().slice(0, 8)}`;
}

/** Starts the receiver; resolves once it listens. `close()` finishes the requests in flight. */
export async function startReceiver(o: ReceiverOptions): Promise<ReceiverServer> {
  // Bad run options would fail every alert: InvalidInputError names the option now instead.
  resolveInput({ namespace: 'receiver', name: 'check', options: o.runOptions ?? {} });
  const client = new Client({
    connection: o.connection,
    namespace: o.namespace ?? 'default',
    identity: receiverIdentity(),
  });
  const door = new RunbookDoor({
    client,
    taskQueue: o.taskQueue,
    ...(o.temporalTimeoutMs !== undefined ? { timeoutMs: o.temporalTimeoutMs } : {}),
    ...(o.runOptions ? { runOptions: o.runOptions } : {}),
    ...(o.handled ? { handled: o.handled } : {}),
    ...(o.limits ? { limits: o.limits } : {}),
  });
  return startReceiverServer({
    door,
    kubernetes: o.kubernetes,
    alertNames: new Set(o.alertNames ?? DEFAULT_ALERT_NAMES),
    host: o.host ?? DEFAULT_RECEIVER_HOST,
    port: o.port ?? DEFAULT_RECEIVER_PORT,
    token: o.token ?? null,
    maxBodyBytes: o.maxBodyBytes ?? DEFAULT_MAX_BODY_BYTES,
    ...(o.kubernetesTimeoutMs !== undefined ? { kubernetesTimeoutMs: o.kubernetesTimeoutMs } : {}),
    ...(o.log ? { log: o.log } : {}),
  });
}
