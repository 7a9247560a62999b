/**
 * Events as client-go's EventRecorder writes them for a controller-runtime controller
 * (`mgr.GetEventRecorderFor(name)`, `k8s.io/client-go/tools/record`):
 *
 * - name `<object>.<hex UnixNano>`, `source.component` and `reportingComponent` = the controller's name, no
 *   host/instance, no `eventTime`, `firstTimestamp`/`lastTimestamp` in whole seconds, count 1;
 * - the correlator: a repeat of the same (object, type, reason, message) patches the existing Event (`count`+1,
 *   `lastTimestamp`); once 10 different messages of one (object, type, reason) arrive within 10 minutes the
 *   next ones are combined (`(combined from similar events): …`); and a spam filter per object (25 Events,
 *   then one per 5 minutes) drops the rest.
 */
import type { CoreV1Api, CoreV1Event } from '@kubernetes/client-node';
import { API_VERSION } from './names';
import type { Meta } from './types';
import { describeError, isNotFound, MERGE, metaTime } from './util';

const SPAM_BURST = 25;
const AGGREGATE_MAX = 10;
const AGGREGATE_WINDOW_MS = 10 * 60_000;

export interface RecordedEvent {
  kind: string;
  name: string;
  type: 'Normal' | 'Warning';
  reason: string;
  message: string;
  /** `written`, `patched` (a repeat), or `dropped` by the spam filter. */
  outcome: 'written' | 'patched' | 'dropped' | 'failed';
  at: number;
}

interface Observation {
  name: string;
  count: number;
  first: Date;
}

export class EventRecorder {
  /** Every Event the controller recorded, with what became of it. */
  readonly recorded: RecordedEvent[] = [];
  private readonly spam = new Map<string, { tokens: number; at: number }>();
  private readonly aggregates = new Map<string, { messages: Set<string>; last: number }>();
  private readonly observed = new Map<string, Observation>();
  private lastNanos = 0n;

  constructor(
    private readonly core: CoreV1Api,
    private readonly component: string,
    private readonly refillMs: () => number,
    private readonly onError: (where: string, err: unknown) => void,
  ) {}

  async event(
    obj: { kind: string; metadata: Meta },
    type: 'Normal' | 'Warning',
    reason: string,
    message: string,
  ): Promise<void> {
    const now = Date.now();
    const { kind, metadata } = obj;
    const ns = metadata.namespace ?? 'default';
    const objectKey = [kind, ns, metadata.name, metadata.uid, API_VERSION].join('/');
    const record = (outcome: RecordedEvent['outcome']) =>
      this.recorded.push({ kind, name: metadata.name, type, reason, message, outcome, at: now });

    if (!this.takeToken(objectKey, now)) {
      record('dropped');
      return;
    }
    const aggregateKey = [objectKey, type, reason].join('/');
    let key = `${aggregateKey}/${message}`;
    let text = message;
    const agg = this.aggregates.get(aggregateKey);
    const entry =
      agg && now - agg.last <= AGGREGATE_WINDOW_MS ? agg : { messages: new Set<string>(), last: now };
    entry.messages.add(message);
    entry.last = now;
    this.aggregates.set(aggregateKey, entry);
    if (entry.messages.size >= AGGREGATE_MAX) {
      entry.messages.delete(message);
      key = aggregateKey;
      text = `(combined from similar events): ${message}`;
    }

    const at = new Date(Math.floor(now / 1000) * 1000);
    const seen = this.observed.get(key);
    try {
      if (seen) {
        seen.count += 1;
        try {
          await this.core.patchNamespacedEvent(
            {
              namespace: ns,
              name: seen.name,
              body: { count: seen.count, lastTimestamp: metaTime(now), message: text },
            },
            MERGE,
          );
          record('patched');
          return;
        } catch (err) {
          if (!isNotFound(err)) throw err;
        }
      }
      const name = `${metadata.name}.${this.nanos(now).toString(16)}`;
      const body: CoreV1Event = {
        metadata: { name, namespace: ns },
        involvedObject: {
          kind,
          namespace: ns,
          name: metadata.name,
          uid: metadata.uid,
          apiVersion: API_VERSION,
          resourceVersion: metadata.resourceVersion,
        },
        reason,
        message: text,
        source: { component: this.component },
        firstTimestamp: at,
        lastTimestamp: at,
        count: 1,
        type,
        reportingComponent: this.component,
        reportingInstance: '',
      };
      await this.core.createNamespacedEvent({ namespace: ns, body });
      this.observed.set(key, { name, count: 1, first: at });
      record('written');
    } catch (err) {
      record('failed');
      this.onError(`event ${reason} for ${kind} ${metadata.name}: ${describeError(err)}`, err);
    }
  }

  /** client-go's EventSourceObjectSpamFilter: a token bucket per object. */
  private takeToken(key: string, now: number): boolean {
    const bucket = this.spam.get(key) ?? { tokens: SPAM_BURST, at: now };
    const every = Math.max(1, this.refillMs());
    const refill = Math.floor((now - bucket.at) / every);
    if (refill > 0) {
      bucket.tokens = Math.min(SPAM_BURST, bucket.tokens + refill);
      bucket.at += refill * every;
    }
    this.spam.set(key, bucket);
    if (bucket.tokens <= 0) return false;
    bucket.tokens -= 1;
    return true;
  }

  /** Strictly increasing UnixNano, so names are unique and sort like the events. */
  private nanos(now: number): bigint {
    const n = BigInt(now) * 1_000_000n;
    this.lastNanos = n > this.lastNanos ? n : this.lastNanos + 1n;
    return this.lastNanos;
  }
}
