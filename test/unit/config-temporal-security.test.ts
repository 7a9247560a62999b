import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CONFIG_VARIABLES, ConfigError, loadConfig } from '../../src/config';
import { describeTemporalSecurity, temporalConnectionSecurity } from '../../src/temporal/connection-options';

const ADDRESS = { TEMPORAL_ADDRESS: 'temporal.example.com:7233' };

function problems(env: NodeJS.ProcessEnv): string[] {
  try {
    loadConfig(env);
  } catch (err) {
    if (err instanceof ConfigError) return err.problems;
    throw err;
  }
  throw new Error(`accepted: ${JSON.stringify(env)}`);
}

describe('TEMPORAL_TLS* and TEMPORAL_API_KEY(_FILE)', () => {
  it('connects in plain gRPC when none is set', () => {
    expect(loadConfig({}).temporalSecurity).toEqual({ tls: null, apiKey: null });
    expect(loadConfig(ADDRESS).temporalSecurity).toEqual({ tls: null, apiKey: null });
    expect(loadConfig({ ...ADDRESS, TEMPORAL_TLS: 'false' }).temporalSecurity.tls).toBeNull();
  });

  it("takes TLS with the system's CAs, a server CA, a server name, and a client certificate for mTLS", () => {
    expect(loadConfig({ ...ADDRESS, TEMPORAL_TLS: 'true' }).temporalSecurity).toEqual({
      tls: {},
      apiKey: null,
    });
    expect(loadConfig({ ...ADDRESS, TEMPORAL_TLS: 'TRUE' }).temporalSecurity.tls).toEqual({});
    expect(
      loadConfig({
        ...ADDRESS,
        TEMPORAL_TLS_SERVER_CA_CERT_PATH: '/etc/t/ca.crt',
        TEMPORAL_TLS_CLIENT_CERT_PATH: '/etc/t/tls.crt',
        TEMPORAL_TLS_CLIENT_KEY_PATH: '/etc/t/tls.key',
        TEMPORAL_TLS_SERVER_NAME: 'frontend.temporal.internal',
      }).temporalSecurity,
    ).toEqual({
      tls: {
        serverCaCertFile: '/etc/t/ca.crt',
        clientCertFile: '/etc/t/tls.crt',
        clientKeyFile: '/etc/t/tls.key',
        serverName: 'frontend.temporal.internal',
      },
      apiKey: null,
    });
  });

  it('turns TLS on with an API key, file or value', () => {
    expect(loadConfig({ ...ADDRESS, TEMPORAL_API_KEY_FILE: '/etc/t/api-key' }).temporalSecurity).toEqual({
      tls: {},
      apiKey: { variable: 'TEMPORAL_API_KEY_FILE', file: '/etc/t/api-key' },
    });
    expect(loadConfig({ ...ADDRESS, TEMPORAL_API_KEY: 'k.e.y' }).temporalSecurity).toEqual({
      tls: {},
      apiKey: { variable: 'TEMPORAL_API_KEY', value: 'k.e.y' },
    });
  });

  it('sends a key without TLS only to a loopback address', () => {
    for (const address of ['127.0.0.1:7233', 'localhost:7233', '[::1]:7233'])
      expect(
        loadConfig({ TEMPORAL_ADDRESS: address, TEMPORAL_TLS: 'false', TEMPORAL_API_KEY: 'k' })
          .temporalSecurity,
      ).toEqual({ tls: null, apiKey: { variable: 'TEMPORAL_API_KEY', value: 'k' } });
    expect(problems({ ...ADDRESS, TEMPORAL_TLS: 'false', TEMPORAL_API_KEY_FILE: '/k' })).toEqual([
      'TEMPORAL_API_KEY_FILE needs TLS (the key would cross the network in clear text): remove TEMPORAL_TLS=false',
    ]);
  });

  it('names each bad variable, never quoting a key', () => {
    const found = problems({
      ...ADDRESS,
      TEMPORAL_TLS: 'yes please',
      TEMPORAL_TLS_CLIENT_CERT_PATH: '/etc/t/tls.crt',
      TEMPORAL_TLS_SERVER_NAME: 'not a name',
      TEMPORAL_API_KEY: 'secret with spaces',
      TEMPORAL_API_KEY_FILE: '/etc/t/api-key',
    });
    expect(found).toEqual([
      'TEMPORAL_TLS must be true or false, got "yes please"',
      'TEMPORAL_TLS_SERVER_NAME must be a host name, got "not a name"',
      'TEMPORAL_TLS_CLIENT_KEY_PATH is missing: mTLS needs the client certificate and its key',
      'set only one of TEMPORAL_API_KEY_FILE and TEMPORAL_API_KEY',
      'TEMPORAL_API_KEY must not contain spaces',
    ]);
    expect(found.join('\n')).not.toContain('secret');
    expect(problems({ ...ADDRESS, TEMPORAL_TLS_CLIENT_KEY_PATH: '/k' })).toEqual([
      'TEMPORAL_TLS_CLIENT_CERT_PATH is missing: mTLS needs the client certificate and its key',
    ]);
  });

  it('refuses TLS settings that TEMPORAL_TLS=false contradicts', () => {
    expect(
      problems({
        ...ADDRESS,
        TEMPORAL_TLS: 'false',
        TEMPORAL_TLS_SERVER_CA_CERT_PATH: '/ca',
        TEMPORAL_TLS_SERVER_NAME: 'temporal',
      }),
    ).toEqual([
      'TEMPORAL_TLS is false, but TLS settings are set (TEMPORAL_TLS_SERVER_CA_CERT_PATH, TEMPORAL_TLS_SERVER_NAME)',
    ]);
  });

  it('refuses them for the embedded dev server (no TEMPORAL_ADDRESS), which takes plain connections', () => {
    const why =
      'TEMPORAL_TLS, TEMPORAL_TLS_* and TEMPORAL_API_KEY(_FILE) need TEMPORAL_ADDRESS: the embedded dev server takes plain connections';
    expect(problems({ TEMPORAL_TLS: 'true' })).toEqual([why]);
    expect(problems({ TEMPORAL_API_KEY: 'k' })).toEqual([why]);
  });

  it('lists every variable for --help and the README', () => {
    const names = CONFIG_VARIABLES.map((v) => v.name);
    for (const name of [
      'TEMPORAL_TLS',
      'TEMPORAL_TLS_SERVER_CA_CERT_PATH',
      'TEMPORAL_TLS_CLIENT_CERT_PATH',
      'TEMPORAL_TLS_CLIENT_KEY_PATH',
      'TEMPORAL_TLS_SERVER_NAME',
      'TEMPORAL_API_KEY_FILE',
      'TEMPORAL_API_KEY',
    ])
      expect(names).toContain(name);
  });
});

