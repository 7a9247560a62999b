import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse } from 'yaml';
import { CONFIG_VARIABLES, loadConfig } from '../../src/config';

/**
 * No Docker engine runs where these tests run, so this checks what can be checked without one: that the
 * services, ports and environment of docker-compose.yml wire together, and that the worker's environment is
 * configuration the worker accepts.
 */
const root = join(__dirname, '..', '..');
type Service = {
  image?: string;
  build?: string | { context: string };
  environment?: Record<string, string | number>;
  ports?: string[];
  depends_on?: string[] | Record<string, { condition: string }>;
};
const compose = parse(readFileSync(join(root, 'docker-compose.yml'), 'utf8')) as {
  services: Record<string, Service>;
};
const services = compose.services;
const env = (s: string) =>
  Object.fromEntries(Object.entries(services[s].environment ?? {}).map(([k, v]) => [k, String(v)]));
const dependsOn = (s: Service) =>
  Array.isArray(s.depends_on) ? s.depends_on : Object.keys(s.depends_on ?? {});
const publishedPorts = (s: Service) => (s.ports ?? []).map((p) => Number(String(p).split(':').pop()));

describe('docker-compose.yml', () => {
  it('has PostgreSQL, the Temporal server, its UI and the worker', () => {
    expect(Object.keys(services).sort()).toEqual(['postgresql', 'temporal', 'temporal-ui', 'worker']);
    expect(services.temporal.image).toMatch(/^temporalio\/auto-setup:/);
    expect(services['temporal-ui'].image).toMatch(/^temporalio\/ui:/);
    expect(services.postgresql.image).toMatch(/^postgres:/);
  });

  it('depends only on services that exist', () => {
    for (const [name, s] of Object.entries(services)) {
      for (const dep of dependsOn(s))
        expect([name, dep, Object.keys(services).includes(dep)]).toEqual([name, dep, true]);
    }
  });

  it('points Temporal at PostgreSQL with the credentials PostgreSQL is given', () => {
    const t = env('temporal');
    const pg = env('postgresql');
    expect(t.POSTGRES_SEEDS).toBe('postgresql');
    expect(t.POSTGRES_USER).toBe(pg.POSTGRES_USER);
    expect(t.POSTGRES_PWD).toBe(pg.POSTGRES_PASSWORD);
    expect(dependsOn(services.temporal)).toContain('postgresql');
  });

  it('points the UI and the worker at the Temporal frontend port', () => {
    expect(publishedPorts(services.temporal)).toContain(7233);
    for (const s of ['temporal-ui', 'worker']) {
      const [host, port] = env(s).TEMPORAL_ADDRESS.split(':');
      expect(host).toBe('temporal');
      expect(publishedPorts(services.temporal)).toContain(Number(port));
    }
  });

  it('gives the worker only variables it knows, with values it accepts', () => {
    const known = new Set(CONFIG_VARIABLES.map((v) => v.name));
    const workerEnv = env('worker');
    expect(Object.keys(workerEnv).filter((k) => !known.has(k))).toEqual([]);
    expect(loadConfig(workerEnv).temporal).toEqual({
      address: 'temporal:7233',
      namespace: 'default',
      taskQueue: 'vpsie-runbook',
    });
  });

  it('builds the worker from the Dockerfile, which runs the compiled entry point', () => {
    expect(services.worker.build).toBe('.');
    const dockerfile = readFileSync(join(root, 'Dockerfile'), 'utf8');
    expect(dockerfile).toMatch(/RUN npm run build/);
    expect(dockerfile).toMatch(/CMD \["node", "dist\/main\.js"\]/);
    const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'));
    expect(pkg.scripts.build).toContain('tsconfig.build.json');
    const buildConfig = JSON.parse(readFileSync(join(root, 'tsconfig.build.json'), 'utf8'));
    expect(buildConfig.compilerOptions).toMatchObject({ rootDir: 'src', outDir: 'dist' });
  });
});
