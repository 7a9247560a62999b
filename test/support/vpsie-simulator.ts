/**
 * VPSie API simulator for tests: plain node:http on 127.0.0.1 (random port), base path `/v2`.
 *
 * It plays the API of domain.md §3, independently of the project's client (its own wire types, so a wrong
 * field name in the client is caught rather than mirrored):
 *
 *   GET    /vm                  list, paginated: {error:false, data:[...], pagination:{total, count, per_page,
 *                                current_page, total_pages}}; query `page` (default 1), `per_page` (default 25,
 *                                1..100; anything else answers 400)
 *   GET    /vm/:id              {error:false, data: vm}                      unknown id → 404
 *   DELETE /vm/:id              removes it, fires onDelete; {error:false, message}   unknown id → 404
 *   POST   /vm/:id/action       body {action: start|stop|restart}; {error:false, message, data: vm}
 *                                unknown id → 404, bad action → 400, start/restart of a suspended VM → 409
 *   GET    /offerings           paginated like /vm;   GET /offerings/:id → 404 when unknown
 *   GET    /datacenters         paginated
 *   GET    /images              paginated
 *   GET    /sshkeys             paginated;            GET /sshkey/:identifier (identifier or numeric id)
 *   GET    /account/quota       {error:false, data:{vms:{used,limit}, cpu:{used,limit}, ramMB:{used,limit}}};
 *                                `used` is computed from the VMs present (the real endpoint is unconfirmed)
 *
 * Errors are `{error: <status text>, message, code: <status>}`. Auth: `Authorization: Bearer <token>` with one
 * of the accepted tokens ({@link VPSieSimulator.setToken}); otherwise 401.
 *
 * Fault injection ({@link VPSieSimulator.inject}) is matched by method and path pattern, before auth and
 * routing (it models the load balancer / API front as much as the API), for the next N matching requests or
 * always. Every request is recorded in {@link VPSieSimulator.requests} (never the token itself: only whether
 * auth was valid, invalid or missing).
 */
import { randomUUID } from 'node:crypto';
import http from 'node:http';
import { performance } from 'node:perf_hooks';
import { closeNow, listenOnLoopback } from './loopback-server';

// ---------------------------------------------------------------------------------------------------------
// Wire records
// ---------------------------------------------------------------------------------------------------------

export interface SimVM {
  id: number;
  identifier: string;
  name: string;
  hostname: string;
  status: string;
  cpu: number;
  ram: number;
  ssd: number;
  traffic: number;
  default_ip: string | null;
  default_ipv6: string | null;
  boxsize_id: number;
  datacenter_id: number;
  os_name: string;
  os_version: string;
  created_on: string;
  last_updated: string;
  tags: string[];
  notes: string;
}

export interface SimOffering {
  id: number;
  name: string;
  cpu: number;
  ram: number;
  disk: number;
  bandwidth: number;
  price: number;
  hourly_price: number;
  available: boolean;
  datacenter_id: number;
  category: string;
}

export interface SimDatacenter {
  id: number;
  name: string;
  code: string;
  country: string;
  city: string;
  available: boolean;
}

export interface SimImage {
  id: number;
  name: string;
  version: string;
  distribution: string;
  architecture: string;
  available: boolean;
}

export interface SimSSHKey {
  id: number;
  identifier: string;
  name: string;
  private_key: string;
  created_on: string;
  created_by: string;
}

export interface SimQuotaLimits {
  vms: number;
  cpu: number;
  ramMB: number;
}

// ---------------------------------------------------------------------------------------------------------
// Faults and recorded requests
// ---------------------------------------------------------------------------------------------------------

export type Fault =
  /** Answer this status with the API's error body (or `body`), optionally with `Retry-After`. */
  | { type: 'status'; status: number; retryAfter?: number | string; body?: unknown; delayMs?: number }
  /** Answer normally, after `delayMs`. */
  | { type: 'slow'; delayMs: number }
  /** Never answer; the socket stays open until the client gives up or stop() is called. */
  | { type: 'hang' }
  /** Answer `status` (default 200) with a body that is not JSON. */
  | { type: 'invalid-json'; status?: number; body?: string; delayMs?: number }
  /** Answer `status` (default 200) with this JSON body (e.g. a wrong shape). */
  | { type: 'json'; body: unknown; status?: number; delayMs?: number }
  /** Destroy the connection without answering (the client sees ECONNRESET / socket hang up). */
  | { type: 'reset'; delayMs?: number };

