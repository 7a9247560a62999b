import { spawn, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, readFileSync } from 'node:fs';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import { join, resolve } from 'node:path';
import { parse } from 'yaml';
import { CONFIG_VARIABLES, loadConfig } from '../../src/config';
import { freePort } from '../../src/temporal/free-port';
import { SEARCH_ATTRIBUTES } from '../../src/workflows/search-attributes';

/**
 * No Docker engine runs where these tests run, so this checks what can be checked without one: that every
 * service of docker-compose.yml has an image, that their dependencies, ports, secrets and environment wire
 * together, that the worker and the receiver accept their environment (each variable one they know), that the
 * set-up scripts are valid shell registering the project's search attributes, and that the healthchecks' commands
 * do what they say. test/integration/deploy-compose.test.ts runs the set-up script against a real server.
 */
const root = join(__dirname, '..', '..');
type Service = {
  image?: string;
  build?: string | { context: string };
  command?: string[];
  entrypoint?: string[];
  environment?: Record<string, string | number>;
  ports?: string[];
  depends_on?: Record<string, { condition: string }>;
  secrets?: string[];
  volumes?: string[];
  healthcheck?: { test: string[] };
  restart?: string;
};
type Compose = {
  services: Record<string, Service>;
  secrets: Record<string, { file: string }>;
  volumes: Record<string, unknown>;
};
const text = readFileSync(join(root, 'docker-compose.yml'), 'utf8');
const compose = parse(text) as Compose;
const services = compose.services;
const names = Object.keys(services);

/** Compose's interpolation: ${VAR}, ${VAR:-default} (unset or empty), ${VAR-default} (unset), $$ for $. */
function interpolate(value: string, vars: Record<string, string>): string {
  return value.replace(/\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?-)([^}]*))?\}/g, (m, name, op, def) => {
    if (m === '$$') return '$';
    const v = vars[name];
    if (op === ':-') return v ? v : def;
    if (op === '-') return v === undefined ? def : v;
    return v ?? '';
  });
}
const env = (s: string, vars: Record<string, string> = {}) =>
  Object.fromEntries(
    Object.entries(services[s].environment ?? {}).map(([k, v]) => [k, interpolate(String(v), vars)]),
  );
const dependsOn = (s: Service) => Object.entries(s.depends_on ?? {});
/** host port → container port of each published port ('8233:8080'). */
const published = (s: Service) =>
  (s.ports ?? []).map((p) => {
    const [host, container] = String(p).split(':').map(Number);
    return { host, container };
  });
/** The container ports a service publishes. */
const containerPorts = (s: string) => published(services[s]).map((p) => p.container);

/** The channel toggles of .env, as the file's comment says to set them. */
const CHANNELS_ON = {
  SLACK_WEBHOOK_URL_FILE: '/run/secrets/slack_webhook_url',
  PAGERDUTY_ROUTING_KEY_FILE: '/run/secrets/pagerduty_routing_key',
};

