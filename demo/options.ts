/** The demo's command line: flags, their checks (a refusal names the flag and the value) and `--help`. */
import { userInfo } from 'node:os';
import { Command, CommanderError, InvalidArgumentError } from 'commander';
import { DEMO_CAUSES, parseCause, SCENARIOS, type DemoCause } from './causes';

/** A port a flag asked for (`explicit`), or its default, which gives way to a free port when taken. */
export interface PortChoice {
  /** 0: any free port. */
  port: number;
  explicit: boolean;
}

export interface DemoOptions {
  causes: DemoCause[];
  /** Failures staged per cause. */
  count: number;
  temporalPort: PortChoice;
  uiPort: PortChoice;
  receiverPort: PortChoice;
  /** null: a new temporary directory, removed when the demo stops. */
  workDir: string | null;
  /** How the printed commands run the `vpsie-runbook` CLI. */
  cli: string;
  /** The name the printed approve and reject commands decide as. */
  approver: string;
}

export const DEFAULT_PORTS = { temporal: 7233, ui: 8233, receiver: 8080 } as const;
export const DEFAULT_CLI = 'node dist/cli/main.js';
export const MAX_COUNT = 10;

/** `--help` or a bad command line: what to print, where, and the exit code. */
export class DemoUsage extends Error {
  constructor(
    message: string,
    readonly exitCode: 0 | 2,
  ) {
    super(message);
  }
}

const SUMMARY =
  'Try vpsie-runbook without a cluster: a sandbox on loopback with the real etcd and kube-apiserver, the ' +
  'simulated vpsie-k8s-autoscaler and VPSie API (the ones the tests use), a Temporal dev server with its Web UI, ' +
  "the product's worker and its alert receiver. It stages a failure of each cause of the runbook, sends the " +
  'alerts through the receiver as Alertmanager does, and prints where to watch the runs and the commands that ' +
  'answer them. Ctrl-C stops everything (a second Ctrl-C forces).';

function causesHelp(): string {
  const width = Math.max(...DEMO_CAUSES.map((c) => c.length));
  return DEMO_CAUSES.map((c) => `  ${c.padEnd(width)}  ${SCENARIOS[c].staged}: ${SCENARIOS[c].expect}`).join(
    '\n',
  );
}

function port(flag: string) {
  return (value: string): number => {
    if (!/^\d+$/.test(value) || Number(value) > 65535)
      throw new InvalidArgumentError(`${flag} must be a port number from 0 to 65535, got "${value}"`);
    return Number(value);
  };
}

function count(value: string): number {
  if (!/^\d+$/.test(value) || Number(value) < 1 || Number(value) > MAX_COUNT)
    throw new InvalidArgumentError(`--count must be a whole number from 1 to ${MAX_COUNT}, got "${value}"`);
  return Number(value);
}

function cause(value: string, previous: DemoCause[] = []): DemoCause[] {
  const out = [...previous];
  for (const part of value.split(',')) {
    if (part.trim().toLowerCase() === 'all') {
      out.push(...DEMO_CAUSES);
      continue;
    }
    const c = parseCause(part);
    if (!c)
      throw new InvalidArgumentError(
        `--cause must be one of ${DEMO_CAUSES.join(', ')} or all, got "${part}"`,
      );
    out.push(c);
  }
  return out;
}

function defaultApprover(): string {
  try {
    const name = userInfo().username;
    if (/^[A-Za-z0-9._-]{1,64}$/.test(name)) return name;
  } catch {
    // no user name (a container without /etc/passwd entry)
  }
  return 'demo-user';
}

/** Parses the demo's arguments (without node and the script). Throws DemoUsage for --help and bad input. */
export function parseDemoArgs(argv: string[]): DemoOptions {
  let help = '';
  const program = new Command('npm run demo --')
    .description(SUMMARY)
    .option('--cause <cause>', 'stage only this cause (repeat, or a comma list; default: all)', cause)
    .option('--count <n>', `failures staged per cause, each in its own NodeGroup (1-${MAX_COUNT})`, count, 1)
    .option(
      '--temporal-port <port>',
      'Temporal frontend (gRPC) port; 0: any free port',
      port('--temporal-port'),
    )
    .option('--ui-port <port>', 'Temporal Web UI port; 0: any free port', port('--ui-port'))
    .option('--receiver-port <port>', "the alert receiver's port; 0: any free port", port('--receiver-port'))
    .option('--work-dir <dir>', 'keep the sandbox here (kubeconfig, logs, etcd data); kept after it stops')
    .option('--cli <command>', 'how the printed commands run the vpsie-runbook CLI', DEFAULT_CLI)
    .option('--approver <name>', 'the name the printed approve/reject commands use', defaultApprover())
    .addHelpText(
      'after',
      `
Causes (--cause):
${causesHelp()}

Ports: by default the Temporal dev server's usual ${DEFAULT_PORTS.temporal} (UI ${DEFAULT_PORTS.ui}) and the receiver's ${DEFAULT_PORTS.receiver}; a default port
that is taken gives way to a free one, a port given with a flag must be free. etcd, kube-apiserver, the
simulated VPSie API and the fake kubelet always take free loopback ports.

Needs the servers the tests use (npm run setup installs them); downloads nothing.
The printed CLI commands use dist/cli/main.js, which \`npm run demo\` builds first; after \`npm link\`,
pass --cli vpsie-runbook.`,
    )
    .helpOption('-h, --help', 'show this help')
    .exitOverride()
    .configureOutput({ writeOut: (s) => (help += s), writeErr: (s) => (help += s) })
    .allowExcessArguments(false);
  try {
    program.parse(argv, { from: 'user' });
  } catch (err) {
    if (err instanceof CommanderError) {
      if (err.exitCode === 0) throw new DemoUsage(help, 0);
      throw new DemoUsage(`${err.message.replace(/^error: /, '')}\n(see npm run demo -- --help)\n`, 2);
    }
    throw err;
  }
  const o = program.opts<{
    cause?: DemoCause[];
    count: number;
    temporalPort?: number;
    uiPort?: number;
    receiverPort?: number;
    workDir?: string;
    cli: string;
    approver: string;
  }>();
  const choice = (value: number | undefined, fallback: number): PortChoice =>
    value === undefined ? { port: fallback, explicit: false } : { port: value, explicit: true };
  const ports = [
    ['--temporal-port', o.temporalPort],
    ['--ui-port', o.uiPort],
    ['--receiver-port', o.receiverPort],
  ] as const;
  for (const [i, [flag, value]] of ports.entries())
    for (const [other, v] of ports.slice(i + 1))
      if (value !== undefined && value !== 0 && value === v)
        throw new DemoUsage(`${flag} and ${other} must differ, both are ${value}\n`, 2);
  if (o.cli.trim() === '') throw new DemoUsage('--cli must be a command, got ""\n', 2);
  if (!/^[A-Za-z0-9._-]{1,64}$/.test(o.approver))
    throw new DemoUsage(
      `--approver must be a name of 1 to 64 letters, digits, dots, dashes or underscores, got "${o.approver}"\n`,
      2,
    );
  return {
    causes: [...new Set(o.cause ?? DEMO_CAUSES)],
    count: o.count,
    temporalPort: choice(o.temporalPort, DEFAULT_PORTS.temporal),
    uiPort: choice(o.uiPort, DEFAULT_PORTS.ui),
    receiverPort: choice(o.receiverPort, DEFAULT_PORTS.receiver),
    workDir: o.workDir ?? null,
    cli: o.cli.trim(),
    approver: o.approver,
  };
}
