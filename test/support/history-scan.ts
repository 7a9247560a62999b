/**
 * "No secret ever enters workflow history": every workflow execution started on the suite's Temporal server since
 * a moment (a test file's start) is listed through visibility (`StartTime >= …`, in every namespace of the
 * server), its history fetched and decoded (`historyText`: payloads are bytes) and searched for every secret of
 * the registry (test/support/secrets.ts). Histories are read a few at a time, so the cost stays small.
 *
 * Executions whose workflow id starts with {@link CANARY_PREFIX} carry a secret on purpose (the proof that the scan
 * finds one, test/e2e/security.test.ts): the suite's scan leaves them out unless asked.
 */
import { Client, Connection, NamespaceNotFoundError } from '@temporalio/client';
import { historyText } from './histories';
import { findSecrets, registeredSecrets, type RegisteredSecret, type SecretKind } from './secrets';

/** Workflow ids of executions that hold a registered secret on purpose. */
export const CANARY_PREFIX = 'security-canary/';

export interface HistoryScanOptions {
  /** Executions started at or after this moment. */
  since: Date;
  /** Only these namespaces; default every namespace of the server (but temporal-system). */
  namespaces?: string[];
  /** Scan the executions of {@link CANARY_PREFIX} too (default false). */
  includeCanaries?: boolean;
  /** Histories read at once (default 6). */
  concurrency?: number;
  /** The secrets to look for; default every registered one. */
  secrets?: readonly RegisteredSecret[];
  /** An open connection to use (default: one to the suite's server, closed at the end). */
  connection?: Connection;
}

export interface HistoryLeak {
  namespace: string;
  workflowId: string;
  runId: string;
  workflowType: string;
  kind: SecretKind;
  /** The secret described without its value. */
  secret: string;
  /** Text around it, secrets replaced by `<kind>`. */
  context: string;
}

export interface HistoryScanResult {
  namespaces: string[];
  /** Executions whose history was read. */
  runs: number;
  /** Their workflow ids (`namespace/workflowId`). */
  workflowIds: string[];
  /** Characters of decoded history searched. */
  chars: number;
  /** Secrets looked for. */
  secrets: number;
  ms: number;
  leaks: HistoryLeak[];
  /** Executions listed but whose history could not be read (e.g. a namespace deleted meanwhile), with why. */
  unreadable: string[];
}

async function serverNamespaces(connection: Connection): Promise<string[]> {
  const names: string[] = [];
  let nextPageToken: Uint8Array | undefined;
  do {
    const page = await connection.workflowService.listNamespaces({ pageSize: 100, nextPageToken });
    for (const ns of page.namespaces ?? []) {
      const name = ns.namespaceInfo?.name;
      if (name && name !== 'temporal-system') names.push(name);
    }
    nextPageToken = page.nextPageToken?.length ? page.nextPageToken : undefined;
  } while (nextPageToken);
  return names;
}

/** Runs `fn` over `items`, at most `limit` at once. */
async function pool<T>(items: readonly T[], limit: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const lanes = Array.from({ length: Math.min(limit, items.length) }, async () => {
    while (next < items.length) await fn(items[next++]);
  });
  await Promise.all(lanes);
}

export async function scanHistories(opts: HistoryScanOptions): Promise<HistoryScanResult> {
  const started = Date.now();
  const secrets = opts.secrets ?? registeredSecrets();
  // Not ./temporal: that module installs the worker Runtime, which a file may still want to install its own way.
  const address = process.env.TEMPORAL_TEST_ADDRESS;
  if (!address) throw new Error('TEMPORAL_TEST_ADDRESS is unset: run the tests through jest (global setup)');
  const connection = opts.connection ?? (await Connection.connect({ address }));
  const result: HistoryScanResult = {
    namespaces: [],
    runs: 0,
    workflowIds: [],
    chars: 0,
    secrets: secrets.length,
    ms: 0,
    leaks: [],
    unreadable: [],
  };
  try {
    result.namespaces = opts.namespaces ?? (await serverNamespaces(connection));
    const query = `StartTime >= "${opts.since.toISOString()}"`;
    for (const namespace of result.namespaces) {
      const client = new Client({ connection, namespace });
      const runs: { workflowId: string; runId: string; type: string }[] = [];
      try {
        for await (const info of client.workflow.list({ query, pageSize: 200 })) {
          if (!opts.includeCanaries && info.workflowId.startsWith(CANARY_PREFIX)) continue;
          runs.push({ workflowId: info.workflowId, runId: info.runId, type: info.type });
        }
      } catch (err) {
        // A namespace another file has just registered is listed before the frontend knows it; that file's own
        // scan, at its end, reads its runs.
        if (!(err instanceof NamespaceNotFoundError)) throw err;
        continue;
      }
      await pool(runs, opts.concurrency ?? 6, async (run) => {
        let text: string;
        try {
          text = await historyText(client.workflow.getHandle(run.workflowId, run.runId));
        } catch (err) {
          result.unreadable.push(`${namespace}/${run.workflowId} (${run.runId}): ${(err as Error).message}`);
          return;
        }
        result.runs += 1;
        result.workflowIds.push(`${namespace}/${run.workflowId}`);
        result.chars += text.length;
        for (const hit of findSecrets(text, secrets))
          result.leaks.push({
            namespace,
            workflowId: run.workflowId,
            runId: run.runId,
            workflowType: run.type,
            kind: hit.kind,
            secret: hit.secret,
            context: hit.context,
          });
      });
    }
  } finally {
    if (!opts.connection) await connection.close();
  }
  result.ms = Date.now() - started;
  return result;
}

/** One line per leak: where (namespace, workflow id, run, type) and which secret, never the secret itself. */
export function describeLeaks(leaks: readonly HistoryLeak[]): string {
  return leaks
    .map(
      (l) =>
        `  ${l.namespace}/${l.workflowId} (run ${l.runId}, ${l.workflowType}): ${l.secret}, in …${l.context.replace(/\s+/g, ' ')}…`,
    )
    .join('\n');
}
