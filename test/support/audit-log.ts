/**
 * The kube-apiserver's audit log (Metadata level, one JSON line per request; the global setup starts the control
 * plane with it and exports its path as KUBE_TEST_AUDIT_LOG): who made each request. The product's Kubernetes
 * client sends its own User-Agent (KUBERNETES_USER_AGENT), so the log tells its requests from the simulators' and
 * the fixtures', and shows which identity the product's code was handed.
 *
 * The identities the product's code may use in tests: the restricted user `vpsie-runbook` (RUNBOOK_USER, bound
 * only to the project's role); the ServiceAccounts of deploy/kubernetes in RUNBOOK_NAMESPACE (the same role, as a
 * pod holds it); and `no-role-bound`, which holds nothing, for the tests of refusals (every answer a 403).
 * Never the admin, never impersonation.
 */
import { closeSync, fstatSync, openSync, readSync, statSync } from 'node:fs';
import { KUBERNETES_USER_AGENT } from '../../src/clients/kubernetes';
import { NO_ROLE_USER, RUNBOOK_NAMESPACE, RUNBOOK_USER } from './control-plane';

export interface AuditEvent {
  auditID: string;
  stage: string;
  verb: string;
  requestURI: string;
  userAgent?: string;
  user: { username?: string; groups?: string[] };
  impersonatedUser?: { username?: string };
  objectRef?: { resource?: string; namespace?: string; name?: string };
  responseStatus?: { code?: number };
  requestReceivedTimestamp?: string;
}

/** Requests about objects named so are deliberate breaches (test/e2e/security.test.ts), left out unless asked. */
export const AUDIT_CANARY_PREFIX = 'security-canary-';

export function auditLogPath(): string | undefined {
  return process.env.KUBE_TEST_AUDIT_LOG || undefined;
}

/** The audit log's size now: where the next request's line will begin. */
export function auditLogOffset(file = auditLogPath()): number {
  if (!file) return 0;
  try {
    return statSync(file).size;
  } catch {
    return 0;
  }
}

/**
 * The product's requests logged from byte `from` on (only lines that name its User-Agent are parsed, so that a
 * long log costs little), and where the log ended.
 */
export function productAuditEvents(
  from = 0,
  file = auditLogPath(),
): { events: AuditEvent[]; end: number; bytes: number } {
  if (!file)
    throw new Error('KUBE_TEST_AUDIT_LOG is unset: run through jest (the global setup starts the audit log)');
  const fd = openSync(file, 'r');
  try {
    const end = fstatSync(fd).size;
    const events: AuditEvent[] = [];
    const chunk = Buffer.alloc(1 << 20);
    const needle = `"userAgent":"${KUBERNETES_USER_AGENT}`;
    let pos = from;
    let carry = '';
    while (pos < end) {
      const n = readSync(fd, chunk, 0, Math.min(chunk.length, end - pos), pos);
      if (n <= 0) break;
      pos += n;
      const lines = (carry + chunk.toString('utf8', 0, n)).split('\n');
      carry = lines.pop() ?? '';
      for (const line of lines) if (line.includes(needle)) events.push(JSON.parse(line) as AuditEvent);
    }
    // the last line is complete when the apiserver wrote it whole; a half-written one waits for the next read
    if (carry.includes(needle) && carry.endsWith('}')) {
      try {
        events.push(JSON.parse(carry) as AuditEvent);
      } catch {
        // being written
      }
    }
    return { events, end, bytes: end - from };
  } finally {
    closeSync(fd);
  }
}

function isDeployServiceAccount(username: string): boolean {
  return username.startsWith(`system:serviceaccount:${RUNBOOK_NAMESPACE}:`);
}

/**
 * Each product request made as anything but an identity it may use (see above), as one line naming the user,
 * the request and the answer. Requests about {@link AUDIT_CANARY_PREFIX} objects are left out unless asked.
 */
export function identityViolations(events: readonly AuditEvent[], includeCanaries = false): string[] {
  const out: string[] = [];
  for (const e of events) {
    if (!includeCanaries && e.objectRef?.name?.startsWith(AUDIT_CANARY_PREFIX)) continue;
    const user = e.user?.username ?? '(anonymous)';
    const code = e.responseStatus?.code;
    // A request whose token the apiserver did not accept (401: a test of a revoked token) acted as nobody.
    const ok =
      !e.impersonatedUser &&
      (user === RUNBOOK_USER ||
        isDeployServiceAccount(user) ||
        (user === NO_ROLE_USER && code === 403) ||
        (e.user?.username === undefined && code === 401));
    if (!ok)
      out.push(
        `${e.verb} ${e.requestURI} as ${user}${e.impersonatedUser ? ` impersonating ${e.impersonatedUser.username}` : ''} (HTTP ${code ?? '?'}, ${e.requestReceivedTimestamp ?? ''})`,
      );
  }
  return out;
}
