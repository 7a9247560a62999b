import {
  describeRoutes,
  isMachineErrorState,
  parseChannelList,
  parseRoutes,
  routeEscalation,
  type RoutingFacts,
} from '../../src/runbook/routing';

const facts = (over: Partial<RoutingFacts> = {}): RoutingFacts => ({
  cause: 'Unknown',
  kind: 'cause',
  step: 'escalate',
  ...over,
});

describe('routeEscalation', () => {
  it.each([
    ['VMCreationFailed', 'vpsie-support', /VMCreationFailed: VPSie did not create the VM/],
    ['ProvisioningTimeout', 'vpsie-support', /ProvisioningTimeout/],
    ['VMNotRegistering', 'platform-team', /Node does not register/],
    ['KubernetesVersionMismatch', 'platform-team', /Kubernetes version/],
    ['SSHKeyInvalid', 'platform-team', /SSH keys/],
    ['Unknown', 'platform-team', /cause Unknown/],
    [null, 'platform-team', /not classified/],
  ])('cause %s goes to %s', (cause, audience, why) => {
    const route = routeEscalation(facts({ cause }));
    expect(route.audience).toBe(audience);
    expect(route.why).toMatch(why);
  });

  it('a VM in an error state in VPSie goes to VPSie support whatever the cause', () => {
    for (const status of ['error', 'Failed', 'provision_failed'])
      expect(routeEscalation(facts({ cause: 'VMNotRegistering', machineStatus: status }))).toEqual({
        audience: 'vpsie-support',
        why: `the VM is in state "${status}" in VPSie`,
      });
    expect(routeEscalation(facts({ cause: 'VMNotRegistering', machineStatus: 'running' })).audience).toBe(
      'platform-team',
    );
    expect(isMachineErrorState(null)).toBe(false);
    expect(isMachineErrorState('suspended')).toBe(false);
  });

  it('a step that failed with a VPSie-side API error goes to VPSie support; our own credentials do not', () => {
    for (const type of ['VPSieServer', 'VPSieRateLimited', 'VPSieTimeout', 'VPSieNetwork', 'VPSieCapacity'])
      expect(
        routeEscalation(
          facts({ cause: 'VMNotRegistering', kind: 'step-failed', step: 'terminateVM', errorType: type }),
        ),
      ).toEqual({
        audience: 'vpsie-support',
        why: `step terminateVM failed with a VPSie API error (${type})`,
      });
    for (const type of ['VPSieAuth', 'VPSieForbidden', 'VPSieNotConfigured', 'Kubernetes403'])
      expect(
        routeEscalation(facts({ cause: 'VMNotRegistering', kind: 'step-failed', errorType: type })).audience,
      ).toBe('platform-team');
  });

  it('a machine VPSie did not remove in time goes to VPSie support', () => {
    expect(
      routeEscalation(facts({ cause: 'VMNotRegistering', kind: 'wait-expired', step: 'wait-machine-gone' })),
    ).toEqual({ audience: 'vpsie-support', why: 'VPSie did not remove the machine in time' });
    expect(
      routeEscalation(
        facts({ cause: 'VMNotRegistering', kind: 'wait-expired', step: 'wait-replacement-ready' }),
      ).audience,
    ).toBe('platform-team');
  });
});

describe('parseRoutes', () => {
  it('defaults to every configured channel for both audiences, and to nothing when none is configured', () => {
    expect(parseRoutes(undefined, ['slack', 'webhook'])).toEqual({
      value: { 'vpsie-support': ['slack', 'webhook'], 'platform-team': ['slack', 'webhook'] },
      problems: [],
    });
    expect(parseRoutes(undefined, [])).toEqual({
      value: { 'vpsie-support': [], 'platform-team': [] },
      problems: [],
    });
  });

  it('reads routes per audience, in the order written; an empty list is the Kubernetes Event only', () => {
    const all = ['pagerduty', 'slack', 'webhook'] as const;
    expect(parseRoutes('vpsie-support=pagerduty,slack; platform-team = slack , webhook', all)).toEqual({
      value: { 'vpsie-support': ['pagerduty', 'slack'], 'platform-team': ['slack', 'webhook'] },
      problems: [],
    });
    expect(parseRoutes('platform-team=;vpsie-support=webhook', all).value).toEqual({
      'vpsie-support': ['webhook'],
      'platform-team': [],
    });
    expect(describeRoutes({ 'vpsie-support': ['pagerduty', 'slack'], 'platform-team': [] })).toBe(
      'vpsie-support → pagerduty, slack; platform-team → (Kubernetes Event only)',
    );
  });

  it('names every bad part with the variable', () => {
    const { problems } = parseRoutes(
      'vpsie-support=pagerduty,sms,pagerduty;ops=slack;vpsie-support=slack;nonsense',
      ['slack'],
    );
    expect(problems).toEqual([
      'ESCALATION_ROUTES: vpsie-support: channel "pagerduty" is not configured (set PAGERDUTY_ROUTING_KEY_FILE or PAGERDUTY_ROUTING_KEY)',
      'ESCALATION_ROUTES: vpsie-support: unknown channel "sms" (channels: pagerduty, slack, webhook)',
      'ESCALATION_ROUTES: vpsie-support: channel "pagerduty" is not configured (set PAGERDUTY_ROUTING_KEY_FILE or PAGERDUTY_ROUTING_KEY)',
      'ESCALATION_ROUTES: unknown audience "ops" (audiences: vpsie-support, platform-team)',
      'ESCALATION_ROUTES: audience "vpsie-support" is named twice',
      'ESCALATION_ROUTES: "nonsense" must be <audience>=<channel>,<channel>…',
      'ESCALATION_ROUTES: audience "platform-team" is missing (write "platform-team=" for the Kubernetes Event only)',
    ]);
    expect(parseRoutes('vpsie-support=slack,slack;platform-team=', ['slack']).problems).toEqual([
      'ESCALATION_ROUTES: vpsie-support: channel "slack" is named twice',
    ]);
  });
});

describe('parseChannelList', () => {
  it('announces approvals on Slack and the webhook by default, PagerDuty only when named', () => {
    expect(parseChannelList(undefined, ['pagerduty', 'slack', 'webhook']).value).toEqual([
      'slack',
      'webhook',
    ]);
    expect(parseChannelList(undefined, ['pagerduty']).value).toEqual([]);
    expect(parseChannelList('pagerduty, slack', ['pagerduty', 'slack'])).toEqual({
      value: ['pagerduty', 'slack'],
      problems: [],
    });
    expect(parseChannelList('', ['slack']).value).toEqual([]);
    expect(parseChannelList('slack,email', ['pagerduty']).problems).toEqual([
      'APPROVAL_CHANNELS: channel "slack" is not configured (set SLACK_WEBHOOK_URL_FILE or SLACK_WEBHOOK_URL)',
      'APPROVAL_CHANNELS: unknown channel "email" (channels: pagerduty, slack, webhook)',
    ]);
  });
});
