/**
 * How upstream writes a VPSieNode's status in memory before the one patch at the end of a reconcile
 * (`vpsienode/phases.go` SetPhase, `vpsienode/conditions.go`). SetPhase only sets the phase and its timestamp:
 * its reason and message go nowhere. Errors live in the `Error` condition and `lastError`.
 */
import type { VPSieNodeObj, VPSieNodeStatus } from './types';
import { metaTime, setCondition } from './util';

export function statusOf(vn: VPSieNodeObj): VPSieNodeStatus {
  vn.status ??= {};
  return vn.status;
}

export function setPhase(vn: VPSieNodeObj, phase: string): void {
  const s = statusOf(vn);
  s.phase = phase;
  const now = metaTime();
  if (phase === 'Provisioning') s.createdAt ??= now;
  if (phase === 'Provisioned') s.provisionedAt ??= now;
  if (phase === 'Ready') {
    s.joinedAt ??= now;
    s.readyAt ??= now;
  }
  if (phase === 'Terminating') s.terminatingAt ??= now;
}

function set(vn: VPSieNodeObj, type: string, ok: boolean, reason: string, message: string): void {
  const s = statusOf(vn);
  s.conditions = setCondition(s.conditions, type, ok ? 'True' : 'False', reason, message);
}

export const setVPSReady = (vn: VPSieNodeObj, ok: boolean, reason: string, message: string) =>
  set(vn, 'VPSReady', ok, reason, message);
export const setNodeJoined = (vn: VPSieNodeObj, ok: boolean, reason: string, message: string) =>
  set(vn, 'NodeJoined', ok, reason, message);
export const setNodeReady = (vn: VPSieNodeObj, ok: boolean, reason: string, message: string) =>
  set(vn, 'NodeReady', ok, reason, message);

/** ClearError: `Error` False with no reason or message, `lastError` emptied (run on every reconcile but Failed). */
export function clearError(vn: VPSieNodeObj): void {
  set(vn, 'Error', false, '', '');
  statusOf(vn).lastError = '';
}

export function recordError(vn: VPSieNodeObj, reason: string, message: string): void {
  set(vn, 'Error', true, reason, message);
  statusOf(vn).lastError = message;
}
