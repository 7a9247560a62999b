/**
 * The evidence bundle an escalation carries to people (issue 8 item 3, the runbook's "Escalation" steps 1–3):
 * the VPSieNode as `kubectl get -o yaml` shows it (minus managedFields), its Events, the controller's log lines,
 * its machine in VPSie, its Node, the cause with its reasons, and the plan and decisions so far. Pure; capped at
 * {@link MAX_BUNDLE_BYTES} so it fits every channel (PagerDuty takes at most 512 KB per event; the bundle is
 * its `custom_details`, and the generic webhook's document).
 *
 * Pure and free of Node modules, so a workflow may import it too; the YAML itself is written by the activity
 * (client-node's `dumpYaml`, in src/activities/escalation.ts) from the object it reads at escalation time.
 */
import { truncateUtf8, utf8Length, type DecisionRecord } from './approval';
import type { Reason } from './classify';
import type { ControllerLogs, Evidence, SourceResult } from './diagnosis';
import type { EventSummary, NodeRegistration } from './evidence';
import type { Escalation } from './escalation';
import type { ClusterNodeSnapshot, MatchedBy } from './machine';
import { describeTarget, type StepTarget } from './plan';
import type { PlanStepStatus, RunbookError } from './report';
import type { Route } from './routing';
import type { VPSieNodeSnapshot } from './types';
import type { VMSnapshot } from './vm';

/** PagerDuty's severities, most severe first. */
export const SEVERITIES = ['critical', 'error', 'warning', 'info'] as const;
export type Severity = (typeof SEVERITIES)[number];

/**
 * The severity of the alert that started the run: `VPSieNodeProvisioningFailed` (phase Failed) is critical,
 * `VPSieNodeProvisioningTimeout` (stuck in Provisioning or any other phase) a warning; a VPSieNode that could not
 * be read at all is an `error`. An explicit severity (the alert's own label) wins.
 */
export function severityOf(phase: string | null | undefined, explicit?: Severity | null): Severity {
  if (explicit) return explicit;
  if (phase === 'Failed') return 'critical';
  return phase ? 'warning' : 'error';
}

/** What the workflow knows besides the escalation: its state so far, so the bundle tells the whole story. */
export interface EscalationContext {
  reasons?: Reason[];
  also?: string[];
  plan?: PlanStepStatus[];
  decisions?: DecisionRecord[];
  /** The step that failed for good, when one did (its type routes VPSie API errors to VPSie support). */
  error?: RunbookError | null;
  /** The run's last snapshot of the VPSieNode: names its machine and Node once the object is gone. */
  lastSeen?: VPSieNodeSnapshot | null;
  /** The alert's severity, when known; else derived from the phase ({@link severityOf}). */
  severity?: Severity | null;
  /** false: record only (the Event), send to no channel: another run already told people (a storm). */
  notify?: boolean;
}

/** The VPSieNode's machine as the bundle shows it. */
export interface BundleMachine {
  /** The machine's status in VPSie (the VM's, else the cluster node's); null when no machine was found. */
  status: string | null;
  vm: VMSnapshot | null;
  clusterNode: ClusterNodeSnapshot | null;
  matchedBy: MatchedBy | null;
  /** Several machines carry the VPSieNode's name: none was chosen. */
  ambiguous: string[];
}

export interface BundlePlanStep {
  id: string;
  kind: string;
  destructive: boolean;
  state: string;
  /** The target in one line ({@link describeTarget}). */
  target: string;
  why: string;
  result: string | null;
  startedAt: string | null;
  endedAt: string | null;
}

export interface EvidenceBundle {
  workflowId: string;
  runId: string;
  vpsieNode: { namespace: string; name: string; uid: string | null };
  nodeGroup: string | null;
  audience: Route['audience'];
  routedBecause: string;
  severity: Severity;
  cause: string | null;
  kind: string;
  reason: string;
  step: string | null;
  /** One line, at most {@link MAX_SUMMARY_LENGTH} characters: PagerDuty's `summary`, Slack's first line. */
  summary: string;
  /** When the sources below were read (ISO 8601). */
  observedAt: string;
  /** The escalation's own evidence lines (the classifier's reasons, sources that could not be read). */
  evidence: string[];
  reasons: Reason[];
  also: string[];
  error: RunbookError | null;
  /** The VPSieNode as YAML at escalation time, minus `metadata.managedFields`; ok with null when it is gone. */
  vpsieNodeYaml: SourceResult<string | null>;
  events: SourceResult<EventSummary[]>;
  controllerLogs: SourceResult<ControllerLogs>;
  machine: SourceResult<BundleMachine>;
  node: SourceResult<NodeRegistration | null>;
  plan: BundlePlanStep[];
  decisions: DecisionRecord[];
  /** What was cut to keep the bundle within its cap, one line each; empty when nothing was. */
  truncated: string[];
}

