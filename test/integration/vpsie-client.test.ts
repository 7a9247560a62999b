import http from 'node:http';
import util from 'node:util';

import { VPSieApiError, VPSieClient, parseRetryAfter } from '../../src/clients/vpsie';
import type { VPSieClientOptions } from '../../src/clients/vpsie';
import { rejectsWith } from '../support/expect-rejection';
import { VPSieSimulator } from '../support/vpsie-simulator';

const TOKEN = 'tok-7d3f0b9c5a1e4f2d8b6a0c9e7f5d3b1a';

let sim: VPSieSimulator;
let baseUrl: string;

beforeEach(async () => {
  sim = new VPSieSimulator({ token: TOKEN });
  baseUrl = await sim.start();
});

afterEach(async () => {
  await sim.stop();
});

/** Fast retries so the whole file runs in seconds; production defaults are exercised by the code paths. */
function client(overrides: Partial<VPSieClientOptions> = {}): VPSieClient {
  return new VPSieClient({
    baseUrl,
    token: TOKEN,
    timeoutMs: 2_000,
    maxRetries: 3,
    retryBaseDelayMs: 5,
    retryMaxDelayMs: 20,
    ...overrides,
  });
}

const failure = (p: Promise<unknown>) => rejectsWith(p, VPSieApiError);

function expectNoToken(err: unknown, token = TOKEN): void {
  const e = err as Error;
  const renderings = [
    String(e),
    e.message,
    e.stack ?? '',
    JSON.stringify(e),
    util.inspect(e, { depth: 10, showHidden: true }),
  ];
  for (const text of renderings) expect(text).not.toContain(token);
  expect(Object.keys(e)).not.toEqual(expect.arrayContaining(['config']));
  expect(e).not.toHaveProperty('cause');
  expect(e).not.toHaveProperty('config');
  expect(e).not.toHaveProperty('request');
  expect(e).not.toHaveProperty('response');
}

