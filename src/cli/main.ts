#!/usr/bin/env node
/**
 * `vpsie-runbook`: the runbook from a terminal. Start or join a run, read it, list runs, approve or reject what a
 * run asks, start the orphaned-VM sweep, and check a NodeGroup before it fails. One module per command
 * (src/cli/commands/); this file wires them to Commander and turns every outcome into an exit code.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Command, CommanderError, Option } from 'commander';
import { CONFIG_VARIABLES } from '../config';
import { registerCleanupOrphans } from './commands/cleanup-orphans';
import { registerDecide } from './commands/decide';
import { registerList } from './commands/list';
import { registerStatus } from './commands/status';
import { registerTrigger } from './commands/trigger';
import { registerValidateNodeGroup } from './commands/validate-nodegroup';
import { CommandContext, processIo, type GlobalFlags, type Io } from './context';
import { CliError, EXIT } from './errors';
import { CLI_NAME } from './render';

const ENVIRONMENT = [
  'TEMPORAL_ADDRESS',
  'TEMPORAL_NAMESPACE',
  'TEMPORAL_TASK_QUEUE',
  'TEMPORAL_DEV_PORT',
  'KUBECONFIG',
  'KUBE_CONTEXT',
  'VPSIE_API_URL',
  'VPSIE_TOKEN_FILE',
  'VPSIE_TOKEN',
  'VPSIE_CLIENT_ID_FILE',
  'VPSIE_CLIENT_ID',
  'VPSIE_CLIENT_SECRET_FILE',
  'VPSIE_CLIENT_SECRET',
];

const HELP_AFTER = `
Environment (the worker's, see README "Configuration"; flags win):
${CONFIG_VARIABLES.filter((v) => ENVIRONMENT.includes(v.name))
  .map(
    (v) =>
      `  ${v.name.padEnd(26)} ${v.description} [default: ${v.name === 'TEMPORAL_ADDRESS' ? '127.0.0.1:TEMPORAL_DEV_PORT, the embedded dev server' : v.default}]`,
  )
  .join('\n')}

Exit codes:
  0  done (started or joined, shown, decision accepted, every check passed)
  1  refused or wrong (no such run, nothing pending, decision refused, a check failed)
  2  bad usage (unknown command or flag, bad argument or value, bad environment variable)
  3  Temporal unreachable
  4  validate-nodegroup: a check could not be made (Kubernetes or VPSie unreachable or not configured)

Only the result goes to stdout (--output json for scripts); progress and hints go to stderr.`;

function version(): string {
  try {
    // dist/cli/main.js → package.json at the project's root
    return (
      JSON.parse(readFileSync(join(__dirname, '..', '..', 'package.json'), 'utf8')) as { version: string }
    ).version;
  } catch {
    return 'unknown';
  }
}

export function buildProgram(io: Io): Command {
  const program = new Command(CLI_NAME)
    .description(
      'The VPSie "Provisioning Failed" runbook from a terminal: runs, approvals, the orphaned-VM sweep, NodeGroup checks.',
    )
    .version(version())
    .addOption(
      new Option('-o, --output <format>', 'text for people, json for scripts')
        .choices(['text', 'json'])
        .default('text'),
    )
    .option('--address <host:port>', 'Temporal frontend (default: TEMPORAL_ADDRESS)')
    .option('--namespace <namespace>', 'Temporal namespace (default: TEMPORAL_NAMESPACE, else default)')
    .option(
      '--task-queue <name>',
      'task queue of the worker (default: TEMPORAL_TASK_QUEUE, else vpsie-runbook)',
    )
    .option('--connect-timeout <duration>', 'how long to try reaching Temporal', '10s')
    .addHelpText('after', HELP_AFTER)
    .showHelpAfterError(`(see ${CLI_NAME} --help, or ${CLI_NAME} <command> --help)`)
    .exitOverride()
    .configureOutput({
      writeOut: (s) => io.out(s),
      writeErr: (s) => process.stderr.write(s),
    });
  const context = (cmd: Command) => new CommandContext(io, cmd.optsWithGlobals<GlobalFlags>());
  registerTrigger(program, context);
  registerStatus(program, context);
  registerList(program, context);
  registerDecide(program, context);
  registerCleanupOrphans(program, context);
  registerValidateNodeGroup(program, context);
  for (const cmd of program.commands)
    cmd.addHelpText(
      'after',
      `\nGlobal options (${CLI_NAME} --help): --output, --address, --namespace, --task-queue, --connect-timeout.\nExit codes: 0 done, 1 refused or wrong, 2 bad usage, 3 Temporal unreachable${cmd.name() === 'validate-nodegroup' ? ', 4 a check could not be made' : ''}.`,
    );
  return program;
}

/** Runs the CLI on `argv` (without node and the script); answers the exit code. */
export async function run(argv: string[], io: Io = processIo): Promise<number> {
  const program = buildProgram(io);
  if (argv.length === 0) {
    process.stderr.write(program.helpInformation());
    return EXIT.USAGE;
  }
  try {
    await program.parseAsync(argv, { from: 'user' });
    return EXIT.OK;
  } catch (err) {
    if (err instanceof CommanderError) return err.exitCode === 0 ? EXIT.OK : EXIT.USAGE;
    if (err instanceof CliError) {
      if (err.message) process.stderr.write(`${CLI_NAME}: ${err.message}\n`);
      return err.exitCode;
    }
    process.stderr.write(`${CLI_NAME}: ${err instanceof Error ? err.message : String(err)}\n`);
    return EXIT.FAILED;
  }
}

if (require.main === module) {
  void run(process.argv.slice(2)).then((code) => {
    process.exitCode = code;
    // Nothing should keep the process: connections are closed. A stray handle must not hang a script.
    setTimeout(() => process.exit(code), 2_000).unref();
  });
}