export interface BundleInput {
  escalation: Escalation;
  route: Route;
  severity: Severity;
  /**
   * The VPSieNode read at escalation time, as YAML minus managedFields ({@link withoutManagedFields}); ok with null
   * when it does not exist; or why it could not be read.
   */
  vpsieNodeYaml: SourceResult<string | null>;
  /** The evidence read at escalation time, or why it could not be. */
  evidence: SourceResult<Evidence>;
  context: EscalationContext;
  /** When the bundle is made (ISO 8601): its `observedAt` when no evidence could be read. */
  now: string;
}

/** PagerDuty's limit on `payload.summary`. */
export const MAX_SUMMARY_LENGTH = 1024;
/**
 * The bundle's cap in UTF-8 bytes of its JSON: half of PagerDuty's 512 KB per event, leaving the envelope and
 * any escaping room, and well within what a webhook receiver or a person reading it wants.
 */
export const MAX_BUNDLE_BYTES = 256 * 1024;
/** Longest YAML kept before the overall cap (a VPSieNode is a few KB; a huge annotation should not crowd out the rest). */
export const MAX_YAML_CHARS = 64 * 1024;
export const MAX_BUNDLE_EVIDENCE_LINES = 100;
export const MAX_BUNDLE_LINE_CHARS = 2000;
export const MAX_BUNDLE_REASONS = 30;
export const MAX_BUNDLE_PLAN_STEPS = 40;
export const MAX_BUNDLE_DECISIONS = 50;
const MAX_FIELD_CHARS = 1000;

const cut = (s: string, max: number) => (s.length > max ? `${s.slice(0, max)}…` : s);
const cutOrNull = (s: string | null | undefined, max: number) => (typeof s === 'string' ? cut(s, max) : null);
const oneLine = (s: string) => s.replace(/\s*[\r\n]+\s*/g, ' ').trim();

/** A deep copy of a Kubernetes object without `metadata.managedFields`, as `kubectl get -o yaml` shows it. */
export function withoutManagedFields(raw: unknown): unknown {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) return raw;
  const copy = JSON.parse(JSON.stringify(raw)) as Record<string, unknown>;
  const metadata = copy.metadata;
  if (typeof metadata === 'object' && metadata !== null)
    delete (metadata as Record<string, unknown>).managedFields;
  return copy;
}

/** The summary line: cause (or kind), the VPSieNode, the reason; at most {@link MAX_SUMMARY_LENGTH} characters. */
export function escalationSummary(e: Escalation): string {
  const line = `VPSieNode ${e.ref.namespace}/${e.ref.name}: ${e.cause ?? e.kind}: ${oneLine(e.reason)}`;
  return line.length > MAX_SUMMARY_LENGTH ? `${line.slice(0, MAX_SUMMARY_LENGTH - 1)}…` : line;
}

function describeStepTarget(target: unknown): string {
  const kinds = ['VPSieNode', 'VM', 'ClusterNode', 'NodeGroup', 'Replacement', 'Escalation'];
  if (
    typeof target === 'object' &&
    target !== null &&
    kinds.includes((target as { kind?: string }).kind ?? '')
  )
    try {
      return describeTarget(target as StepTarget);
    } catch {
      // a target of an unexpected shape: shown as JSON below
    }
  return cut(JSON.stringify(target) ?? 'none', MAX_FIELD_CHARS);
}

function mapSource<T, U>(s: SourceResult<T>, f: (v: T) => U): SourceResult<U> {
  return s.status === 'ok' ? { status: 'ok', value: f(s.value) } : s;
}

/** An evidence source, or the reason the whole evidence was not read. */
function fromEvidence<T, U>(
  evidence: SourceResult<Evidence>,
  pick: (e: Evidence) => SourceResult<T>,
  f: (v: T) => U,
): SourceResult<U> {
  if (evidence.status !== 'ok') return evidence;
  return mapSource(pick(evidence.value), f);
}

