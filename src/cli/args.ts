/**
 * The CLI's positional arguments and plain values, checked before anything connects. Pure: no I/O, so the unit
 * tests cover every refusal and its wording.
 */
import { parseDuration } from '../runbook/duration';
import { InvalidInputError, validateRef, WORKFLOW_ID_PREFIX, workflowIdFor } from '../runbook/input';
import type { VPSieNodeRef } from '../runbook/types';
import { usageError } from './errors';

/** `<ns>/<name>` of a VPSieNode (or a NodeGroup): namespace a DNS label, name a DNS subdomain. */
export function parseObjectRef(text: string, what: string): VPSieNodeRef {
  const parts = text.split('/');
  if (parts.length !== 2) throw usageError(`${what} must be <namespace>/<name>, got ${JSON.stringify(text)}`);
  try {
    return validateRef({ namespace: parts[0], name: parts[1] });
  } catch (err) {
    if (err instanceof InvalidInputError) throw usageError(`${what} ${JSON.stringify(text)}: ${err.message}`);
    throw err;
  }
}

/** A run as people name it: a VPSieNode (`ns/name`), or a workflow id (a sweep's, or the runbook's own). */
export interface RunArg {
  /** As typed, for messages. */
  text: string;
  /** The VPSieNode when the text names one (`ns/name` or `provisioning-failed/ns/name`). */
  ref: VPSieNodeRef | null;
  /** Workflow ids to try, in order: the VPSieNode's runbook first, then the text itself as a workflow id. */
  workflowIds: string[];
}

// C0, DEL and C1 controls never belong in a workflow id typed by a person.
// eslint-disable-next-line no-control-regex
const CONTROL = /[\u0000-\u001f\u007f-\u009f]/;

/**
 * `ns/name` is a VPSieNode, so its run is `provisioning-failed/ns/name`; anything else is a workflow id
 * (`provisioning-failed/ns/name`, `orphaned-vm-cleanup/cli-…`, a Schedule's `orphaned-vm-cleanup-…`). A sweep id
 * such as `orphaned-vm-cleanup/manual-1` also reads as `ns/name`: it is tried as the text itself when no
 * VPSieNode run has that name.
 */
export function parseRunArg(text: string, what = '<ns>/<name>|<workflow-id>'): RunArg {
  if (text.trim() === '' || text !== text.trim() || CONTROL.test(text) || text.length > 1000)
    throw usageError(
      `${what} must be a VPSieNode as <namespace>/<name> or a workflow id, got ${JSON.stringify(text)}`,
    );
  const parts = text.split('/');
  let ref: VPSieNodeRef | null = null;
  const asRef = (namespace: string, name: string): VPSieNodeRef | null => {
    try {
      return validateRef({ namespace, name });
    } catch {
      return null;
    }
  };
  if (parts.length === 2) ref = asRef(parts[0], parts[1]);
  else if (parts.length === 3 && parts[0] === WORKFLOW_ID_PREFIX) ref = asRef(parts[1], parts[2]);
  const ids = ref ? [workflowIdFor(ref), text] : [text];
  return { text, ref, workflowIds: [...new Set(ids)] };
}

/** A duration flag of the CLI itself (not a workflow input): positive, within bounds, named in the error. */
export function parseCliDuration(value: string, flag: string, minMs: number, maxMs: number): number {
  let ms: number;
  try {
    ms = parseDuration(value, flag);
  } catch (err) {
    throw usageError((err as Error).message);
  }
  if (ms < minMs || ms > maxMs)
    throw usageError(
      `${flag} must be between ${minMs / 1000}s and ${maxMs / 1000}s, got ${JSON.stringify(value)}`,
    );
  return ms;
}

/** A whole number flag (`--limit`, `--checks-per-run`). */
export function parseWholeNumber(value: string, flag: string, min: number, max: number): number {
  const n = Number(value);
  if (!/^\d+$/.test(value.trim()) || n < min || n > max)
    throw usageError(`${flag} must be a whole number from ${min} to ${max}, got ${JSON.stringify(value)}`);
  return n;
}

/** `--output`: text for people (the default), json for scripts. */
export type OutputFormat = 'text' | 'json';
