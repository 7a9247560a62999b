/**
 * Who an escalation is for (issue 8 item 3, the runbook's "Escalation" steps 4–5): VPSie-side problems go to
 * VPSie support, cluster-side ones to the platform team, and each audience is reached through the channels its
 * route names. Pure: the escalate activity decides with it, the configuration parses routes with it.
 */
import type { EscalationKind } from './escalation';

export const AUDIENCES = ['vpsie-support', 'platform-team'] as const;
/** `vpsie-support`: the problem is on VPSie's side; `platform-team`: on the cluster's (or unknown). */
export type Audience = (typeof AUDIENCES)[number];

/** The escalation channels besides the Kubernetes Event, which is always written. */
export const CHANNEL_NAMES = ['pagerduty', 'slack', 'webhook'] as const;
export type ChannelName = (typeof CHANNEL_NAMES)[number];

/** Which channels reach each audience, in the order they are tried and listed. */
export type Routes = Record<Audience, ChannelName[]>;

/**
 * The default when ESCALATION_ROUTES is unset: both audiences through every channel that is configured. A
 * configured channel is never silently unused, and every message names its audience, so a receiver (a PagerDuty
 * event orchestration on `payload.group`, a Slack workflow, a webhook consumer) can route further.
 */
export const DEFAULT_ROUTES_TEXT =
  'vpsie-support=pagerduty,slack,webhook;platform-team=pagerduty,slack,webhook';

/**
 * The default when APPROVAL_CHANNELS is unset: a pending approval is a question for the on-call team, not an
 * incident, so it goes to the chat and the webhook and pages nobody.
 */
export const DEFAULT_APPROVAL_CHANNELS_TEXT = 'slack,webhook';

/** What routing looks at: the escalation and what the evidence says about the machine. */
export interface RoutingFacts {
  /** The classified cause (./classify's CAUSES), or null before classification. */
  cause: string | null;
  kind: EscalationKind;
  step: string | null;
  /** The failure type of the step that failed for good (`VPSieServer`, `Kubernetes403`, …), when one did. */
  errorType?: string | null;
  /** The machine's status in VPSie (`GET /vm/{id}` or the cluster's node list), when it was read. */
  machineStatus?: string | null;
}

export interface Route {
  audience: Audience;
  /** One sentence: which rule chose the audience. */
  why: string;
}

/**
 * VPSie API failure types (the activities' `VPSie<Kind>`) that mean VPSie misbehaved: its servers, its limits,
 * its answers. `VPSieAuth`, `VPSieForbidden`, `VPSieNotFound` and `VPSieNotConfigured` are about our own
 * credentials, configuration or request, so they stay with the platform team.
 */
const VPSIE_SIDE_FAILURES: ReadonlySet<string> = new Set([
  'VPSieServer',
  'VPSieRateLimited',
  'VPSieTimeout',
  'VPSieNetwork',
  'VPSieIncomplete',
  'VPSieMalformed',
  'VPSieCapacity',
  'VPSieRejected',
]);

/**
 * A VM status that says VPSie failed the machine. The autoscaler only tells `running` from "not yet"
 * (`provisioner.go`); VPSie's consoles show `error` / `failed` for a machine that will not come up.
 */
export function isMachineErrorState(status: string | null | undefined): boolean {
  return typeof status === 'string' && /error|fail/i.test(status);
}

/**
 * The audience of an escalation. First match wins:
 * 1. the machine is in an error state in VPSie → VPSie support;
 * 2. the step failed with a VPSie-side API error (5xx, 429, timeout, network, capacity, malformed answer) →
 *    VPSie support;
 * 3. cause VMCreationFailed (the runbook's cause 1) or ProvisioningTimeout (VPSie did not deliver a running VM
 *    within the controller's 10 minutes) → VPSie support;
 * 4. VPSie did not remove the machine in time (wait `wait-machine-gone` expired) → VPSie support;
 * 5. everything else → the platform team: registration (VMNotRegistering), version (KubernetesVersionMismatch),
 *    SSH keys (SSHKeyInvalid), unknown or unclassified causes, our own credentials or configuration.
 */
export function routeEscalation(facts: RoutingFacts): Route {
  if (isMachineErrorState(facts.machineStatus))
    return {
      audience: 'vpsie-support',
      why: `the VM is in state "${facts.machineStatus}" in VPSie`,
    };
  if (facts.errorType && VPSIE_SIDE_FAILURES.has(facts.errorType))
    return {
      audience: 'vpsie-support',
      why: `${facts.step ? `step ${facts.step} failed with ` : ''}a VPSie API error (${facts.errorType})`,
    };
  if (facts.cause === 'VMCreationFailed')
    return { audience: 'vpsie-support', why: 'cause VMCreationFailed: VPSie did not create the VM' };
  if (facts.cause === 'ProvisioningTimeout')
    return {
      audience: 'vpsie-support',
      why: "cause ProvisioningTimeout: VPSie did not deliver a running VM within the controller's limit",
    };
  if (facts.kind === 'wait-expired' && facts.step === 'wait-machine-gone')
    return { audience: 'vpsie-support', why: 'VPSie did not remove the machine in time' };
  const cluster: Record<string, string> = {
    VMNotRegistering: 'cause VMNotRegistering: the VM runs but its Node does not register',
    KubernetesVersionMismatch: "cause KubernetesVersionMismatch: the NodeGroup's Kubernetes version",
    SSHKeyInvalid: "cause SSHKeyInvalid: the NodeGroup's SSH keys",
  };
  const why =
    (facts.cause && cluster[facts.cause]) ??
    (facts.cause === null ? 'not classified: a cluster-side look first' : `cause ${facts.cause}`);
  return { audience: 'platform-team', why };
}

