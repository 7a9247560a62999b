/**
 * `validate-nodegroup <ns>/<name>`: the runbook's prevention advice before a NodeGroup causes a failure. One line
 * per check; exit 1 when something is wrong, 4 when something could not be checked.
 */
import type { Command } from 'commander';
import type { CommandContext } from '../context';
import type { ValidateFlags } from '../validate-nodegroup-run';

export function registerValidateNodeGroup(program: Command, context: (cmd: Command) => CommandContext): void {
  program
    .command('validate-nodegroup')
    .summary("check a NodeGroup's ids and version before it fails")
    .description(
      "Check a NodeGroup before it causes a failure: its offering, datacenter, image and SSH key ids and its VPSie cluster against VPSie, and its kubernetesVersion against the cluster's. One line per check; exit 1 when one is wrong, 4 when one could not be made.",
    )
    .argument('<ns/name>', 'the NodeGroup, as <namespace>/<name>')
    .option('--kubeconfig <file>', 'kubeconfig to use (default: KUBECONFIG, ~/.kube/config, in-cluster)')
    .option('--context <name>', 'kubeconfig context to use (default: KUBE_CONTEXT, else the current one)')
    .action(async (arg: string, opts: ValidateFlags, self: Command) => {
      const { validateNodeGroup } = await import('../validate-nodegroup-run');
      await validateNodeGroup(context(self), arg, opts);
    });
}