export interface FaultRule {
  /** HTTP method to match; any when omitted. */
  method?: string;
  /**
   * Path relative to `/v2`, without the query: an exact string with `:param` segments and an optional
   * trailing `*` (e.g. `/vm`, `/vm/:id`, `/vm/:id/action`, `/vm*`), or a RegExp tested against the path.
   */
  path: string | RegExp;
  /** How many matching requests get the fault; always when omitted. */
  times?: number;
  fault: Fault;
}

export interface FaultHandle {
  /** How many requests this rule has answered so far. */
  readonly hits: number;
  /** How many more it will answer (Infinity for "always"). */
  readonly remaining: number;
  remove(): void;
}

export type AuthOutcome = 'valid' | 'invalid' | 'missing';

export interface RecordedRequest {
  seq: number;
  method: string;
  /** Path relative to the base path `/v2`, without the query (e.g. `/vm/42`). */
  path: string;
  query: Record<string, string>;
  auth: AuthOutcome;
  /** Parsed JSON body for requests that carry one. */
  body?: unknown;
  userAgent?: string;
  /** Arrival time, ms since the epoch with sub-ms precision. */
  at: number;
  /** When the answer was sent (undefined while pending, for hung or reset requests). */
  answeredAt?: number;
  /** Status answered (undefined while pending, for hung or reset requests). */
  status?: number;
  /** The injected fault's type, when one answered this request. */
  fault?: Fault['type'];
}

export interface VPSieSimulatorOptions {
  /** Accepted bearer token(s). Default: a fixed test token, see {@link VPSieSimulator.DEFAULT_TOKEN}. */
  token?: string | string[];
  /** Seed a small realistic catalog (2 datacenters, 3 offerings, 2 images, 1 SSH key). Default true. */
  seedDefaults?: boolean;
  /** Default `per_page` of list endpoints. Default 25. */
  defaultPerPage?: number;
  /** Largest `per_page` accepted. Default 100. */
  maxPerPage?: number;
  quota?: Partial<SimQuotaLimits>;
}

export type DeleteListener = (vm: SimVM) => void;
export type ActionListener = (vm: SimVM, action: string) => void;

const STATUS_TEXT: Record<number, string> = {
  400: 'Bad Request',
  401: 'Unauthorized',
  403: 'Forbidden',
  404: 'Not Found',
  405: 'Method Not Allowed',
  409: 'Conflict',
  422: 'Unprocessable Entity',
  429: 'Too Many Requests',
  500: 'Internal Server Error',
  502: 'Bad Gateway',
  503: 'Service Unavailable',
  504: 'Gateway Timeout',
};

const DEFAULT_MESSAGES: Record<number, string> = {
  401: 'Invalid or expired token',
  403: 'You do not have permission to perform this action',
  404: 'Resource not found',
  429: 'Too many requests, slow down',
  500: 'Internal server error',
  502: 'Bad gateway',
  503: 'Service temporarily unavailable',
  504: 'Gateway timeout',
};

interface ActiveRule {
  rule: FaultRule;
  match: (method: string, path: string) => boolean;
  remaining: number;
  hits: number;
}

function now(): number {
  return performance.timeOrigin + performance.now();
}

function timestamp(): string {
  return new Date().toISOString();
}