describe('VPSieClient against the simulator: happy paths', () => {
  test('listVMs follows pagination across several pages', async () => {
    const ids = Array.from({ length: 7 }, () => sim.addVM().id);
    const vms = await client({ pageSize: 3 }).listVMs();

    expect(vms.map((v) => v.id)).toEqual(ids);
    const gets = sim.requestsTo('GET', '/vm');
    expect(gets.map((r) => r.query)).toEqual([
      { page: '1', per_page: '3' },
      { page: '2', per_page: '3' },
      { page: '3', per_page: '3' },
    ]);
    expect(gets.every((r) => r.auth === 'valid' && r.status === 200)).toBe(true);
    // Field names as §3.
    expect(Object.keys(vms[0])).toEqual(
      expect.arrayContaining([
        'id',
        'identifier',
        'name',
        'hostname',
        'status',
        'cpu',
        'ram',
        'ssd',
        'default_ip',
        'default_ipv6',
        'boxsize_id',
        'datacenter_id',
        'os_name',
        'os_version',
        'created_on',
        'last_updated',
        'tags',
        'notes',
      ]),
    );
  });

  test('listVMs of an empty account is one request and an empty list', async () => {
    expect(await client().listVMs()).toEqual([]);
    expect(sim.requests).toHaveLength(1);
  });

  test('getVM answers the VM, and null for an unknown id (one request, no retry)', async () => {
    const vm = sim.addVM({ name: 'ng-a-1', status: 'provisioning' });
    const c = client();
    expect(await c.getVM(vm.id)).toMatchObject({ id: vm.id, name: 'ng-a-1', status: 'provisioning' });
    sim.clearRequests();
    expect(await c.getVM(999_999)).toBeNull();
    expect(sim.requests.map((r) => [r.method, r.path, r.status])).toEqual([['GET', '/vm/999999', 404]]);
  });

  test('deleteVM twice: the second is alreadyGone, two DELETEs seen, the VM is gone, onDelete fired once', async () => {
    const vm = sim.addVM();
    const deleted: number[] = [];
    sim.onDelete((v) => deleted.push(v.id));
    const c = client();

    expect(await c.deleteVM(vm.id)).toEqual({ alreadyGone: false });
    expect(await c.deleteVM(vm.id)).toEqual({ alreadyGone: true });

    const deletes = sim.requests.filter((r) => r.method === 'DELETE');
    expect(deletes.map((r) => [r.path, r.status])).toEqual([
      [`/vm/${vm.id}`, 200],
      [`/vm/${vm.id}`, 404],
    ]);
    expect(sim.hasVM(vm.id)).toBe(false);
    expect(deleted).toEqual([vm.id]);
    expect(await c.getVM(vm.id)).toBeNull();
  });

  test('vmAction sends {action} and changes the VM; unknown VM is a permanent not-found', async () => {
    const vm = sim.addVM({ status: 'running' });
    const c = client();
    await c.vmAction(vm.id, 'stop');
    expect(sim.getVM(vm.id)?.status).toBe('stopped');
    await c.vmAction(vm.id, 'start');
    expect(sim.getVM(vm.id)?.status).toBe('running');
    expect(sim.requestsTo('POST', '/vm/:id/action').map((r) => r.body)).toEqual([
      { action: 'stop' },
      { action: 'start' },
    ]);

    sim.clearRequests();
    const err = await failure(c.vmAction(424_242, 'restart'));
    expect(err).toMatchObject({ kind: 'not-found', status: 404, permanent: true, method: 'POST' });
    expect(sim.requests).toHaveLength(1);
  });

  test('catalog, SSH keys and quota: field names, ids normalised, 404 → null', async () => {
    sim.addOffering({ id: 104, cpu: 16, ram: 32768 });
    sim.addVM({ boxsize_id: 102 });
    const key = sim.addSSHKey({ name: 'deploy' });
    const c = client({ pageSize: 2 });

    const offerings = await c.listOfferings();
    expect(offerings.map((o) => o.id)).toEqual(['101', '102', '103', '104']);
    expect(offerings[0]).toMatchObject({
      name: expect.any(String),
      cpu: 2,
      ram: 4096,
      disk: 80,
      available: true,
    });
    expect(offerings[0].datacenter_id).toBe('1');
    expect(sim.requestsTo('GET', '/offerings')).toHaveLength(2);

    expect(await c.getOffering('102')).toMatchObject({ id: '102', cpu: 4 });
    expect(await c.getOffering(999)).toBeNull();

    const dcs = await c.listDatacenters();
    expect(dcs.map((d) => [d.id, d.code, d.available])).toEqual([
      ['1', 'nyc1', true],
      ['2', 'fra1', true],
    ]);
    const images = await c.listImages();
    expect(images.map((i) => [i.id, i.distribution, i.version])).toEqual([
      ['201', 'ubuntu', '22.04'],
      ['202', 'debian', '12'],
    ]);

    const keys = await c.listSSHKeys();
    expect(keys.map((k) => k.name)).toEqual(['ops', 'deploy']);
    expect(keys[1]).toMatchObject({ id: key.id, identifier: key.identifier, created_on: expect.any(String) });
    expect(await c.getSSHKey(key.identifier)).toMatchObject({ id: key.id, name: 'deploy' });
    expect(await c.getSSHKey('00000000-0000-4000-8000-000000000000')).toBeNull();

    sim.setQuotaLimits({ vms: 3 });
    expect(await c.getAccountQuota()).toEqual({
      vms: { used: 1, limit: 3 },
      cpu: { used: 4, limit: 200 },
      ramMB: { used: 8192, limit: 409_600 },
    });
  });

  test('sends the bearer token and a User-Agent; the simulator never records the token', async () => {
    await client({ userAgent: 'runbook-test/1' }).listVMs();
    expect(sim.requests[0]).toMatchObject({ auth: 'valid', userAgent: 'runbook-test/1' });
    expect(JSON.stringify(sim.requests)).not.toContain(TOKEN);
  });
});

