/**
 * The apiserver's own count of the product's Kubernetes requests: an audit log at Metadata level for the
 * restricted user `vpsie-runbook` only (the product's identity; the simulated autoscaler and the bench act as
 * admin), one line per request once its answer is complete.
 */
import { readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { RUNBOOK_USER } from '../test/support/control-plane';

export function writeAuditPolicy(dir: string): string {
  const file = join(dir, 'audit-policy.yaml');
  writeFileSync(
    file,
    [
      'apiVersion: audit.k8s.io/v1',
      'kind: Policy',
      'omitStages: [RequestReceived]',
      'rules:',
      '  - level: Metadata',
      `    users: ["${RUNBOOK_USER}"]`,
      '  - level: None',
      '',
    ].join('\n'),
  );
  return file;
}

/** kube-apiserver flags for the policy and log (the log backend writes synchronously: "blocking" mode). */
export function auditArgs(policyFile: string, logFile: string): string[] {
  return [`--audit-policy-file=${policyFile}`, `--audit-log-path=${logFile}`, '--audit-log-mode=blocking'];
}

export interface AuditRequest {
  verb: string;
  /** e.g. `vpsienodes`, `pods/log`, `events`. */
  resource: string;
  namespace: string;
  at: number;
}

/** Where the log ends now: requests after this mark are the ones to count. */
export function auditMark(file: string): number {
  try {
    return statSync(file).size;
  } catch {
    return 0;
  }
}

/** The product's requests logged after `mark` (and before `until`, a later mark), with their answers complete. */
export function auditRequestsSince(file: string, mark: number, until?: number): AuditRequest[] {
  let text: string;
  try {
    const all = readFileSync(file);
    text = all.subarray(mark, until ?? all.length).toString('utf8');
  } catch {
    return [];
  }
  const out: AuditRequest[] = [];
  for (const line of text.split('\n')) {
    if (!line.trim()) continue;
    const e = JSON.parse(line) as {
      stage?: string;
      verb?: string;
      user?: { username?: string };
      objectRef?: { resource?: string; subresource?: string; namespace?: string };
      requestURI?: string;
      requestReceivedTimestamp?: string;
    };
    if (e.user?.username !== RUNBOOK_USER || e.stage !== 'ResponseComplete') continue;
    const ref = e.objectRef ?? {};
    out.push({
      verb: e.verb ?? '?',
      resource: ref.resource
        ? `${ref.resource}${ref.subresource ? `/${ref.subresource}` : ''}`
        : (e.requestURI ?? '?'),
      namespace: ref.namespace ?? '',
      at: Date.parse(e.requestReceivedTimestamp ?? '') || 0,
    });
  }
  return out;
}

/** `verb resource` → count, most frequent first. */
export function breakdown(requests: { verb?: string; method?: string; resource?: string; path?: string }[]) {
  const counts = new Map<string, number>();
  for (const r of requests) {
    const key = `${r.verb ?? r.method} ${r.resource ?? r.path}`;
    counts.set(key, (counts.get(key) ?? 0) + 1);
  }
  return Object.fromEntries([...counts].sort((a, b) => b[1] - a[1]));
}