function compilePath(pattern: string | RegExp): (path: string) => boolean {
  if (pattern instanceof RegExp) return (p) => pattern.test(p);
  const prefix = pattern.endsWith('*');
  const body = prefix ? pattern.slice(0, -1) : pattern;
  const source = body
    .split('/')
    .map((seg) => (seg.startsWith(':') ? '[^/]+' : seg.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')))
    .join('/');
  const re = new RegExp(`^${source}${prefix ? '' : '$'}`);
  return (p) => re.test(p);
}

export class VPSieSimulator {
  static readonly DEFAULT_TOKEN = 'sim-token-4f1c9a7e2b6d4e0f8a3b5c7d9e1f2a4b';
  static readonly BASE_PATH = '/v2';

  /** Every request received, in order of arrival. */
  readonly requests: RecordedRequest[] = [];

  private tokens: Set<string>;
  private readonly vms = new Map<number, SimVM>();
  private readonly offerings = new Map<number, SimOffering>();
  private readonly datacenters = new Map<number, SimDatacenter>();
  private readonly images = new Map<number, SimImage>();
  private readonly sshKeys = new Map<number, SimSSHKey>();
  private quotaLimits: SimQuotaLimits;
  private readonly defaultPerPage: number;
  private readonly maxPerPage: number;

  private rules: ActiveRule[] = [];
  private readonly deleteListeners = new Set<DeleteListener>();
  private readonly actionListeners = new Set<ActionListener>();
  /** Errors thrown by listeners (they never break the answer). */
  readonly listenerErrors: unknown[] = [];

  private server?: http.Server;
  private url?: string;
  private readonly timers = new Set<NodeJS.Timeout>();
  private seq = 0;
  private nextIds = { vm: 1001, offering: 101, datacenter: 1, image: 201, sshKey: 301 };
  private ipCounter = 10;

  constructor(options: VPSieSimulatorOptions = {}) {
    const token = options.token ?? VPSieSimulator.DEFAULT_TOKEN;
    this.tokens = new Set(Array.isArray(token) ? token : [token]);
    this.defaultPerPage = options.defaultPerPage ?? 25;
    this.maxPerPage = options.maxPerPage ?? 100;
    this.quotaLimits = { vms: 50, cpu: 200, ramMB: 409_600, ...options.quota };
    if (options.seedDefaults ?? true) this.seedDefaults();
  }

  // ------------------------------------------------------------------------------------------------------
  // Lifecycle
  // ------------------------------------------------------------------------------------------------------

  /** Starts listening on 127.0.0.1 (random port); answers the base URL, e.g. `http://127.0.0.1:41234/v2`. */
  async start(): Promise<string> {
    if (this.url) return this.url;
    const server = http.createServer((req, res) => this.handle(req, res));
    server.keepAliveTimeout = 5_000;
    const port = await listenOnLoopback(server);
    this.server = server;
    this.url = `http://127.0.0.1:${port}${VPSieSimulator.BASE_PATH}`;
    return this.url;
  }

  /** The base URL (after start()). */
  get baseUrl(): string {
    if (!this.url) throw new Error('VPSieSimulator: not started');
    return this.url;
  }

  /** Stops at once: pending delayed answers are dropped and every socket, hung ones included, destroyed. */
  async stop(): Promise<void> {
    const server = this.server;
    if (!server) return;
    this.server = undefined;
    this.url = undefined;
    for (const t of this.timers) clearTimeout(t);
    this.timers.clear();
    await closeNow(server);
  }

  // ------------------------------------------------------------------------------------------------------
  // Auth
  // ------------------------------------------------------------------------------------------------------

  /** Replaces the accepted token(s): e.g. to simulate a rotation or a revoked credential. */
  setToken(token: string | string[]): void {
    this.tokens = new Set(Array.isArray(token) ? token : [token]);
  }

  // ------------------------------------------------------------------------------------------------------
  // State: seeding and inspection (answers are copies; mutate through the methods)
  // ------------------------------------------------------------------------------------------------------

  addVM(partial: Partial<SimVM> = {}): SimVM {
    const id = partial.id ?? this.nextIds.vm++;
    if (this.vms.has(id)) throw new Error(`VPSieSimulator.addVM: VM ${id} exists`);
    if (id >= this.nextIds.vm) this.nextIds.vm = id + 1;
    const offering = this.offerings.get(partial.boxsize_id ?? -1) ?? [...this.offerings.values()][0];
    const created = timestamp();
    const name = partial.name ?? `vm-${id}`;
    const ip = this.ipCounter++;
    const vm: SimVM = {
      id,
      identifier: randomUUID(),
      name,
      hostname: partial.hostname ?? name,
      status: 'running',
      cpu: offering?.cpu ?? 2,
      ram: offering?.ram ?? 4096,
      ssd: offering?.disk ?? 80,
      traffic: offering?.bandwidth ?? 4000,
      default_ip: `203.0.113.${ip % 250}`,
      default_ipv6: `2001:db8::${ip.toString(16)}`,
      boxsize_id: offering?.id ?? 101,
      datacenter_id: offering?.datacenter_id ?? [...this.datacenters.keys()][0] ?? 1,
      os_name: 'Ubuntu',
      os_version: '22.04',
      created_on: created,
      last_updated: created,
      tags: [],
      notes: '',
      ...partial,
    };
    vm.id = id;
    this.vms.set(id, vm);
    return structuredClone(vm);
  }

  /** A copy of the VM, or undefined. */
  getVM(id: number): SimVM | undefined {
    const vm = this.vms.get(id);
    return vm && structuredClone(vm);
  }

  listVMs(): SimVM[] {
    return [...this.vms.values()].sort((a, b) => a.id - b.id).map((v) => structuredClone(v));
  }

  hasVM(id: number): boolean {
    return this.vms.has(id);
  }

  setVMStatus(id: number, status: string): SimVM {
    return this.updateVM(id, { status });
  }

  updateVM(id: number, patch: Partial<Omit<SimVM, 'id'>>): SimVM {
    const vm = this.vms.get(id);
    if (!vm) throw new Error(`VPSieSimulator: no VM ${id}`);
    Object.assign(vm, patch, { id, last_updated: timestamp() });
    return structuredClone(vm);
  }

  /** Removes a VM out of band (no onDelete): e.g. it vanished or someone deleted it in the console. */
  removeVM(id: number): boolean {
    return this.vms.delete(id);
  }

  addOffering(partial: Partial<SimOffering> = {}): SimOffering {
    const id = partial.id ?? this.nextIds.offering++;
    if (id >= this.nextIds.offering) this.nextIds.offering = id + 1;
    const cpu = partial.cpu ?? 2;
    const ram = partial.ram ?? 4096;
    const offering: SimOffering = {
      id,
      name: `${cpu} vCPU / ${ram / 1024} GB`,
      cpu,
      ram,
      disk: 80,
      bandwidth: 4000,
      price: 24,
      hourly_price: 0.033,
      available: true,
      datacenter_id: [...this.datacenters.keys()][0] ?? 1,
      category: 'standard',
      ...partial,
    };
    offering.id = id;
    this.offerings.set(id, offering);
    return structuredClone(offering);
  }

  removeOffering(id: number): boolean {
    return this.offerings.delete(id);
  }

  addDatacenter(partial: Partial<SimDatacenter> = {}): SimDatacenter {
    const id = partial.id ?? this.nextIds.datacenter++;
    if (id >= this.nextIds.datacenter) this.nextIds.datacenter = id + 1;
    const dc: SimDatacenter = {
      id,
      name: `Datacenter ${id}`,
      code: `dc${id}`,
      country: 'United States',
      city: 'New York',
      available: true,
      ...partial,
    };
    dc.id = id;
    this.datacenters.set(id, dc);
    return structuredClone(dc);
  }

  addImage(partial: Partial<SimImage> = {}): SimImage {
    const id = partial.id ?? this.nextIds.image++;
    if (id >= this.nextIds.image) this.nextIds.image = id + 1;
    const image: SimImage = {
      id,
      name: 'Ubuntu 22.04',
      version: '22.04',
      distribution: 'ubuntu',
      architecture: 'x86_64',
      available: true,
      ...partial,
    };
    image.id = id;
    this.images.set(id, image);
    return structuredClone(image);
  }

  addSSHKey(partial: Partial<SimSSHKey> = {}): SimSSHKey {
    const id = partial.id ?? this.nextIds.sshKey++;
    if (id >= this.nextIds.sshKey) this.nextIds.sshKey = id + 1;
    const key: SimSSHKey = {
      id,
      identifier: randomUUID(),
      name: `key-${id}`,
      private_key: `ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAI${String(id).padStart(8, '0')} ops@example`,
      created_on: timestamp(),
      created_by: 'ops@example.com',
      ...partial,
    };
    key.id = id;
    this.sshKeys.set(id, key);
    return structuredClone(key);
  }

  removeSSHKey(idOrIdentifier: number | string): boolean {
    const key = this.findSSHKey(String(idOrIdentifier));
    return key ? this.sshKeys.delete(key.id) : false;
  }

  offeringsList(): SimOffering[] {
    return [...this.offerings.values()].map((o) => structuredClone(o));
  }

  datacentersList(): SimDatacenter[] {
    return [...this.datacenters.values()].map((d) => structuredClone(d));
  }

  imagesList(): SimImage[] {
    return [...this.images.values()].map((i) => structuredClone(i));
  }

  sshKeysList(): SimSSHKey[] {
    return [...this.sshKeys.values()].map((k) => structuredClone(k));
  }

  setQuotaLimits(limits: Partial<SimQuotaLimits>): void {
    this.quotaLimits = { ...this.quotaLimits, ...limits };
  }

  /** Quota as the endpoint answers it: `used` computed from the VMs present. */
  quota(): {
    vms: { used: number; limit: number };
    cpu: { used: number; limit: number };
    ramMB: { used: number; limit: number };
  } {
    const vms = [...this.vms.values()];
    return {
      vms: { used: vms.length, limit: this.quotaLimits.vms },
      cpu: { used: vms.reduce((n, v) => n + v.cpu, 0), limit: this.quotaLimits.cpu },
      ramMB: { used: vms.reduce((n, v) => n + v.ram, 0), limit: this.quotaLimits.ramMB },
    };
  }

  // ------------------------------------------------------------------------------------------------------
  // Hooks
  // ------------------------------------------------------------------------------------------------------

  /** Called synchronously after `DELETE /vm/:id` removed a VM, before the answer is sent. Answers an unsubscribe. */
  onDelete(listener: DeleteListener): () => void {
    this.deleteListeners.add(listener);
    return () => this.deleteListeners.delete(listener);
  }

  /** Called synchronously after `POST /vm/:id/action` changed a VM. Answers an unsubscribe. */
  onAction(listener: ActionListener): () => void {
    this.actionListeners.add(listener);
    return () => this.actionListeners.delete(listener);
  }

  // ------------------------------------------------------------------------------------------------------
  // Fault injection and request log
  // ------------------------------------------------------------------------------------------------------

  /** Adds a fault rule; rules are tried in the order added, the first match answers. */
  inject(rule: FaultRule): FaultHandle {
    if (rule.times !== undefined && (!Number.isInteger(rule.times) || rule.times < 1)) {
      throw new Error('VPSieSimulator.inject: times must be a positive integer');
    }
    const pathMatch = compilePath(rule.path);
    const method = rule.method?.toUpperCase();
    const active: ActiveRule = {
      rule,
      match: (m, p) => (method === undefined || method === m) && pathMatch(p),
      remaining: rule.times ?? Infinity,
      hits: 0,
    };
    this.rules.push(active);
    return {
      get hits() {
        return active.hits;
      },
      get remaining() {
        return active.remaining;
      },
      remove: () => {
        this.rules = this.rules.filter((r) => r !== active);
      },
    };
  }

  clearFaults(): void {
    this.rules = [];
  }

  clearRequests(): void {
    this.requests.length = 0;
  }

  /** Recorded requests matching method and/or path pattern (same syntax as fault rules). */
  requestsTo(method?: string, path?: string | RegExp): RecordedRequest[] {
    const m = method?.toUpperCase();
    const p = path === undefined ? undefined : compilePath(path);
    return this.requests.filter((r) => (m === undefined || r.method === m) && (p === undefined || p(r.path)));
  }

  // ------------------------------------------------------------------------------------------------------
  // HTTP handling
  // ------------------------------------------------------------------------------------------------------

  private handle(req: http.IncomingMessage, res: http.ServerResponse): void {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size <= 1_000_000) chunks.push(c);
    });
    req.on('end', () => {
      try {
        this.dispatch(req, res, size > 1_000_000 ? null : Buffer.concat(chunks).toString('utf8'));
      } catch (err) {
        this.send(res, undefined, 500, { error: 'Internal Server Error', message: String(err), code: 500 });
      }
    });
    req.on('error', () => undefined);
  }

  private dispatch(req: http.IncomingMessage, res: http.ServerResponse, rawBody: string | null): void {
    const url = new URL(req.url ?? '/', 'http://sim.invalid');
    const method = (req.method ?? 'GET').toUpperCase();
    const base = VPSieSimulator.BASE_PATH;
    const path = url.pathname.startsWith(`${base}/`) ? url.pathname.slice(base.length) : url.pathname;
    const header = req.headers.authorization;
    let auth: AuthOutcome = 'missing';
    if (typeof header === 'string' && header !== '') {
      const m = /^Bearer (.+)$/.exec(header);
      auth = m && this.tokens.has(m[1]) ? 'valid' : 'invalid';
    }
    let body: unknown;
    let bodyInvalid = false;
    if (rawBody !== null && rawBody !== '') {
      try {
        body = JSON.parse(rawBody);
      } catch {
        bodyInvalid = true;
        body = rawBody.slice(0, 200);
      }
    }
    const record: RecordedRequest = {
      seq: ++this.seq,
      method,
      path,
      query: Object.fromEntries(url.searchParams),
      auth,
      at: now(),
      ...(body !== undefined ? { body } : {}),
      ...(typeof req.headers['user-agent'] === 'string' ? { userAgent: req.headers['user-agent'] } : {}),
    };
    this.requests.push(record);

    // 1. Injected faults.
    const active = this.rules.find((r) => r.remaining > 0 && r.match(method, path));
    if (active) {
      active.remaining -= 1;
      active.hits += 1;
      record.fault = active.rule.fault.type;
      this.applyFault(active.rule.fault, req, res, record);
      return;
    }

    // 2. Outside the API's base path.
    if (!url.pathname.startsWith(`${base}/`)) {
      this.sendError(res, record, 404, `No API at ${url.pathname}`);
      return;
    }

    // 3. Auth.
    if (auth !== 'valid') {
      this.sendError(res, record, 401, auth === 'missing' ? 'Authorization header is missing' : undefined);
      return;
    }
    if (bodyInvalid) {
      this.sendError(res, record, 400, 'Request body is not valid JSON');
      return;
    }

    // 4. Routes.
    const answer = this.route(method, path, url.searchParams, body);
    this.send(res, record, answer.status, answer.body);
  }

  private route(
    method: string,
    path: string,
    query: URLSearchParams,
    body: unknown,
  ): { status: number; body: unknown } {
    const segs = path.split('/').filter(Boolean);
    const err = (status: number, message?: string) => ({ status, body: errorBody(status, message) });
    const ok = (data: unknown, extra: Record<string, unknown> = {}) => ({
      status: 200,
      body: { error: false, ...extra, data },
    });
    const only = (allowed: string, handler: () => { status: number; body: unknown }) =>
      method === allowed ? handler() : err(405, `${method} is not allowed on ${path}`);
    const list = <T>(items: T[]) => this.paginate(items, query);
    const intId = (s: string): number | undefined => (/^\d+$/.test(s) ? Number(s) : undefined);

    if (segs[0] === 'vm' && segs.length === 1) {
      return only('GET', () => list([...this.vms.values()].sort((a, b) => a.id - b.id)));
    }
    if (segs[0] === 'vm' && segs.length === 2) {
      const id = intId(segs[1]);
      const vm = id === undefined ? undefined : this.vms.get(id);
      if (method === 'GET') return vm ? ok(vm) : err(404, `VM ${segs[1]} not found`);
      if (method === 'DELETE') {
        if (!vm) return err(404, `VM ${segs[1]} not found`);
        this.vms.delete(vm.id);
        for (const l of this.deleteListeners) this.safely(() => l(structuredClone(vm)));
        return { status: 200, body: { error: false, message: `VM ${vm.id} is being deleted` } };
      }
      return err(405, `${method} is not allowed on ${path}`);
    }
    if (segs[0] === 'vm' && segs.length === 3 && segs[2] === 'action') {
      return only('POST', () => {
        const id = intId(segs[1]);
        const vm = id === undefined ? undefined : this.vms.get(id);
        if (!vm) return err(404, `VM ${segs[1]} not found`);
        const action = isRecord(body) ? body.action : undefined;
        if (action !== 'start' && action !== 'stop' && action !== 'restart') {
          return err(400, 'action must be one of start, stop, restart');
        }
        if (vm.status === 'suspended' && action !== 'stop') return err(409, `VM ${vm.id} is suspended`);
        vm.status = action === 'stop' ? 'stopped' : 'running';
        vm.last_updated = timestamp();
        for (const l of this.actionListeners) this.safely(() => l(structuredClone(vm), action));
        return ok(vm, { message: `Action ${action} accepted for VM ${vm.id}` });
      });
    }
    if (segs[0] === 'offerings' && segs.length === 1) {
      return only('GET', () => list([...this.offerings.values()]));
    }
    if (segs[0] === 'offerings' && segs.length === 2) {
      return only('GET', () => {
        const id = intId(segs[1]);
        const o = id === undefined ? undefined : this.offerings.get(id);
        return o ? ok(o) : err(404, `Offering ${segs[1]} not found`);
      });
    }
    if (segs[0] === 'datacenters' && segs.length === 1) {
      return only('GET', () => list([...this.datacenters.values()]));
    }
    if (segs[0] === 'images' && segs.length === 1) {
      return only('GET', () => list([...this.images.values()]));
    }
    if (segs[0] === 'sshkeys' && segs.length === 1) {
      return only('GET', () => list([...this.sshKeys.values()]));
    }
    if (segs[0] === 'sshkey' && segs.length === 2) {
      return only('GET', () => {
        const key = this.findSSHKey(decodeURIComponent(segs[1]));
        return key ? ok(key) : err(404, `SSH key ${segs[1]} not found`);
      });
    }
    if (segs[0] === 'account' && segs[1] === 'quota' && segs.length === 2) {
      return only('GET', () => ok(this.quota()));
    }
    return err(404, `No route for ${method} ${path}`);
  }

  private paginate<T>(items: T[], query: URLSearchParams): { status: number; body: unknown } {
    const parse = (name: string, fallback: number, max: number): number | string => {
      const raw = query.get(name);
      if (raw === null) return fallback;
      if (!/^\d+$/.test(raw) || Number(raw) < 1 || Number(raw) > max) {
        return `${name} must be an integer between 1 and ${max}`;
      }
      return Number(raw);
    };
    const page = parse('page', 1, Number.MAX_SAFE_INTEGER);
    const perPage = parse('per_page', this.defaultPerPage, this.maxPerPage);
    if (typeof page === 'string') return { status: 400, body: errorBody(400, page) };
    if (typeof perPage === 'string') return { status: 400, body: errorBody(400, perPage) };
    const slice = items.slice((page - 1) * perPage, page * perPage);
    return {
      status: 200,
      body: {
        error: false,
        data: slice,
        pagination: {
          total: items.length,
          count: slice.length,
          per_page: perPage,
          current_page: page,
          total_pages: Math.max(1, Math.ceil(items.length / perPage)),
        },
      },
    };
  }

  private findSSHKey(idOrIdentifier: string): SimSSHKey | undefined {
    for (const key of this.sshKeys.values()) {
      if (key.identifier === idOrIdentifier || String(key.id) === idOrIdentifier) return key;
    }
    return undefined;
  }

  private applyFault(
    fault: Fault,
    req: http.IncomingMessage,
    res: http.ServerResponse,
    record: RecordedRequest,
  ): void {
    switch (fault.type) {
      case 'hang':
        return; // the socket is destroyed by the client's timeout or by stop()
      case 'reset':
        this.later(fault.delayMs, () => req.socket.destroy());
        return;
      case 'slow':
        this.later(fault.delayMs, () => {
          // After the delay, answer as the API would (auth and routes included).
          if (record.auth !== 'valid') {
            this.sendError(res, record, 401);
            return;
          }
          const url = new URL(req.url ?? '/', 'http://sim.invalid');
          const answer = this.route(record.method, record.path, url.searchParams, record.body);
          this.send(res, record, answer.status, answer.body);
        });
        return;
      case 'status': {
        const headers: Record<string, string> = {};
        if (fault.retryAfter !== undefined) headers['Retry-After'] = String(fault.retryAfter);
        this.later(fault.delayMs, () =>
          this.send(res, record, fault.status, fault.body ?? errorBody(fault.status), headers),
        );
        return;
      }
      case 'invalid-json':
        this.later(fault.delayMs, () =>
          this.sendRaw(res, record, fault.status ?? 200, fault.body ?? '{"error":false,"data":[{"id":1,', {
            'Content-Type': 'application/json',
          }),
        );
        return;
      case 'json':
        this.later(fault.delayMs, () => this.send(res, record, fault.status ?? 200, fault.body));
        return;
    }
  }

  private later(delayMs: number | undefined, fn: () => void): void {
    if (!delayMs) {
      fn();
      return;
    }
    const t = setTimeout(() => {
      this.timers.delete(t);
      fn();
    }, delayMs);
    this.timers.add(t);
  }

  private safely(fn: () => void): void {
    try {
      fn();
    } catch (err) {
      this.listenerErrors.push(err);
    }
  }

  private sendError(
    res: http.ServerResponse,
    record: RecordedRequest,
    status: number,
    message?: string,
  ): void {
    this.send(res, record, status, errorBody(status, message));
  }

  private send(
    res: http.ServerResponse,
    record: RecordedRequest | undefined,
    status: number,
    body: unknown,
    headers: Record<string, string> = {},
  ): void {
    this.sendRaw(res, record, status, body === undefined ? '' : JSON.stringify(body), {
      'Content-Type': 'application/json',
      ...headers,
    });
  }

  private sendRaw(
    res: http.ServerResponse,
    record: RecordedRequest | undefined,
    status: number,
    text: string,
    headers: Record<string, string>,
  ): void {
    if (res.writableEnded || res.destroyed) return;
    if (record) {
      record.status = status;
      record.answeredAt = now();
    }
    res.writeHead(status, { ...headers, 'Content-Length': Buffer.byteLength(text) });
    res.end(text);
  }

  private seedDefaults(): void {
    this.addDatacenter({
      id: 1,
      name: 'New York 1',
      code: 'nyc1',
      country: 'United States',
      city: 'New York',
    });
    this.addDatacenter({ id: 2, name: 'Frankfurt 1', code: 'fra1', country: 'Germany', city: 'Frankfurt' });
    this.addOffering({
      id: 101,
      cpu: 2,
      ram: 4096,
      disk: 80,
      price: 24,
      hourly_price: 0.033,
      datacenter_id: 1,
    });
    this.addOffering({
      id: 102,
      cpu: 4,
      ram: 8192,
      disk: 160,
      price: 48,
      hourly_price: 0.066,
      datacenter_id: 1,
    });
    this.addOffering({
      id: 103,
      cpu: 8,
      ram: 16384,
      disk: 320,
      price: 96,
      hourly_price: 0.133,
      datacenter_id: 1,
    });
    this.addImage({ id: 201, name: 'Ubuntu 22.04', version: '22.04', distribution: 'ubuntu' });
    this.addImage({ id: 202, name: 'Debian 12', version: '12', distribution: 'debian' });
    this.addSSHKey({ id: 301, name: 'ops' });
  }
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** The API's error body: `{error, message, code}`. */
export function errorBody(
  status: number,
  message?: string,
): { error: string; message: string; code: number } {
  return {
    error: STATUS_TEXT[status] ?? `HTTP ${status}`,
    message: message ?? DEFAULT_MESSAGES[status] ?? STATUS_TEXT[status] ?? `HTTP ${status}`,
    code: status,
  };
}