describe('permanent errors: right kind, no retry', () => {
  test('401 from a wrong token', async () => {
    const err = await failure(client({ token: 'wrong-token-123456' }).listVMs());
    expect(err).toMatchObject({ kind: 'auth', status: 401, permanent: true, method: 'GET', attempts: 1 });
    expect(err.path).toBe('/vm?page=1&per_page=100');
    expect(err.message).toContain('GET /vm?page=1&per_page=100');
    expect(err.message).toContain('401');
    expect(err.message).toContain('Invalid or expired token');
    expect(sim.requests).toHaveLength(1);
    expect(sim.requests[0].auth).toBe('invalid');
    expectNoToken(err, 'wrong-token-123456');
  });

  test('403 injected', async () => {
    const vm = sim.addVM();
    sim.inject({ method: 'DELETE', path: '/vm/:id', fault: { type: 'status', status: 403 } });
    const err = await failure(client().deleteVM(vm.id));
    expect(err).toMatchObject({
      kind: 'forbidden',
      status: 403,
      permanent: true,
      method: 'DELETE',
      code: '403',
    });
    expect(err.message).toMatch(
      /DELETE \/vm\/\d+ failed: HTTP 403 Forbidden: Forbidden: You do not have permission/,
    );
    expect(sim.requests).toHaveLength(1);
    expect(sim.hasVM(vm.id)).toBe(true);
  });

  test('404 on a list endpoint', async () => {
    sim.inject({ path: '/images', fault: { type: 'status', status: 404 } });
    const err = await failure(client().listImages());
    expect(err).toMatchObject({ kind: 'not-found', status: 404, permanent: true });
    expect(sim.requests).toHaveLength(1);
  });

  test('other 4xx (400) is permanent "rejected"', async () => {
    sim.inject({
      path: '/vm',
      fault: {
        type: 'status',
        status: 422,
        body: { error: 'Unprocessable', message: 'bad page', code: 'E_PAGE' },
      },
    });
    const err = await failure(client().listVMs());
    expect(err).toMatchObject({
      kind: 'rejected',
      status: 422,
      permanent: true,
      code: 'E_PAGE',
      apiMessage: 'bad page',
    });
    expect(sim.requests).toHaveLength(1);
  });

  test('malformed JSON → malformed, permanent, one request', async () => {
    sim.inject({ method: 'GET', path: '/vm', times: 1, fault: { type: 'invalid-json' } });
    const err = await failure(client().listVMs());
    expect(err).toMatchObject({ kind: 'malformed', permanent: true, status: 200 });
    expect(err.message).toContain('not JSON');
    expect(sim.requests).toHaveLength(1);
  });

  test('wrong shapes → malformed', async () => {
    const c = client();
    sim.inject({ path: '/vm', times: 1, fault: { type: 'json', body: { data: { not: 'an array' } } } });
    expect(await failure(c.listVMs())).toMatchObject({ kind: 'malformed', permanent: true });

    sim.inject({
      path: '/vm',
      times: 1,
      fault: { type: 'json', body: { data: [{ id: 'abc', status: 'running' }] } },
    });
    const idErr = await failure(c.listVMs());
    expect(idErr.kind).toBe('malformed');
    expect(idErr.message).toContain('"id" must be a positive integer');

    sim.inject({ path: '/vm/:id', times: 1, fault: { type: 'json', body: { error: false, data: 'nope' } } });
    expect(await failure(c.getVM(5))).toMatchObject({ kind: 'malformed' });

    sim.inject({
      path: '/vm',
      times: 1,
      fault: { type: 'json', body: { data: [], pagination: { total_pages: 'many' } } },
    });
    expect(await failure(c.listVMs())).toMatchObject({ kind: 'malformed' });

    sim.inject({ path: '/account/quota', times: 1, fault: { type: 'json', body: { data: { vms: 3 } } } });
    expect(await failure(c.getAccountQuota())).toMatchObject({ kind: 'malformed' });
    expect(sim.requests).toHaveLength(5);
  });
});

