import { ConfigError, loadConfig } from '../../src/config';

describe('loadConfig', () => {
  it('has working defaults with nothing set', () => {
    const c = loadConfig({});
    expect(c.temporal).toEqual({ address: null, namespace: 'default', taskQueue: 'vpsie-runbook' });
    expect(c.devServer).toEqual({ port: 7233, uiPort: 8233, dbFile: '.cache/temporal-dev.sqlite' });
    expect(c.logLevel).toBe('info');
    expect(c.vpsie).toEqual({ baseUrl: 'https://api.vpsie.com/v2' });
  });

  it('caches 150 runs in the worker unless WORKER_MAX_CACHED_WORKFLOWS says otherwise, within 1 to 10000', () => {
    expect(loadConfig({}).maxCachedWorkflows).toBe(150);
    expect(loadConfig({ WORKER_MAX_CACHED_WORKFLOWS: '40' }).maxCachedWorkflows).toBe(40);
    for (const bad of ['0', '10001', '-1', '2.5', 'many'])
      expect(() => loadConfig({ WORKER_MAX_CACHED_WORKFLOWS: bad })).toThrow(
        `WORKER_MAX_CACHED_WORKFLOWS must be a whole number from 1 to 10000, got "${bad}"`,
      );
  });

  it('takes the VPSie URL and token file, and refuses two token sources', () => {
    const c = loadConfig({
      VPSIE_API_URL: 'https://api.vpsie.com/apps/v2/',
      VPSIE_TOKEN_FILE: '/run/secrets/vpsie',
    });
    expect(c.vpsie).toEqual({ baseUrl: 'https://api.vpsie.com/apps/v2', tokenFile: '/run/secrets/vpsie' });
    expect(() => loadConfig({ VPSIE_TOKEN_FILE: '/a', VPSIE_TOKEN: 'b' })).toThrow(
      /only one of VPSIE_TOKEN_FILE/,
    );
    expect(() => loadConfig({ VPSIE_API_URL: 'api.vpsie.com' })).toThrow(
      /VPSIE_API_URL must be an http\(s\) URL/,
    );
  });

  it('reads every variable', () => {
    const c = loadConfig({
      TEMPORAL_ADDRESS: 'temporal:7233',
      TEMPORAL_NAMESPACE: 'ops',
      TEMPORAL_TASK_QUEUE: 'runbooks',
      KUBECONFIG: '/etc/kube/config',
      KUBE_CONTEXT: 'prod',
      LOG_LEVEL: 'DEBUG',
    });
    expect(c.temporal).toEqual({ address: 'temporal:7233', namespace: 'ops', taskQueue: 'runbooks' });
    expect(c.kubernetes).toEqual({ kubeconfig: '/etc/kube/config', context: 'prod' });
    expect(c.logLevel).toBe('debug');
  });

  it('names every bad variable at once', () => {
    let error: unknown;
    try {
      loadConfig({
        TEMPORAL_ADDRESS: 'temporal',
        TEMPORAL_DEV_PORT: '70000',
        LOG_LEVEL: 'loud',
        TEMPORAL_TASK_QUEUE: 'a b',
      });
    } catch (err) {
      error = err;
    }
    expect(error).toBeInstanceOf(ConfigError);
    const problems = (error as ConfigError).problems.join('\n');
    expect(problems).toMatch(/TEMPORAL_ADDRESS must be host:port.*"temporal"/);
    expect(problems).toMatch(/TEMPORAL_DEV_PORT must be a TCP port.*"70000"/);
    expect(problems).toMatch(/LOG_LEVEL must be one of/);
    expect(problems).toMatch(/TEMPORAL_TASK_QUEUE/);
  });

  it("finds the controller's pods by label: upstream defaults, overridable, checked", () => {
    expect(loadConfig({}).controller).toEqual({
      namespace: 'kube-system',
      labelSelector: 'app=vpsie-autoscaler',
      container: 'controller',
    });
    const helm = loadConfig({
      CONTROLLER_NAMESPACE: 'autoscaler',
      CONTROLLER_LABEL_SELECTOR:
        'app.kubernetes.io/name=vpsie-autoscaler, app.kubernetes.io/instance in (prod)',
      CONTROLLER_CONTAINER: 'vpsie-autoscaler',
    });
    expect(helm.controller).toEqual({
      namespace: 'autoscaler',
      labelSelector: 'app.kubernetes.io/name=vpsie-autoscaler, app.kubernetes.io/instance in (prod)',
      container: 'vpsie-autoscaler',
    });
    for (const ok of ['app', '!canary', 'tier!=web', 'app=', 'app==x,tier notin (a, b)'])
      expect(loadConfig({ CONTROLLER_LABEL_SELECTOR: ok }).controller.labelSelector).toBe(ok);
    let error: unknown;
    try {
      loadConfig({
        CONTROLLER_NAMESPACE: 'Kube_System',
        CONTROLLER_LABEL_SELECTOR: 'app=x y',
        CONTROLLER_CONTAINER: '-c',
      });
    } catch (err) {
      error = err;
    }
    const problems = (error as ConfigError).problems.join('\n');
    expect(problems).toMatch(/CONTROLLER_NAMESPACE must be a namespace name, got "Kube_System"/);
    expect(problems).toMatch(/CONTROLLER_LABEL_SELECTOR must be a label selector .*, got "app=x y"/);
    expect(problems).toMatch(/CONTROLLER_CONTAINER must be a container name, got "-c"/);
    for (const bad of ['=x', 'app in ()', 'a,,b', 'app=x=y'])
      expect(() => loadConfig({ CONTROLLER_LABEL_SELECTOR: bad })).toThrow(/CONTROLLER_LABEL_SELECTOR/);
  });

  it('requires https for the VPSie API except to a loopback host, naming the value', () => {
    for (const ok of ['http://127.0.0.1:8080/v2', 'http://localhost/v2', 'http://[::1]:9/v2'])
      expect(loadConfig({ VPSIE_API_URL: ok }).vpsie.baseUrl).toBe(ok);
    for (const bad of ['http://api.vpsie.com/v2', 'http://10.0.0.7/v2', 'http://127.example.com/v2'])
      expect(() => loadConfig({ VPSIE_API_URL: bad })).toThrow(
        new RegExp(`VPSIE_API_URL must use https \\(http only to a loopback host\\), got "${bad}"`),
      );
  });

  it('takes VPSie client credentials as values or files, both halves, and not beside a token', () => {
    expect(
      loadConfig({ VPSIE_CLIENT_ID: 'id-1', VPSIE_CLIENT_SECRET_FILE: '/run/secrets/secret' }).vpsie,
    ).toEqual({
      baseUrl: 'https://api.vpsie.com/v2',
      clientId: 'id-1',
      clientSecretFile: '/run/secrets/secret',
    });
    const problems = (env: NodeJS.ProcessEnv): string => {
      try {
        loadConfig(env);
      } catch (err) {
        return (err as ConfigError).problems.join('\n');
      }
      return '';
    };
    expect(problems({ VPSIE_CLIENT_ID: 'id-1' })).toMatch(/VPSIE_CLIENT_SECRET\(_FILE\) is missing/);
    expect(problems({ VPSIE_CLIENT_SECRET: 's' })).toMatch(/VPSIE_CLIENT_ID\(_FILE\) is missing/);
    expect(
      problems({ VPSIE_CLIENT_SECRET: 's', VPSIE_CLIENT_SECRET_FILE: '/f', VPSIE_CLIENT_ID: 'i' }),
    ).toMatch(/only one of VPSIE_CLIENT_SECRET_FILE and VPSIE_CLIENT_SECRET/);
    const both = problems({
      VPSIE_TOKEN: 't',
      VPSIE_CLIENT_ID: 'i',
      VPSIE_CLIENT_SECRET: 'super-secret-value',
    });
    expect(both).toMatch(/either a VPSie token .* or client credentials .*, not both/);
    // The secret's value is never echoed.
    expect(both).not.toContain('super-secret-value');
  });

  it('configures no escalation channel by default: escalations are Kubernetes Events only', () => {
    expect(loadConfig({}).channels).toEqual({
      routes: { 'vpsie-support': [], 'platform-team': [] },
      approvalChannels: [],
    });
  });

  it('takes each escalation channel as a file or a value, with routes and approval channels', () => {
    const key = 'a'.repeat(32);
    const c = loadConfig({
      SLACK_WEBHOOK_URL_FILE: '/run/secrets/slack-url',
      PAGERDUTY_ROUTING_KEY: key,
      ESCALATION_WEBHOOK_URL: 'https://hooks.example.com/escalations',
    }).channels;
    expect(c).toEqual({
      slack: { variable: 'SLACK_WEBHOOK_URL_FILE', file: '/run/secrets/slack-url' },
      pagerduty: {
        routingKey: { variable: 'PAGERDUTY_ROUTING_KEY', value: key },
        eventsUrl: 'https://events.pagerduty.com/v2/enqueue',
      },
      webhook: { variable: 'ESCALATION_WEBHOOK_URL', value: 'https://hooks.example.com/escalations' },
      // the defaults: every configured channel for both audiences; approvals on Slack and the webhook
      routes: {
        'vpsie-support': ['pagerduty', 'slack', 'webhook'],
        'platform-team': ['pagerduty', 'slack', 'webhook'],
      },
      approvalChannels: ['slack', 'webhook'],
    });
    const routed = loadConfig({
      SLACK_WEBHOOK_URL_FILE: '/run/secrets/slack-url',
      PAGERDUTY_ROUTING_KEY_FILE: '/run/secrets/pd-key',
      PAGERDUTY_EVENTS_URL: 'http://127.0.0.1:9999/v2/enqueue',
      ESCALATION_ROUTES: 'vpsie-support=pagerduty,slack;platform-team=slack',
      APPROVAL_CHANNELS: 'slack,pagerduty',
    }).channels;
    expect(routed.routes).toEqual({ 'vpsie-support': ['pagerduty', 'slack'], 'platform-team': ['slack'] });
    expect(routed.approvalChannels).toEqual(['slack', 'pagerduty']);
    expect(routed.pagerduty?.eventsUrl).toBe('http://127.0.0.1:9999/v2/enqueue');
  });

  it('names every bad escalation setting, and never quotes a secret', () => {
    const secretUrl = 'http://hooks.slack.com/services/T000/B000/very-secret-token';
    let error: unknown;
    try {
      loadConfig({
        SLACK_WEBHOOK_URL: secretUrl,
        PAGERDUTY_ROUTING_KEY: 'short-secret-key',
        ESCALATION_WEBHOOK_URL: 'https://hooks.example.com/x',
        ESCALATION_WEBHOOK_URL_FILE: '/run/secrets/hook',
        PAGERDUTY_EVENTS_URL: 'ftp://events.example.com',
        ESCALATION_ROUTES: 'vpsie-support=pagerduty,email;platform-team=slack',
        APPROVAL_CHANNELS: 'pager',
      });
    } catch (err) {
      error = err;
    }
    expect(error).toBeInstanceOf(ConfigError);
    const problems = (error as ConfigError).problems;
    expect(problems).toEqual(
      expect.arrayContaining([
        'SLACK_WEBHOOK_URL must use https (http only to a loopback host)',
        'PAGERDUTY_ROUTING_KEY must be the 32-character integration key (letters and digits), got 16 characters',
        'set only one of ESCALATION_WEBHOOK_URL_FILE and ESCALATION_WEBHOOK_URL',
        'PAGERDUTY_EVENTS_URL must use https (http only to a loopback host), got "ftp://events.example.com"',
        'ESCALATION_ROUTES: vpsie-support: unknown channel "email" (channels: pagerduty, slack, webhook)',
        'APPROVAL_CHANNELS: unknown channel "pager" (channels: pagerduty, slack, webhook)',
      ]),
    );
    const all = problems.join('\n');
    expect(all).not.toContain('very-secret-token');
    expect(all).not.toContain('short-secret-key');
    expect(() => loadConfig({ ESCALATION_ROUTES: 'vpsie-support=slack;platform-team=' })).toThrow(
      /ESCALATION_ROUTES: vpsie-support: channel "slack" is not configured \(set SLACK_WEBHOOK_URL_FILE or SLACK_WEBHOOK_URL\)/,
    );
  });

  it('refuses the same port for the dev server and its UI', () => {
    expect(() => loadConfig({ TEMPORAL_DEV_PORT: '9000', TEMPORAL_DEV_UI_PORT: '9000' })).toThrow(
      /must differ/,
    );
  });
});
