// What the worker registers: every exported function here is a workflow type.
export { provisioningFailedRunbook } from './provisioning-failed';