describe('transient errors: retried', () => {
  test('429 with Retry-After: 1 is retried after at least 1 s, then succeeds', async () => {
    const vm = sim.addVM();
    sim.inject({
      method: 'GET',
      path: '/vm/:id',
      times: 1,
      fault: { type: 'status', status: 429, retryAfter: 1 },
    });
    const retries: number[] = [];
    const got = await client({ onRetry: (i) => retries.push(i.delayMs) }).getVM(vm.id);

    expect(got?.id).toBe(vm.id);
    const [first, second] = sim.requests;
    expect(sim.requests).toHaveLength(2);
    expect(first.status).toBe(429);
    expect(second.status).toBe(200);
    expect(second.at - first.at).toBeGreaterThanOrEqual(1_000);
    expect(retries).toEqual([1_000]);
  });

  test('500 then 503 are retried, then the call succeeds', async () => {
    const vm = sim.addVM();
    sim.inject({ path: '/vm/:id', times: 1, fault: { type: 'status', status: 500 } });
    sim.inject({ path: '/vm/:id', times: 1, fault: { type: 'status', status: 503 } });
    expect((await client().getVM(vm.id))?.id).toBe(vm.id);
    expect(sim.requests.map((r) => r.status)).toEqual([500, 503, 200]);
  });

  test('a DELETE retried after a 503 still ends idempotently', async () => {
    const vm = sim.addVM();
    sim.inject({ method: 'DELETE', path: '/vm/:id', times: 1, fault: { type: 'status', status: 503 } });
    expect(await client().deleteVM(vm.id)).toEqual({ alreadyGone: false });
    expect(sim.requests.map((r) => r.status)).toEqual([503, 200]);
    expect(sim.hasVM(vm.id)).toBe(false);
  });

  test('retries exhausted → transient error carrying the status', async () => {
    sim.inject({ path: '/vm', fault: { type: 'status', status: 503 } });
    const err = await failure(client({ maxRetries: 2 }).listVMs());
    expect(err).toMatchObject({ kind: 'server', status: 503, permanent: false, attempts: 3 });
    expect(err.message).toContain('HTTP 503 Service Unavailable');
    expect(err.message).toContain('gave up after 3 attempts');
    expect(sim.requests).toHaveLength(3);
  });

  test('maxRetries 0 → a single attempt', async () => {
    sim.inject({ path: '/vm', fault: { type: 'status', status: 500 } });
    const err = await failure(client({ maxRetries: 0 }).listVMs());
    expect(err).toMatchObject({ kind: 'server', status: 500, permanent: false, attempts: 1 });
    expect(sim.requests).toHaveLength(1);
  });

  test('a Retry-After beyond maxRetryAfterMs is not slept through: thrown at once with retryAfterMs', async () => {
    sim.inject({ path: '/vm', fault: { type: 'status', status: 429, retryAfter: 120 } });
    const started = Date.now();
    const err = await failure(client({ maxRetryAfterMs: 5_000 }).listVMs());
    expect(Date.now() - started).toBeLessThan(1_000);
    expect(err).toMatchObject({ kind: 'rate-limited', status: 429, permanent: false, retryAfterMs: 120_000 });
    expect(sim.requests).toHaveLength(1);
  });

  test('a slow answer beyond timeoutMs → timeout, transient (retried, then given up)', async () => {
    sim.inject({ path: '/vm', fault: { type: 'slow', delayMs: 1_000 } });
    const started = Date.now();
    const err = await failure(client({ timeoutMs: 150, maxRetries: 1 }).listVMs());
    expect(Date.now() - started).toBeLessThan(900);
    expect(err).toMatchObject({ kind: 'timeout', permanent: false, attempts: 2 });
    expect(err.status).toBeUndefined();
    expect(err.message).toContain('no answer within 150 ms');
    expect(sim.requests).toHaveLength(2);
  });

  test('a hung answer times out; the next attempt succeeds', async () => {
    const vm = sim.addVM();
    sim.inject({ path: '/vm/:id', times: 1, fault: { type: 'hang' } });
    expect((await client({ timeoutMs: 150 }).getVM(vm.id))?.id).toBe(vm.id);
    expect(sim.requests.map((r) => r.fault ?? r.status)).toEqual(['hang', 200]);
  });

  test('a reset connection is a network error, retried', async () => {
    sim.inject({ path: '/vm', times: 2, fault: { type: 'reset' } });
    expect(await client().listVMs()).toEqual([]);
    expect(sim.requests).toHaveLength(3);

    sim.clearRequests();
    sim.inject({ path: '/datacenters', fault: { type: 'reset' } });
    const err = await failure(client({ maxRetries: 1 }).listDatacenters());
    expect(err).toMatchObject({ kind: 'network', permanent: false, attempts: 2 });
    expect(sim.requests).toHaveLength(2);
  });

  test('connection refused is a transient network error', async () => {
    const c = client({ maxRetries: 1 });
    await sim.stop();
    const err = await failure(c.listVMs());
    expect(err).toMatchObject({ kind: 'network', permanent: false, code: 'ECONNREFUSED' });
  });

  test('an abort signal stops a hung call and the backoff at once, with its reason', async () => {
    sim.inject({ path: '/vm', fault: { type: 'hang' } });
    const controller = new AbortController();
    const reason = new Error('activity cancelled');
    setTimeout(() => controller.abort(reason), 100);
    const started = Date.now();
    await expect(client({ timeoutMs: 5_000 }).listVMs({ signal: controller.signal })).rejects.toBe(reason);
    expect(Date.now() - started).toBeLessThan(1_000);
  });
});

