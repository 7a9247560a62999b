import { Context } from '@temporalio/activity';
import { ApplicationFailure } from '@temporalio/common';
import { VPSieApiError, type AccountQuota, type VPSieClient } from '../clients/vpsie';
import {
  checkCatalog,
  checkSSHKeyIDs,
  toVMSnapshot,
  type CatalogCheck,
  type SSHKeyCheck,
  type VMSnapshot,
} from '../runbook';

/**
 * VPSie answers as Temporal failures: permanent ones (401/403/404/4xx/malformed) fail at once with a type the
 * workflow can branch on (`VPSieAuth`, `VPSieForbidden`, …); transient ones retry, after the API's own
 * `Retry-After` when it gave one. The details are the error's secret-free JSON form.
 */
export function asVPSieActivityFailure(err: unknown): unknown {
  if (!(err instanceof VPSieApiError)) return err;
  const type = `VPSie${err.kind.replace(/(^|-)([a-z])/g, (_m, _d, c: string) => c.toUpperCase())}`;
  return ApplicationFailure.create({
    message: err.message,
    type,
    nonRetryable: err.permanent,
    details: [err.toJSON()],
    ...(err.retryAfterMs !== undefined ? { nextRetryDelay: err.retryAfterMs } : {}),
  });
}

/** The activity's cancellation signal, so a cancelled run stops waiting on VPSie. */
function signal(): { signal?: AbortSignal } {
  try {
    return { signal: Context.current().cancellationSignal };
  } catch {
    return {}; // called outside an activity (a script, a test): nothing to cancel with
  }
}

/** The VM a VPSieNode was diagnosed with: a terminate only goes ahead while the id still names that VM. */
export interface VMPrecondition {
  id: number;
  /** The VM's UUID as diagnosed: VPSie could in principle reuse a numeric id, never a UUID. */
  identifier: string;
}

export function createVPSieActivities(vpsie: VPSieClient | null) {
  const client = (): VPSieClient => {
    if (!vpsie) {
      throw ApplicationFailure.nonRetryable(
        'VPSie credentials are not configured: set VPSIE_TOKEN_FILE (or VPSIE_TOKEN) for the worker',
        'VPSieNotConfigured',
      );
    }
    return vpsie;
  };
  const guarded =
    <A extends unknown[], R>(fn: (...args: A) => Promise<R>) =>
    async (...args: A): Promise<R> => {
      try {
        return await fn(...args);
      } catch (err) {
        throw asVPSieActivityFailure(err);
      }
    };

  return {
    /** Runbook step 4: was the VM created, and what state is it in? null when VPSie does not know the id. */
    checkVM: guarded(async (instanceID: number): Promise<VMSnapshot | null> => {
      const vm = await client().getVM(instanceID, signal());
      return vm && toVMSnapshot(vm);
    }),

    /** For orphan detection: every VM in the account, reduced to what the runbook needs. */
    listVMs: guarded(async (): Promise<VMSnapshot[]> => (await client().listVMs(signal())).map(toVMSnapshot)),

    /** Runbook cause 5: are the NodeGroup's SSH key ids known to the VPSie account? */
    checkSSHKeys: guarded(async (sshKeyIDs: string[]): Promise<SSHKeyCheck> => {
      return checkSSHKeyIDs(sshKeyIDs, await client().listSSHKeys(signal()));
    }),

    /** Runbook cause 1: are the NodeGroup's offering, datacenter and image ids valid and available? */
    checkCatalog: guarded(
      async (wanted: { offeringIDs: string[]; datacenterID: string | null; osImageID: string | null }) => {
        const c = client();
        const [offerings, datacenters, images] = await Promise.all([
          c.listOfferings(signal()),
          c.listDatacenters(signal()),
          c.listImages(signal()),
        ]);
        return checkCatalog(wanted, { offerings, datacenters, images }) satisfies CatalogCheck;
      },
    ),

    /** Runbook cause 1: "check account quotas". */
    checkAccountQuota: guarded(async (): Promise<AccountQuota> => client().getAccountQuota(signal())),

    /**
     * Terminates a VM (runbook "Manual VM Cleanup"). Idempotent: a VM already gone is success. Refuses when the
     * id now names another VM than the one diagnosed.
     */
    terminateVM: guarded(async (expected: VMPrecondition): Promise<'terminated' | 'already-gone'> => {
      const c = client();
      const current = await c.getVM(expected.id, signal());
      if (!current) return 'already-gone';
      if (current.identifier !== expected.identifier) {
        throw ApplicationFailure.nonRetryable(
          `VM ${expected.id} is now ${current.identifier} ("${current.name}"), not the diagnosed ${expected.identifier}: not terminating it`,
          'VMPreconditionFailed',
        );
      }
      const { alreadyGone } = await c.deleteVM(expected.id, signal());
      return alreadyGone ? 'already-gone' : 'terminated';
    }),
  };
}