/** Builds the bundle and caps it at {@link MAX_BUNDLE_BYTES}. */
export function buildEvidenceBundle(input: BundleInput): EvidenceBundle {
  const { escalation: e, route, severity, evidence, context } = input;
  const fresh = evidence.status === 'ok' ? evidence.value : null;
  const subject = fresh?.vpsieNode ?? fresh?.lastSeen ?? context.lastSeen ?? null;
  const truncated: string[] = [];
  const capList = <T>(items: readonly T[], max: number, what: string, keep: 'first' | 'last'): T[] => {
    if (items.length <= max) return [...items];
    truncated.push(`${what}: ${keep} ${max} of ${items.length} kept`);
    return keep === 'first' ? items.slice(0, max) : items.slice(-max);
  };

  let yaml = input.vpsieNodeYaml;
  if (yaml.status === 'ok' && yaml.value !== null && yaml.value.length > MAX_YAML_CHARS) {
    truncated.push(`vpsieNodeYaml: first ${MAX_YAML_CHARS} of ${yaml.value.length} characters kept`);
    yaml = { status: 'ok', value: `${yaml.value.slice(0, MAX_YAML_CHARS)}\n# … cut` };
  }

  const bundle: EvidenceBundle = {
    workflowId: e.workflowId,
    runId: e.runId,
    vpsieNode: { namespace: e.ref.namespace, name: e.ref.name, uid: e.uid ?? subject?.uid ?? null },
    nodeGroup: subject?.nodeGroupName ?? null,
    audience: route.audience,
    routedBecause: route.why,
    severity,
    cause: e.cause,
    kind: e.kind,
    reason: cut(e.reason, 8 * MAX_FIELD_CHARS),
    step: e.step,
    summary: escalationSummary(e),
    observedAt: fresh?.observedAt ?? input.now,
    evidence: capList(e.evidence, MAX_BUNDLE_EVIDENCE_LINES, 'evidence lines', 'first').map((l) =>
      cut(l, MAX_BUNDLE_LINE_CHARS),
    ),
    reasons: capList(context.reasons ?? [], MAX_BUNDLE_REASONS, 'reasons', 'first').map((r) => ({
      ...r,
      value: cut(String(r.value), MAX_BUNDLE_LINE_CHARS),
      says: cut(String(r.says), MAX_FIELD_CHARS),
    })),
    also: [...(context.also ?? [])].slice(0, 10),
    error: context.error
      ? { ...context.error, message: cut(context.error.message, MAX_BUNDLE_LINE_CHARS) }
      : null,
    vpsieNodeYaml: yaml,
    events: fromEvidence(
      evidence,
      (v) => v.events,
      (events) => events,
    ),
    controllerLogs: fromEvidence(
      evidence,
      (v) => v.controllerLogs,
      (logs) => logs,
    ),
    machine: fromEvidence(
      evidence,
      (v) => v.machine,
      (m): BundleMachine => ({
        status: m.vm?.status ?? m.node?.status ?? null,
        vm: m.vm,
        clusterNode: m.node,
        matchedBy: m.matchedBy,
        ambiguous: m.ambiguous.slice(0, 20),
      }),
    ),
    node: fromEvidence(
      evidence,
      (v) => v.node,
      (n) => n,
    ),
    plan: capList(context.plan ?? [], MAX_BUNDLE_PLAN_STEPS, 'plan steps', 'first').map((s) => ({
      id: s.id,
      kind: s.kind,
      destructive: s.destructive,
      state: s.state,
      target: describeStepTarget(s.target),
      why: cut(s.why ?? '', MAX_FIELD_CHARS),
      result: cutOrNull(s.result, MAX_FIELD_CHARS),
      startedAt: s.startedAt ?? null,
      endedAt: s.endedAt ?? null,
    })),
    decisions: capList(context.decisions ?? [], MAX_BUNDLE_DECISIONS, 'decisions', 'last'),
    truncated,
  };
  return capBundle(bundle);
}

export function bundleBytes(b: EvidenceBundle): number {
  return utf8Length(JSON.stringify(b));
}

/**
 * The reductions tried, in order, while the bundle is over its cap: what is longest and least needed goes
 * first. Each halves its part and says so; one that has nothing left to cut answers false.
 */