describe('secrets', () => {
  const cases: Array<[string, (s: VPSieSimulator) => void, Partial<VPSieClientOptions>]> = [
    ['401', () => undefined, { token: `${TOKEN}-expired` }],
    [
      '403 whose body echoes the token',
      (s) =>
        s.inject({
          path: '/vm',
          fault: {
            type: 'status',
            status: 403,
            body: { error: `token ${TOKEN}`, message: `no: ${TOKEN}`, code: 403 },
          },
        }),
      {},
    ],
    [
      '503 exhausted',
      (s) => s.inject({ path: '/vm', fault: { type: 'status', status: 503 } }),
      { maxRetries: 1 },
    ],
    [
      'non-JSON error body echoing the token',
      (s) =>
        s.inject({
          path: '/vm',
          fault: { type: 'invalid-json', status: 502, body: `<h1>Bearer ${TOKEN}</h1>` },
        }),
      { maxRetries: 0 },
    ],
    [
      'malformed 200 echoing the token',
      (s) => s.inject({ path: '/vm', fault: { type: 'invalid-json', body: `oops ${TOKEN}` } }),
      {},
    ],
    ['timeout', (s) => s.inject({ path: '/vm', fault: { type: 'hang' } }), { timeoutMs: 100, maxRetries: 0 }],
    ['network', (s) => s.inject({ path: '/vm', fault: { type: 'reset' } }), { maxRetries: 0 }],
  ];

  test.each(cases)('the token never appears in the error: %s', async (_name, arrange, options) => {
    arrange(sim);
    const token = typeof options.token === 'string' ? options.token : TOKEN;
    const err = await failure(client(options).listVMs());
    expectNoToken(err, token);
    expectNoToken(err, TOKEN);
  });

  test('retry notifications carry no token', async () => {
    sim.inject({ path: '/vm', times: 2, fault: { type: 'status', status: 500 } });
    const seen: unknown[] = [];
    await client({ onRetry: (i) => seen.push(i) }).listVMs();
    expect(seen).toHaveLength(2);
    expect(util.inspect(seen, { depth: 10 })).not.toContain(TOKEN);
  });

  test('inspecting or serialising the client itself does not show the token', async () => {
    const c = client();
    await c.listVMs();
    expect(util.inspect(c, { depth: 10, showHidden: true })).not.toContain(TOKEN);
    expect(JSON.stringify(c)).not.toContain(TOKEN);
  });
});