describe('temporalConnectionSecurity: the files, read at start-up', () => {
  let dir: string;
  const CERT = '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n';
  const KEY = '-----BEGIN PRIVATE KEY-----\nMIIE\n-----END PRIVATE KEY-----\n';
  const file = (name: string, text: string) => {
    writeFileSync(join(dir, name), text);
    return join(dir, name);
  };
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'temporal-security-'));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('is plain gRPC, explicitly, when TLS is off, even with a key for a loopback server', async () => {
    expect(await temporalConnectionSecurity({ tls: null, apiKey: null })).toEqual({ tls: false });
    expect(
      await temporalConnectionSecurity({ tls: null, apiKey: { variable: 'TEMPORAL_API_KEY', value: 'k' } }),
    ).toEqual({ tls: false, apiKey: 'k' });
  });

  it('gives the SDK the CA, the client certificate pair, the server name and the key', async () => {
    const c = loadConfig({
      ...ADDRESS,
      TEMPORAL_TLS_SERVER_CA_CERT_PATH: file('ca.crt', CERT),
      TEMPORAL_TLS_CLIENT_CERT_PATH: file('tls.crt', CERT),
      TEMPORAL_TLS_CLIENT_KEY_PATH: file('tls.key', KEY),
      TEMPORAL_TLS_SERVER_NAME: 'frontend.temporal.internal',
      TEMPORAL_API_KEY_FILE: file('api-key', 'eyJhbGciOi.key\n'),
    });
    expect(await temporalConnectionSecurity(c.temporalSecurity)).toEqual({
      tls: {
        serverNameOverride: 'frontend.temporal.internal',
        serverRootCACertificate: Buffer.from(CERT),
        clientCertPair: { crt: Buffer.from(CERT), key: Buffer.from(KEY) },
      },
      apiKey: 'eyJhbGciOi.key',
    });
    expect(describeTemporalSecurity(c.temporalSecurity)).toBe(
      `TLS (server CA: ${join(dir, 'ca.crt')}, server name frontend.temporal.internal, client certificate ${join(dir, 'tls.crt')}), API key from TEMPORAL_API_KEY_FILE`,
    );
    expect(
      await temporalConnectionSecurity(loadConfig({ ...ADDRESS, TEMPORAL_TLS: 'true' }).temporalSecurity),
    ).toEqual({ tls: {} });
    expect(describeTemporalSecurity(loadConfig(ADDRESS).temporalSecurity)).toBe('plain gRPC');
  });

  it('names each variable whose file is missing or holds the wrong thing, without quoting a key', async () => {
    const c = loadConfig({
      ...ADDRESS,
      TEMPORAL_TLS_SERVER_CA_CERT_PATH: join(dir, 'missing.crt'),
      TEMPORAL_TLS_CLIENT_CERT_PATH: file('key-as-cert.pem', KEY),
      TEMPORAL_TLS_CLIENT_KEY_PATH: file('cert-as-key.pem', CERT),
      TEMPORAL_API_KEY_FILE: file('api-key', 'first-line\nsecond-line-secret\n'),
    });
    const err = await temporalConnectionSecurity(c.temporalSecurity).then(
      () => null,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(ConfigError);
    expect((err as ConfigError).problems).toEqual([
      `TEMPORAL_TLS_SERVER_CA_CERT_PATH: cannot read ${join(dir, 'missing.crt')} (ENOENT)`,
      `TEMPORAL_TLS_CLIENT_CERT_PATH must name a PEM file with a certificate, got ${join(dir, 'key-as-cert.pem')}`,
      `TEMPORAL_TLS_CLIENT_KEY_PATH must name a PEM file with a private key, got ${join(dir, 'cert-as-key.pem')}`,
      `TEMPORAL_API_KEY_FILE: ${join(dir, 'api-key')} must hold the key alone (it has spaces or several lines)`,
    ]);
    expect((err as ConfigError).message).not.toContain('secret');
    await expect(
      temporalConnectionSecurity({
        tls: {},
        apiKey: { variable: 'TEMPORAL_API_KEY_FILE', file: file('empty', '\n') },
      }),
    ).rejects.toThrow(`TEMPORAL_API_KEY_FILE: ${join(dir, 'empty')} is empty`);
  });
});
