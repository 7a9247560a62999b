/**
 * The record of every reconcile, and waits on it: how a test knows the controller has looked at an object
 * after a point in time (the proof it needs before asserting that something did not happen).
 */
import type { ReconcileRecord } from './types';

/** Which reconciles {@link RecordLog.reconciled} waits for. */
export type ReconcileTarget = { vpsieNode: string } | { nodeGroup: string };

export interface ReconciledOptions {
  /** Only reconciles that started at or after this time (ms since the epoch). Default: now. */
  after?: number;
  /** Default 45 s. */
  timeoutMs?: number;
  where?: (r: ReconcileRecord) => boolean;
}

interface Waiter {
  match: (r: ReconcileRecord) => boolean;
  resolve: (r: ReconcileRecord) => void;
}

export class RecordLog {
  readonly records: ReconcileRecord[] = [];
  private waiters: Waiter[] = [];

  constructor(private readonly problems: () => string[]) {}

  push(r: ReconcileRecord): void {
    this.records.push(r);
    for (const w of [...this.waiters]) {
      if (!w.match(r)) continue;
      this.waiters = this.waiters.filter((x) => x !== w);
      w.resolve(r);
    }
  }

  reconciled(target: ReconcileTarget, opts: ReconciledOptions = {}): Promise<ReconcileRecord> {
    const after = opts.after ?? Date.now();
    const [controller, name] =
      'vpsieNode' in target ? ['vpsienode', target.vpsieNode] : ['nodegroup', target.nodeGroup];
    const match = (r: ReconcileRecord) =>
      r.controller === controller && r.name === name && r.startedAt >= after && (opts.where?.(r) ?? true);
    const done = this.records.find(match);
    if (done) return Promise.resolve(done);
    return new Promise((resolve, reject) => {
      const waiter: Waiter = {
        match,
        resolve: (r) => {
          clearTimeout(timer);
          resolve(r);
        },
      };
      const timer = setTimeout(() => {
        this.waiters = this.waiters.filter((w) => w !== waiter);
        const when = new Date(after).toISOString();
        reject(
          new Error(
            `no such reconcile of ${controller} ${name} after ${when}; simulator errors: ${this.problems()}`,
          ),
        );
      }, opts.timeoutMs ?? 45_000);
      this.waiters.push(waiter);
    });
  }
}