describe('token provider', () => {
  test('is called for every request, so a rotated token is used without a restart', async () => {
    sim.addVM();
    const issued: string[] = [];
    let current = 'rotating-token-aaaaaaaa';
    const provider = jest.fn(async () => {
      issued.push(current);
      return current;
    });
    sim.setToken(current);
    const c = client({ token: provider, pageSize: 1 });

    sim.addVM();
    await c.listVMs(); // 2 pages
    expect(provider).toHaveBeenCalledTimes(2);

    current = 'rotating-token-bbbbbbbb';
    sim.setToken(current);
    await c.listVMs();
    expect(provider).toHaveBeenCalledTimes(4);
    expect(issued).toEqual([
      'rotating-token-aaaaaaaa',
      'rotating-token-aaaaaaaa',
      'rotating-token-bbbbbbbb',
      'rotating-token-bbbbbbbb',
    ]);
    expect(sim.requests.every((r) => r.auth === 'valid')).toBe(true);
  });

  test('is asked again on every retry attempt', async () => {
    sim.inject({ path: '/vm', times: 2, fault: { type: 'status', status: 500 } });
    const provider = jest.fn(async () => TOKEN);
    await client({ token: provider }).listVMs();
    expect(provider).toHaveBeenCalledTimes(3);
  });

  test('a provider that fails → transient auth error, no request sent', async () => {
    const c = client({
      token: async () => {
        throw new Error('secret kube-system/vpsie-secret not found');
      },
      maxRetries: 0,
    });
    const err = await failure(c.listVMs());
    expect(err).toMatchObject({ kind: 'auth', permanent: false });
    expect(err.message).toContain('vpsie-secret not found');
    expect(sim.requests).toHaveLength(0);
  });

  test('a provider that answers an empty token → permanent auth error', async () => {
    const err = await failure(client({ token: async () => '' }).listVMs());
    expect(err).toMatchObject({ kind: 'auth', permanent: true });
    expect(sim.requests).toHaveLength(0);
  });
});

describe('constructor options', () => {
  const ok: VPSieClientOptions = { token: TOKEN };
  test.each<[string, Partial<VPSieClientOptions> | Record<string, unknown>, RegExp]>([
    ['baseUrl not a URL', { baseUrl: 'not a url' }, /"baseUrl".*not a valid URL/],
    ['baseUrl empty', { baseUrl: '' }, /"baseUrl"/],
    ['baseUrl ftp', { baseUrl: 'ftp://api.vpsie.com/v2' }, /"baseUrl".*http or https/],
    ['baseUrl with credentials', { baseUrl: 'https://u:p@api.vpsie.com/v2' }, /"baseUrl".*credentials/],
    ['baseUrl with query', { baseUrl: 'https://api.vpsie.com/v2?x=1' }, /"baseUrl".*query/],
    ['empty token', { token: '' }, /"token"/],
    ['blank token', { token: '   ' }, /"token"/],
    ['token with newline', { token: 'abc\ndef' }, /"token".*whitespace/],
    ['token not string', { token: 42 }, /"token"/],
    ['timeoutMs 0', { timeoutMs: 0 }, /"timeoutMs"/],
    ['timeoutMs NaN', { timeoutMs: Number.NaN }, /"timeoutMs"/],
    ['maxRetries negative', { maxRetries: -1 }, /"maxRetries"/],
    ['maxRetries fractional', { maxRetries: 1.5 }, /"maxRetries"/],
    ['pageSize 0', { pageSize: 0 }, /"pageSize"/],
    ['userAgent multi-line', { userAgent: 'a\r\nX-Evil: 1' }, /"userAgent"/],
  ])('%s', (_name, bad, message) => {
    expect(() => new VPSieClient({ ...ok, ...(bad as Partial<VPSieClientOptions>) })).toThrow(message);
  });

  test('the token value is not echoed by option errors', () => {
    const secret = 'secret with space';
    expect(() => new VPSieClient({ token: secret })).toThrow(/"token"/);
    try {
      new VPSieClient({ token: secret });
    } catch (err) {
      expect(String(err)).not.toContain(secret);
    }
  });

  test('defaults: the public API base URL; trailing slashes trimmed', () => {
    expect(new VPSieClient({ token: TOKEN }).baseUrl).toBe('https://api.vpsie.com/v2');
    expect(new VPSieClient({ token: TOKEN, baseUrl: 'https://api.vpsie.com/apps/v2/' }).baseUrl).toBe(
      'https://api.vpsie.com/apps/v2',
    );
  });

  test('bad ids are caller bugs: RangeError before any request', async () => {
    const c = client();
    await expect(c.getVM(0)).rejects.toThrow(RangeError);
    await expect(c.deleteVM(-3)).rejects.toThrow(RangeError);
    await expect(c.vmAction(1, 'reboot' as never)).rejects.toThrow(RangeError);
    expect(sim.requests).toHaveLength(0);
  });
});

