/**
 * Issue 7 item 1, "Evidence": every source the runbook's steps 1–5 and causes 1, 4 and 5 read about one
 * VPSieNode, gathered in parallel into one small `Evidence` record. Each source fails on its own into a
 * per-source error, so VPSie being unreachable never hides what Kubernetes says; only the VPSieNode itself,
 * which everything else hangs on, fails the activity (and Temporal retries it).
 */
import { ApplicationFailure } from '@temporalio/common';
import { KubernetesApiError, type KubernetesClient } from '../clients/kubernetes';
import type { VPSieClient } from '../clients/vpsie';
import {
  machineFromVM,
  registrationTargetOf,
  sourceError,
  sourceOk,
  sourceUnavailable,
  toVPSieNodeSnapshot,
  type ControllerLogs,
  type ControllerPodLog,
  type ControllerSelector,
  type EventSummary,
  type Evidence,
  type NodeGroupSnapshot,
  type SourceResult,
  type VPSieNodeRef,
  type VPSieNodeSnapshot,
} from '../runbook';
import {
  asActivityFailure,
  controllerSelectorOf,
  readControllerLogEvidence,
  readEvents,
  readNodeGroup,
  readNodeRegistration,
} from './kubernetes';
import { asVPSieActivityFailure, readCatalogCheck, readMachine, readSSHKeyCheck, readVM } from './vpsie';

/**
 * Caps that keep the record small: it is an activity result, stored in workflow history forever. Each log line
 * is at most MAX_LOG_LINE_LENGTH (1000) characters already, each event message is cut to the same length.
 */
/** The most recent Events kept (the story of one node rarely needs more; repeats are counted, not listed). */
export const EVIDENCE_MAX_EVENTS = 20;
/** Longest Event message kept. */
export const EVIDENCE_MAX_EVENT_MESSAGE = 1000;
/** Controller log lines kept per pod, those naming the VPSieNode first (the grep also keeps other nodes'). */
export const EVIDENCE_MAX_LOG_LINES = 20;
/** Controller pods whose lines are kept (with leader election only one of them logs the work). */
export const EVIDENCE_MAX_CONTROLLER_PODS = 3;
/** `kubectl logs --tail`, as the runbook's step 3. */
export const EVIDENCE_LOG_TAIL_LINES = 200;

export interface GatherEvidenceInput {
  ref: VPSieNodeRef;
  /** The run's first snapshot of the VPSieNode: names its machine, Node and NodeGroup once it is gone. */
  lastSeen: VPSieNodeSnapshot | null;
  /** When the evidence counts as observed (workflow time, ISO 8601); default: when this activity reads it. */
  observedAt?: string;
}

export interface EvidenceDeps {
  kubernetes: KubernetesClient;
  /** null: VPSie not configured; its sources are then marked unavailable. */
  vpsie: VPSieClient | null;
  controller?: Partial<ControllerSelector>;
}

const VPSIE_NOT_CONFIGURED = 'VPSie is not configured';

/** A failed read as a source's error: the type the activity would have failed with, its secret-free message. */
function failureOf(err: unknown, toFailure: (err: unknown) => unknown): { type: string; message: string } {
  const f = toFailure(err);
  if (f instanceof ApplicationFailure) return { type: f.type ?? 'Error', message: f.message };
  // Transient Kubernetes answers are not mapped (Temporal retries them as they are): name them the same way.
  if (err instanceof KubernetesApiError) return { type: `Kubernetes${err.status}`, message: err.message };
  return {
    type: err instanceof Error ? err.name : 'Error',
    message: err instanceof Error ? err.message : String(err),
  };
}

/** Runs one source's read; whatever it throws becomes that source's error. */
async function read<T>(fn: () => Promise<T>, toFailure: (err: unknown) => unknown): Promise<SourceResult<T>> {
  try {
    return sourceOk(await fn());
  } catch (err) {
    const { type, message } = failureOf(err, toFailure);
    return sourceError(type, message);
  }
}

const fromKubernetes = <T>(fn: () => Promise<T>) => read(fn, asActivityFailure);
const fromVPSie = <T>(fn: () => Promise<T>) => read(fn, asVPSieActivityFailure);

const cut = (s: string | null, max: number) => (s !== null && s.length > max ? `${s.slice(0, max)}…` : s);

/** The last EVIDENCE_MAX_EVENTS events, messages cut. */
export function capEvents(events: EventSummary[]): EventSummary[] {
  return events
    .slice(-EVIDENCE_MAX_EVENTS)
    .map((e) => ({ ...e, message: cut(e.message, EVIDENCE_MAX_EVENT_MESSAGE) }));
}

/** The last lines naming the VPSieNode, topped up with the last other lines, in the log's order. */
function capLines(lines: string[], name: string): string[] {
  const where = (naming: boolean) => lines.flatMap((l, i) => (l.includes(name) === naming ? [i] : []));
  const naming = where(true).slice(-EVIDENCE_MAX_LOG_LINES);
  const room = EVIDENCE_MAX_LOG_LINES - naming.length;
  const keep = new Set([...naming, ...(room > 0 ? where(false).slice(-room) : [])]);
  return lines.filter((_l, i) => keep.has(i));
}