/** Parsing results: the value, and a problem per bad part (naming the variable), never thrown. */
export interface Parsed<T> {
  value: T;
  problems: string[];
}

function channelList(
  text: string,
  variable: string,
  where: string,
  configured: readonly ChannelName[],
  implicit: boolean,
  problems: string[],
): ChannelName[] {
  const out: ChannelName[] = [];
  for (const raw of text.split(',')) {
    const name = raw.trim();
    if (name === '') continue;
    if (!(CHANNEL_NAMES as readonly string[]).includes(name)) {
      problems.push(`${variable}: ${where}unknown channel "${name}" (channels: ${CHANNEL_NAMES.join(', ')})`);
      continue;
    }
    const channel = name as ChannelName;
    if (out.includes(channel)) {
      problems.push(`${variable}: ${where}channel "${channel}" is named twice`);
      continue;
    }
    if (!configured.includes(channel)) {
      // The default names every channel; only the configured ones count.
      if (!implicit)
        problems.push(
          `${variable}: ${where}channel "${channel}" is not configured (set ${CHANNEL_VARIABLES[channel]})`,
        );
      continue;
    }
    out.push(channel);
  }
  return out;
}

/** The variables that configure each channel, for messages. */
export const CHANNEL_VARIABLES: Record<ChannelName, string> = {
  pagerduty: 'PAGERDUTY_ROUTING_KEY_FILE or PAGERDUTY_ROUTING_KEY',
  slack: 'SLACK_WEBHOOK_URL_FILE or SLACK_WEBHOOK_URL',
  webhook: 'ESCALATION_WEBHOOK_URL_FILE or ESCALATION_WEBHOOK_URL',
};

/**
 * Parses `vpsie-support=pagerduty,slack;platform-team=slack,webhook`: every audience named once, each with
 * channels that are configured (an empty list, `platform-team=`, means the Kubernetes Event only). `text`
 * undefined takes {@link DEFAULT_ROUTES_TEXT}, restricted to the configured channels.
 */
export function parseRoutes(
  text: string | undefined,
  configured: readonly ChannelName[],
  variable = 'ESCALATION_ROUTES',
): Parsed<Routes> {
  const implicit = text === undefined;
  const problems: string[] = [];
  const value: Routes = { 'vpsie-support': [], 'platform-team': [] };
  const seen = new Set<Audience>();
  for (const part of (text ?? DEFAULT_ROUTES_TEXT).split(';')) {
    if (part.trim() === '') continue;
    const eq = part.indexOf('=');
    if (eq < 0) {
      problems.push(`${variable}: "${part.trim()}" must be <audience>=<channel>,<channel>…`);
      continue;
    }
    const audience = part.slice(0, eq).trim();
    if (!(AUDIENCES as readonly string[]).includes(audience)) {
      problems.push(`${variable}: unknown audience "${audience}" (audiences: ${AUDIENCES.join(', ')})`);
      continue;
    }
    const a = audience as Audience;
    if (seen.has(a)) {
      problems.push(`${variable}: audience "${a}" is named twice`);
      continue;
    }
    seen.add(a);
    value[a] = channelList(part.slice(eq + 1), variable, `${a}: `, configured, implicit, problems);
  }
  for (const a of AUDIENCES)
    if (!seen.has(a) && !implicit)
      problems.push(`${variable}: audience "${a}" is missing (write "${a}=" for the Kubernetes Event only)`);
  return { value, problems };
}

/** Parses `slack,webhook`; undefined takes {@link DEFAULT_APPROVAL_CHANNELS_TEXT}, restricted to configured ones. */
export function parseChannelList(
  text: string | undefined,
  configured: readonly ChannelName[],
  variable = 'APPROVAL_CHANNELS',
): Parsed<ChannelName[]> {
  const problems: string[] = [];
  const value = channelList(
    text ?? DEFAULT_APPROVAL_CHANNELS_TEXT,
    variable,
    '',
    configured,
    text === undefined,
    problems,
  );
  return { value, problems };
}

/** `vpsie-support → pagerduty, slack; platform-team → (Kubernetes Event only)`: for start-up logs. */
export function describeRoutes(routes: Routes): string {
  return AUDIENCES.map(
    (a) => `${a} → ${routes[a].length ? routes[a].join(', ') : '(Kubernetes Event only)'}`,
  ).join('; ');
}
