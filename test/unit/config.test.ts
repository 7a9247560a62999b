import { ConfigError, loadConfig } from '../../src/config';

describe('loadConfig', () => {
  it('has working defaults with nothing set', () => {
    const c = loadConfig({});
    expect(c.temporal).toEqual({ address: null, namespace: 'default', taskQueue: 'vpsie-runbook' });
    expect(c.devServer).toEqual({ port: 7233, uiPort: 8233, dbFile: '.cache/temporal-dev.sqlite' });
    expect(c.logLevel).toBe('info');
    expect(c.vpsie).toEqual({ baseUrl: 'https://api.vpsie.com/v2' });
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

  it('refuses the same port for the dev server and its UI', () => {
    expect(() => loadConfig({ TEMPORAL_DEV_PORT: '9000', TEMPORAL_DEV_UI_PORT: '9000' })).toThrow(
      /must differ/,
    );
  });
});