const REDUCTIONS: ReadonlyArray<(b: EvidenceBundle) => string | null> = [
  (b) => {
    const logs = b.controllerLogs;
    if (logs.status !== 'ok' || !logs.value.pods.some((p) => p.lines.length > 1)) return null;
    b.controllerLogs = {
      status: 'ok',
      value: {
        ...logs.value,
        pods: logs.value.pods.map((p) => ({ ...p, lines: p.lines.slice(Math.ceil(p.lines.length / 2)) })),
      },
    };
    return 'controllerLogs: older lines dropped';
  },
  (b) => {
    const ev = b.events;
    if (ev.status !== 'ok' || ev.value.length <= 1) return null;
    b.events = { status: 'ok', value: ev.value.slice(Math.ceil(ev.value.length / 2)) };
    return 'events: older events dropped';
  },
  (b) => {
    const y = b.vpsieNodeYaml;
    if (y.status !== 'ok' || y.value === null || y.value.length <= 2000) return null;
    b.vpsieNodeYaml = { status: 'ok', value: `${y.value.slice(0, Math.floor(y.value.length / 2))}\n# … cut` };
    return 'vpsieNodeYaml: cut';
  },
  (b) => {
    if (b.evidence.length <= 1) return null;
    b.evidence = b.evidence.slice(0, Math.ceil(b.evidence.length / 2));
    return 'evidence lines: later lines dropped';
  },
  (b) => {
    if (b.decisions.length <= 1) return null;
    b.decisions = b.decisions.slice(Math.floor(b.decisions.length / 2));
    return 'decisions: earlier decisions dropped';
  },
  (b) => {
    if (b.reasons.length <= 1) return null;
    b.reasons = b.reasons.slice(0, Math.ceil(b.reasons.length / 2));
    return 'reasons: weaker reasons dropped';
  },
  (b) => {
    const long = (s: string | null) => s !== null && s.length > 201; // cut(s, 200) is 201 long
    if (!b.plan.some((s) => long(s.why) || long(s.result) || long(s.target))) return null;
    b.plan = b.plan.map((s) => ({
      ...s,
      why: cut(s.why, 200),
      target: cut(s.target, 200),
      result: cutOrNull(s.result, 200),
    }));
    return 'plan: texts cut';
  },
  (b) => {
    const long = (l: string) => l.length > 201;
    const logs = b.controllerLogs;
    const longLogs = logs.status === 'ok' && logs.value.pods.some((p) => p.lines.some(long));
    if (!b.evidence.some(long) && !b.reasons.some((r) => long(r.value)) && !longLogs) return null;
    b.evidence = b.evidence.map((l) => cut(l, 200));
    b.reasons = b.reasons.map((r) => ({ ...r, value: cut(r.value, 200), says: cut(r.says, 200) }));
    if (logs.status === 'ok')
      b.controllerLogs = {
        status: 'ok',
        value: {
          ...logs.value,
          pods: logs.value.pods.map((p) => ({ ...p, lines: p.lines.map((l) => cut(l, 200)) })),
        },
      };
    return 'long lines cut to 200 characters';
  },
  (b) => {
    if (b.reason.length <= 1001) return null;
    b.reason = cut(b.reason, 1000);
    return 'reason: cut';
  },
];

/** Applies {@link REDUCTIONS} until the bundle fits; as a last resort the sources are replaced by a note. */
export function capBundle(bundle: EvidenceBundle, maxBytes = MAX_BUNDLE_BYTES): EvidenceBundle {
  const b: EvidenceBundle = { ...bundle, truncated: [...bundle.truncated] };
  const note = (what: string) => {
    if (!b.truncated.includes(what)) b.truncated.push(what);
  };
  while (bundleBytes(b) > maxBytes) {
    let reduced = false;
    for (const reduce of REDUCTIONS) {
      const what = reduce(b);
      if (what) {
        note(what);
        reduced = true;
        break;
      }
    }
    if (reduced) continue;
    // Nothing halves any more: drop whole sources, then keep only the identifying fields.
    const dropped = {
      status: 'unavailable' as const,
      why: `left out to keep the bundle within ${maxBytes} bytes`,
    };
    if (b.controllerLogs.status === 'ok') b.controllerLogs = dropped;
    else if (b.events.status === 'ok') b.events = dropped;
    else if (b.vpsieNodeYaml.status === 'ok' && b.vpsieNodeYaml.value !== null) b.vpsieNodeYaml = dropped;
    else if (b.machine.status === 'ok') b.machine = dropped;
    else if (b.node.status === 'ok') b.node = dropped;
    else if (b.plan.length || b.decisions.length || b.evidence.length || b.reasons.length) {
      b.plan = [];
      b.decisions = [];
      b.evidence = [];
      b.reasons = [];
    } else {
      // only the escalation's own fields are left: cut the free text hard
      b.reason = cut(b.reason, 200);
      b.routedBecause = cut(b.routedBecause, 200);
      b.truncated = b.truncated.slice(0, 20).map((t) => truncateUtf8(t, 200));
      note('the bundle was cut to its identifying fields');
      break;
    }
    note('whole sources left out');
  }
  return b;
}