/** At most EVIDENCE_MAX_CONTROLLER_PODS pods, each with its last lines, those naming `name` first. */
export function capLogs(pods: ControllerPodLog[], note: string | null, name: string): ControllerLogs {
  return {
    pods: pods.slice(0, EVIDENCE_MAX_CONTROLLER_PODS).map((p) => ({ ...p, lines: capLines(p.lines, name) })),
    note,
  };
}

export function createEvidenceActivities(deps: EvidenceDeps) {
  const kube = deps.kubernetes;
  const controller = controllerSelectorOf(deps.controller);

  return {
    /**
     * Runbook steps 1–5 and the checks of causes 1, 4 and 5, read in parallel. Throws only when the VPSieNode
     * itself cannot be read (then the rest would be guesswork).
     */
    async gatherEvidence(input: GatherEvidenceInput): Promise<Evidence> {
      const { ref, lastSeen } = input;
      for (const field of ['namespace', 'name'] as const)
        if (typeof ref?.[field] !== 'string' || ref[field] === '')
          throw ApplicationFailure.nonRetryable(
            `ref.${field} must be a non-empty string, got ${JSON.stringify(ref?.[field])}`,
            'InvalidInput',
          );
      const observedAt = input.observedAt ?? new Date().toISOString();

      // Sources that need nothing from the VPSieNode start at once, beside its read.
      const clusterVersion = fromKubernetes(() => kube.serverVersion());
      const controllerLogs = fromKubernetes(async () => {
        const l = await readControllerLogEvidence(kube, ref, controller, EVIDENCE_LOG_TAIL_LINES);
        return capLogs(l.pods, l.note, ref.name);
      });

      let vpsieNode: VPSieNodeSnapshot | null;
      try {
        const raw = await kube.getVPSieNode(ref);
        vpsieNode = raw === null ? null : toVPSieNodeSnapshot(raw);
      } catch (err) {
        await Promise.all([clusterVersion, controllerLogs]); // never rejects: leaves nothing running unseen
        throw asActivityFailure(err);
      }
      // What names the machine, the Node and the NodeGroup: the object as it is, else as the run last saw it.
      const subject = vpsieNode ?? lastSeen;
      const gone = 'the VPSieNode does not exist and the run never saw it';

      // By UID, so a deleted namesake's events are left out; by name alone when the run never saw the object.
      const events = fromKubernetes(async () => capEvents(await readEvents(kube, ref, subject?.uid)));

      const node: Promise<Evidence['node']> = subject
        ? fromKubernetes(() => readNodeRegistration(kube, registrationTargetOf(subject)))
        : Promise.resolve(sourceUnavailable(gone));

      const machine: Promise<Evidence['machine']> = (() => {
        const c = deps.vpsie;
        if (!c) return Promise.resolve(sourceUnavailable(VPSIE_NOT_CONFIGURED));
        if (!subject) return Promise.resolve(sourceUnavailable(gone));
        return subject.vpsieInstanceID > 0
          ? fromVPSie(async () => machineFromVM(await readVM(c, subject.vpsieInstanceID)))
          : fromVPSie(() => readMachine(c, subject));
      })();

      const ngName = subject?.nodeGroupName ?? null;
      const nodeGroup: Promise<SourceResult<NodeGroupSnapshot | null>> = ngName
        ? fromKubernetes(() => readNodeGroup(kube, { namespace: ref.namespace, name: ngName }))
        : Promise.resolve(sourceUnavailable(subject ? 'the VPSieNode names no NodeGroup' : gone));

      /** A check of the NodeGroup's ids against VPSie, or why it cannot be made. */
      const fromNodeGroup = async <T>(
        check: (c: VPSieClient, ng: NodeGroupSnapshot) => Promise<T>,
      ): Promise<SourceResult<T>> => {
        const c = deps.vpsie;
        if (!c) return sourceUnavailable(VPSIE_NOT_CONFIGURED);
        const ng = await nodeGroup;
        if (ng.status === 'error')
          return sourceUnavailable(`its NodeGroup could not be read (${ng.type}: ${ng.message})`);
        if (ng.status === 'unavailable') return sourceUnavailable(`its NodeGroup was not read: ${ng.why}`);
        const found = ng.value;
        if (found === null) return sourceUnavailable(`NodeGroup ${ref.namespace}/${ngName} does not exist`);
        return fromVPSie(() => check(c, found));
      };
      const sshKeys = fromNodeGroup((c, ng) => readSSHKeyCheck(c, ng.sshKeyIDs));
      const catalog = fromNodeGroup((c, ng) =>
        readCatalogCheck(c, {
          offeringIDs: ng.offeringIDs,
          datacenterID: ng.datacenterID,
          osImageID: ng.osImageID,
        }),
      );

      return {
        ref,
        observedAt,
        vpsieNode,
        lastSeen,
        events: await events,
        controllerLogs: await controllerLogs,
        machine: await machine,
        node: await node,
        nodeGroup: await nodeGroup,
        clusterVersion: await clusterVersion,
        sshKeys: await sshKeys,
        catalog: await catalog,
      };
    },
  };
}
