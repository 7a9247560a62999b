/**
 * Jest setupFilesAfterEnv: after a test file that used Temporal, every workflow execution started on the suite's
 * server since the file began is scanned for the suite's secrets (test/support/history-scan.ts); a secret found
 * fails the file, naming the workflow and the kind of secret (never the secret). After a file that used the
 * Kubernetes client, the apiserver's audit log since the file began is read: a request of the product's code made
 * as any identity but the restricted one fails the file too (test/support/audit-log.ts).
 *
 * The scan runs when the file's own afterAll hooks are done (its workers stopped, its runs terminated), so it
 * reads the histories as they end: it listens for Jest's `run_finish` event (through jest-circus's event-handler
 * list, `globalThis[Symbol.for('EVENT_HANDLERS')]`, the hook custom test environments use), where an error fails
 * the file as an afterAll error does. Where that list cannot be reached it falls back to an afterAll of its own
 * (which runs before the file's). Modules are loaded only while Jest runs test code, hence the early require.
 *
 * The cost of each scan goes to VPSIE_TEST_WORKDIR/history-scan.jsonl (and to stderr with HISTORY_SCAN_REPORT=1).
 */
import { appendFileSync, statSync } from 'node:fs';
import { join, sep } from 'node:path';
// types only: the modules themselves are required once the file has used Temporal or Kubernetes
import type * as AuditLog from './audit-log';
import type * as HistoryScan from './history-scan';

/** A little before the file began: a start in the same millisecond as this line still counts. */
const since = new Date(Date.now() - 1_000);
const SCAN_TIMEOUT_MS = 120_000;
const auditFrom = (() => {
  try {
    return process.env.KUBE_TEST_AUDIT_LOG ? statSync(process.env.KUBE_TEST_AUDIT_LOG).size : 0;
  } catch {
    return 0;
  }
})();

/** Whether the file's module registry holds a package (this setup file never loads them early). */
function loaded(pkg: string): boolean {
  const marker = `${sep}${pkg.replace('/', sep)}${sep}`;
  return Object.keys(require.cache).some((k) => k.includes(marker));
}

type Scanner = typeof HistoryScan;
type Audit = typeof AuditLog;

/**
 * Loaded only once the file has used Temporal (a file that never touches it pays nothing), and while Jest runs
 * test code: after the last hook Jest refuses to load modules.
 */
let scanner: Scanner | undefined;
let audit: Audit | undefined;
let testPath = '(unknown file)';
function loadScannerIfUsed(): void {
  if (!scanner && process.env.TEMPORAL_TEST_ADDRESS && loaded('@temporalio/client')) {
    testPath = expect.getState().testPath ?? testPath;
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    scanner = require('./history-scan') as Scanner;
  }
  if (!audit && process.env.KUBE_TEST_AUDIT_LOG && loaded('@kubernetes/client-node')) {
    testPath = expect.getState().testPath ?? testPath;
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    audit = require('./audit-log') as Audit;
  }
}

/** What the checks cost this file, reported at the end. */
const cost: Record<string, unknown> = {};

/** The product's requests since the file began, each made as an identity it may use. */
function checkAudit(): Error | undefined {
  if (!audit) return undefined;
  const t0 = Date.now();
  const { events, bytes } = audit.productAuditEvents(auditFrom);
  cost.audit = { bytes, productRequests: events.length, ms: Date.now() - t0 };
  const wrong = audit.identityViolations(events, process.env.HISTORY_SCAN_INCLUDE_CANARIES === '1');
  if (wrong.length === 0) return undefined;
  return new Error(
    `the product's Kubernetes client was used as another identity than vpsie-runbook (audit log, while ${fileName()} ran):\n  ${wrong.slice(0, 20).join('\n  ')}`,
  );
}

async function scanHistories(): Promise<Error | undefined> {
  if (!scanner) return undefined;
  const { scanHistories: scan, describeLeaks } = scanner;
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new Error(`history scan took over ${SCAN_TIMEOUT_MS} ms`)),
      SCAN_TIMEOUT_MS,
    );
  });
  const result = await Promise.race([
    scan({ since, includeCanaries: process.env.HISTORY_SCAN_INCLUDE_CANARIES === '1' }),
    deadline,
  ]).finally(() => clearTimeout(timer));
  cost.histories = {
    runs: result.runs,
    chars: result.chars,
    secrets: result.secrets,
    ms: result.ms,
    leaks: result.leaks.length,
  };
  if (result.leaks.length === 0) return undefined;
  return new Error(
    `secret(s) in workflow history (executions started since ${since.toISOString()}, scanned after ${fileName()}):\n` +
      describeLeaks(result.leaks),
  );
}

const fileName = () => testPath.split(`${sep}test${sep}`).pop();

function report(): void {
  if (Object.keys(cost).length === 0) return;
  const line = JSON.stringify({ file: fileName(), ...cost });
  if (process.env.VPSIE_TEST_WORKDIR)
    appendFileSync(join(process.env.VPSIE_TEST_WORKDIR, 'history-scan.jsonl'), `${line}\n`);
  if (process.env.HISTORY_SCAN_REPORT === '1') process.stderr.write(`[history scan] ${line}\n`);
}

type CircusEvent = { name: string };
type CircusState = { unhandledErrors: unknown[] };
const handlers = (globalThis as unknown as Record<symbol, unknown>)[Symbol.for('EVENT_HANDLERS')] as
  ((event: CircusEvent, state: CircusState) => unknown)[] | undefined;

if (Array.isArray(handlers)) {
  handlers.push(async (event, state) => {
    // Jest's own handler (added before this one) has just entered test code for these two events.
    if (event.name === 'test_fn_start' || event.name === 'hook_start') loadScannerIfUsed();
    if (event.name !== 'run_finish') return;
    for (const check of [checkAudit, scanHistories]) {
      try {
        const error = await check();
        if (error) state.unhandledErrors.push(error);
      } catch (err) {
        state.unhandledErrors.push(err instanceof Error ? err : new Error(String(err)));
      }
    }
    report();
  });
} else {
  afterAll(async () => {
    loadScannerIfUsed();
    const errors = [checkAudit(), await scanHistories()].filter((e) => e !== undefined);
    report();
    if (errors.length) throw new Error(errors.map((e) => e.message).join('\n'));
  }, SCAN_TIMEOUT_MS + 10_000);
}