describe('parseRetryAfter', () => {
  test('seconds and HTTP dates', () => {
    const now = Date.parse('2025-01-01T00:00:00Z');
    expect(parseRetryAfter('3', now)).toBe(3_000);
    expect(parseRetryAfter('0', now)).toBe(0);
    expect(parseRetryAfter('Wed, 01 Jan 2025 00:00:10 GMT', now)).toBe(10_000);
    expect(parseRetryAfter('Tue, 31 Dec 2024 23:59:00 GMT', now)).toBe(0);
    expect(parseRetryAfter('soon', now)).toBeUndefined();
    expect(parseRetryAfter(undefined, now)).toBeUndefined();
  });

  test('an HTTP-date Retry-After from the simulator is honoured', async () => {
    sim.inject({
      path: '/vm',
      times: 1,
      fault: { type: 'status', status: 503, retryAfter: new Date(Date.now() - 1_000).toUTCString() },
    });
    const delays: number[] = [];
    await client({ onRetry: (i) => delays.push(i.delayMs) }).listVMs();
    expect(delays).toEqual([0]);
    expect(sim.requests.map((r) => r.status)).toEqual([503, 200]);
  });
});

describe('simulator', () => {
  test('stop() closes hung sockets promptly', async () => {
    sim.inject({ path: '/vm', fault: { type: 'hang' } });
    const port = new URL(baseUrl).port;
    const outcome = new Promise<string>((resolve) => {
      const req = http.get({
        host: '127.0.0.1',
        port,
        path: '/v2/vm',
        headers: { Authorization: `Bearer ${TOKEN}` },
      });
      req.on('response', () => resolve('answered'));
      req.on('error', (e: NodeJS.ErrnoException) => resolve(e.code ?? e.message));
    });
    await new Promise((r) => setTimeout(r, 50));
    const started = Date.now();
    await sim.stop();
    expect(await outcome).toBe('ECONNRESET');
    expect(Date.now() - started).toBeLessThan(500);
  });

  test('fault handles count hits and can be removed; requests without auth are recorded as missing', async () => {
    const handle = sim.inject({
      method: 'GET',
      path: '/vm*',
      times: 2,
      fault: { type: 'status', status: 500 },
    });
    const res1 = await fetch(`${baseUrl}/vm/1`);
    expect(res1.status).toBe(500);
    expect(handle).toMatchObject({ hits: 1, remaining: 1 });
    handle.remove();
    const res2 = await fetch(`${baseUrl}/vm`);
    expect(res2.status).toBe(401);
    expect(await res2.json()).toEqual({
      error: 'Unauthorized',
      message: 'Authorization header is missing',
      code: 401,
    });
    expect(sim.requests.map((r) => r.auth)).toEqual(['missing', 'missing']);
  });

  test('per_page default 25, max 100; out-of-range answers 400', async () => {
    for (let i = 0; i < 30; i++) sim.addVM();
    const headers = { Authorization: `Bearer ${TOKEN}` };
    const first = (await (await fetch(`${baseUrl}/vm`, { headers })).json()) as {
      data: unknown[];
      pagination: Record<string, number>;
    };
    expect(first.data).toHaveLength(25);
    expect(first.pagination).toEqual({ total: 30, count: 25, per_page: 25, current_page: 1, total_pages: 2 });
    expect((await fetch(`${baseUrl}/vm?per_page=101`, { headers })).status).toBe(400);
    expect((await fetch(`${baseUrl}/vm?page=0`, { headers })).status).toBe(400);
  });
});
