// What the worker registers: every exported function here is a workflow type.
export { provisioningFailedRunbook } from './provisioning-failed';
export { orphanedVmCleanup } from './orphaned-vm-cleanup';
export { nodeGroupLease } from './nodegroup-lease';