describe('docker-compose.yml', () => {
  it('is the same YAML to every parser (no yes/no/off or octal that YAML 1.1 reads otherwise)', () => {
    expect(parse(text, { version: '1.1' })).toEqual(compose);
  });

  it('runs PostgreSQL, the schema and setup jobs, Temporal, its UI, the worker and the receiver, each from an image or the Dockerfile', () => {
    expect(names.sort()).toEqual(
      [
        'postgresql',
        'receiver',
        'temporal',
        'temporal-schema',
        'temporal-setup',
        'temporal-ui',
        'worker',
      ].sort(),
    );
    expect(services.postgresql.image).toMatch(/^postgres:\d+$/);
    expect(services.temporal.image).toMatch(/^temporalio\/server:\d+\.\d+\.\d+$/);
    expect(services['temporal-ui'].image).toMatch(/^temporalio\/ui:\d+\.\d+\.\d+$/);
    expect(services['temporal-schema'].image).toMatch(/^temporalio\/admin-tools:/);
    expect(services['temporal-setup'].image).toBe(services['temporal-schema'].image);
    // the admin tools are the same Temporal release as the server
    const release = services.temporal.image!.split(':')[1];
    expect(services['temporal-schema'].image!.split(':')[1].startsWith(`${release}-`)).toBe(true);
    for (const s of ['worker', 'receiver']) expect(services[s].build).toBe('.');
    for (const [name, s] of Object.entries(services))
      expect([name, !!s.image !== !!s.build]).toEqual([name, true]);
  });

  it('starts each service after what it needs, without a cycle, and only on conditions that can be met', () => {
    const oneShot = new Set(['temporal-schema', 'temporal-setup']);
    for (const [name, s] of Object.entries(services)) {
      for (const [dep, { condition }] of dependsOn(s)) {
        expect([name, dep, names.includes(dep)]).toEqual([name, dep, true]);
        if (condition === 'service_healthy') expect([dep, !!services[dep].healthcheck]).toEqual([dep, true]);
        else
          expect([name, dep, condition, oneShot.has(dep)]).toEqual([
            name,
            dep,
            'service_completed_successfully',
            true,
          ]);
      }
    }
    for (const s of oneShot) expect([s, services[s].restart]).toEqual([s, undefined]); // ends, and stays ended
    // a topological order exists: take what has all its dependencies started, until nothing is left
    const started = new Set<string>();
    while (started.size < names.length) {
      const next = names.filter(
        (n) => !started.has(n) && dependsOn(services[n]).every(([d]) => started.has(d)),
      );
      expect(next.length).toBeGreaterThan(0);
      next.forEach((n) => started.add(n));
    }
    const needs = (s: string) => dependsOn(services[s]).map(([d]) => d);
    expect(needs('temporal')).toEqual(['temporal-schema']);
    expect(needs('temporal-schema')).toEqual(['postgresql']);
    // the worker and the receiver start once the search attributes are registered
    expect(needs('worker')).toEqual(['temporal-setup']);
    expect(needs('receiver')).toEqual(['temporal-setup']);
    expect(needs('temporal-setup')).toEqual(['temporal']);
  });

  it('publishes each host port once, and each on the port its process listens on', () => {
    const hostPorts = Object.values(services).flatMap((s) => published(s).map((p) => p.host));
    expect(new Set(hostPorts).size).toBe(hostPorts.length);
    expect(containerPorts('temporal')).toContain(7233);
    expect(containerPorts('temporal-ui')).toEqual([8080]); // the UI server's default TEMPORAL_UI_PORT
    const worker = loadConfig(env('worker'));
    expect(worker.receiver).toBeNull(); // the receiver has its own container
    expect(containerPorts('worker')).toEqual([worker.metrics!.port]);
    const receiver = loadConfig(env('receiver'));
    expect(containerPorts('receiver')).toEqual([receiver.receiver!.port, receiver.metrics!.port]);
    // the healthchecks ask the ports the processes listen on
    expect(services.worker.healthcheck!.test.join(' ')).toContain(
      `127.0.0.1:${worker.metrics!.port}/metrics`,
    );
    expect(services.receiver.healthcheck!.test.join(' ')).toContain(
      `127.0.0.1:${receiver.receiver!.port}/readyz`,
    );
  });

  it('points Temporal at PostgreSQL, and the schema job at the same database with the same credentials', () => {
    const pg = env('postgresql');
    const t = env('temporal');
    const schema = env('temporal-schema');
    expect(t).toMatchObject({ DB: 'postgres12', POSTGRES_SEEDS: 'postgresql', DB_PORT: '5432' });
    expect(t.POSTGRES_USER).toBe(pg.POSTGRES_USER);
    expect(t.POSTGRES_PWD).toBe(pg.POSTGRES_PASSWORD);
    expect(schema).toMatchObject({
      POSTGRES_SEEDS: 'postgresql',
      DB_PORT: '5432',
      POSTGRES_USER: pg.POSTGRES_USER,
    });
    expect(schema.SQL_PASSWORD).toBe(pg.POSTGRES_PASSWORD);
  });

  it('points the UI, the setup job, the worker and the receiver at the Temporal frontend and the same namespace', () => {
    for (const s of ['temporal-ui', 'temporal-setup', 'worker', 'receiver']) {
      const [host, port] = env(s).TEMPORAL_ADDRESS.split(':');
      expect([s, host]).toEqual([s, 'temporal']);
      expect(containerPorts('temporal')).toContain(Number(port));
    }
    for (const s of ['worker', 'receiver']) {
      const c = loadConfig(env(s));
      expect(c.temporal).toEqual({
        address: 'temporal:7233',
        namespace: 'default',
        taskQueue: 'vpsie-runbook',
      });
      expect(c.temporalSecurity).toEqual({ tls: null, apiKey: null });
    }
    expect(env('temporal-setup').TEMPORAL_NAMESPACE).toBe('default');
  });

  it('gives the worker and the receiver only variables they know, with values they accept, with and without the channel toggles', () => {
    const known = new Set(CONFIG_VARIABLES.map((v) => v.name));
    for (const s of ['worker', 'receiver']) {
      expect([s, Object.keys(env(s)).filter((k) => !known.has(k))]).toEqual([s, []]);
      expect(() => loadConfig(env(s))).not.toThrow();
      expect(() => loadConfig(env(s, CHANNELS_ON))).not.toThrow();
    }
    const off = loadConfig(env('worker'));
    expect(off.vpsie.tokenFile).toBe('/run/secrets/vpsie_token');
    expect(off.channels.slack).toBeUndefined();
    expect(off.channels.pagerduty).toBeUndefined();
    const on = loadConfig(env('worker', CHANNELS_ON));
    expect(on.channels.slack).toEqual({
      variable: 'SLACK_WEBHOOK_URL_FILE',
      file: '/run/secrets/slack_webhook_url',
    });
    expect(on.channels.pagerduty?.routingKey).toEqual({
      variable: 'PAGERDUTY_ROUTING_KEY_FILE',
      file: '/run/secrets/pagerduty_routing_key',
    });
    expect(loadConfig(env('receiver')).receiver?.token).toEqual({
      variable: 'RECEIVER_TOKEN_FILE',
      file: '/run/secrets/receiver_token',
    });
  });

  it('declares every secret a service takes, mounts every secret file a variable names, and keeps the VPSie token from the receiver', () => {
    const declared = Object.keys(compose.secrets);
    const taken = new Set<string>();
    for (const [name, s] of Object.entries(services)) {
      for (const secret of s.secrets ?? []) {
        expect([name, secret, declared.includes(secret)]).toEqual([name, secret, true]);
        taken.add(secret);
      }
      for (const [k, v] of Object.entries(env(name, CHANNELS_ON))) {
        const m = /^\/run\/secrets\/(.+)$/.exec(v);
        if (m) expect([name, k, (s.secrets ?? []).includes(m[1])]).toEqual([name, k, true]);
      }
    }
    expect([...taken].sort()).toEqual(declared.sort());
    for (const { file } of Object.values(compose.secrets)) expect(file).toMatch(/^\.\/secrets\/[a-z-]+$/);
    expect(services.receiver.secrets).toEqual(['receiver_token']);
    expect(services.worker.secrets).not.toContain('receiver_token');
  });

  it('runs the worker and the receiver as `npm start` and `npm run receiver` run them once built', () => {
    const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'));
    const dockerfile = readFileSync(join(root, 'Dockerfile'), 'utf8');
    expect(dockerfile).toMatch(/RUN npm run build/);
    const cmd = JSON.parse(/^CMD (\[.*\])$/m.exec(dockerfile)![1]) as string[];
    // with the image's allocator setting (its ENV), unless the shell gives one
    const arenas = /^ENV MALLOC_ARENA_MAX=(\d+)$/m.exec(dockerfile)![1];
    expect(pkg.scripts.start).toBe(
      `npm run build --silent && MALLOC_ARENA_MAX=\${MALLOC_ARENA_MAX:-${arenas}} ${cmd.join(' ')}`,
    );
    expect(services.worker.command).toBeUndefined();
    expect(pkg.scripts.receiver).toBe(`npm run build --silent && ${services.receiver.command!.join(' ')}`);
    expect(dockerfile).toMatch(/^USER 1000:1000$/m);
  });

  it('mounts set-up files that exist, and the scripts are valid POSIX shell', () => {
    const mounts = Object.values(services)
      .flatMap((s) => s.volumes ?? [])
      .map((v) => v.split(':')[0])
      .filter((src) => src.startsWith('./'));
    expect(mounts.length).toBeGreaterThan(0);
    for (const src of mounts) expect([src, existsSync(resolve(root, src))]).toEqual([src, true]);
    for (const s of ['temporal-schema', 'temporal-setup']) {
      const script = services[s].command![0];
      const mounted = services[s].volumes!.find((v) => v.split(':')[1] === script)!;
      expect(services[s].entrypoint).toEqual(['/bin/sh']);
      const run = spawnSync('sh', ['-n', resolve(root, mounted.split(':')[0])], { encoding: 'utf8' });
      expect([s, run.status, run.stderr]).toEqual([s, 0, '']);
    }
  });

  it("registers exactly the project's search attributes, each with its type", () => {
    const script = readFileSync(join(root, 'deploy', 'compose', 'setup-temporal.sh'), 'utf8');
    const registered = [...script.matchAll(/--name (\w+) --type (\w+)/g)].map(([, name, type]) => ({
      name,
      type,
    }));
    const type = (t: string) => ({ KEYWORD: 'Keyword', BOOL: 'Bool' })[t] ?? `unmapped ${t}`;
    expect(registered).toEqual(SEARCH_ATTRIBUTES.map((k) => ({ name: k.name, type: type(k.type) })));
  });

  describe('healthchecks', () => {
    let status = 200;
    const server = http.createServer((_req, res) => res.writeHead(status).end());
    let port = 0;
    beforeAll(async () => {
      server.listen(0, '127.0.0.1');
      await once(server, 'listening');
      port = (server.address() as AddressInfo).port;
    });
    afterAll(() => new Promise((r) => server.close(r)));
    /** The exit code of a service's healthcheck, run here against this server instead of the service's port. */
    const check = async (s: string, toPort: number): Promise<number | null> => {
      const [kind, binary, flag, code] = services[s].healthcheck!.test;
      expect([kind, binary, flag]).toEqual(['CMD', 'node', '-e']);
      const child = spawn(process.execPath, ['-e', code.replace(/127\.0\.0\.1:\d+/, `127.0.0.1:${toPort}`)]);
      const [exitCode] = (await once(child, 'exit')) as [number | null];
      return exitCode;
    };

    it.each(['worker', 'receiver'])(
      '%s: healthy on 200, unhealthy on 503 and when nothing listens',
      async (s) => {
        status = 200;
        expect(await check(s, port)).toBe(0);
        status = 503;
        expect(await check(s, port)).toBe(1);
        expect(await check(s, await freePort())).toBe(1);
      },
    );
  });
});
