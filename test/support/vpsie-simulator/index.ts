/**
 * VPSie API simulator for tests: plain node:http on 127.0.0.1 (random port), base path `/v2`.
 *
 * It plays the API of domain.md §3 and §8, independently of the project's client:
 *
 *   POST   /auth/from/api       form (or JSON) clientId, clientSecret → {accessToken:{token, expires},
 *                                refreshToken:{token, expires}}; wrong ones → 401 {error:true, message, code}
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
 *   /k8s/…                      managed Kubernetes: see ./k8s.ts
 *
 * VM API errors are `{error: <status text>, message, code: <status>}`. Auth: `Authorization: Bearer <token>`
 * with a static token ({@link VPSieSimulator.setToken}) or an access token from `/auth/from/api`, until it
 * expires ({@link VPSieSimulator.expireAccessTokens}); otherwise 401. No quota endpoint: neither the autoscaler
 * nor the SDK has one; capacity shows up as errors (see {@link capacityFault}, `setK8sWorkerLimit`).
 *
 * Fault injection ({@link VPSieSimulator.inject}) is matched by method and path pattern, before auth and
 * routing (it models the load balancer / API front as much as the API), for the next N matching requests or
 * always. Every request is recorded in {@link VPSieSimulator.requests} (never a token or the client secret:
 * only whether auth was valid, invalid or missing).
 */
import { randomInt, randomUUID } from 'node:crypto';
import http from 'node:http';
import { performance } from 'node:perf_hooks';
import { closeNow, listenOnLoopback } from '../loopback-server';
import { secret } from '../secrets';
import {
  ManagedKubernetes,
  type AddSlaveMode,
  type CompleteOptions,
  type SimK8sCluster,
  type SimK8sNode,
  type SimK8sNodeGroup,
  type SlaveRequest,
} from './k8s';
import {
  apiError,
  compilePath,
  errorBody,
  isRecord,
  timestamp,
  type Answer,
  type AuthOutcome,
  type Fault,
  type FaultHandle,
  type FaultRule,
  type RecordedRequest,
  type SimDatacenter,
  type SimImage,
  type SimOffering,
  type SimSSHKey,
  type SimVM,
} from './wire';

export * from './wire';
export type {
  AddSlaveMode,
  CompleteOptions,
  SimK8sCluster,
  SimK8sNode,
  SimK8sNodeGroup,
  SlaveRequest,
} from './k8s';

export interface SimCredentials {
  clientId: string;
  clientSecret: string;
}

export interface VPSieSimulatorOptions {
  /** Accepted static bearer token(s). Default: a fixed test token, see {@link VPSieSimulator.DEFAULT_TOKEN}. */
  token?: string | string[];
  /** Client credentials accepted by `POST /auth/from/api`. Default {@link VPSieSimulator.DEFAULT_CREDENTIALS}. */
  credentials?: SimCredentials;
  /** Lifetime of an access token from `/auth/from/api`, ms. Default one hour. */
  accessTokenTtlMs?: number;
  /** Seed a small realistic catalog (2 datacenters, 3 offerings, 2 images, 1 SSH key). Default true. */
  seedDefaults?: boolean;
  /** Default `per_page` of list endpoints. Default 25. */
  defaultPerPage?: number;
  /** Largest `per_page` accepted. Default 100. */
  maxPerPage?: number;
}

export type DeleteListener = (vm: SimVM) => void;
export type ActionListener = (vm: SimVM, action: string) => void;

interface ActiveRule {
  rule: FaultRule;
  match: (method: string, path: string) => boolean;
  remaining: number;
  hits: number;
}

function now(): number {
  return performance.timeOrigin + performance.now();
}

export class VPSieSimulator {
  /** Random per process, and registered: the suite's scans look for it in every history and log. */
  static readonly DEFAULT_TOKEN = secret('vpsie-token');
  static readonly DEFAULT_CREDENTIALS: SimCredentials = {
    clientId: 'sim-client-7e21',
    clientSecret: secret('vpsie-client-secret'),
  };
  static readonly BASE_PATH = '/v2';

  /** Every request received, in order of arrival. */
  readonly requests: RecordedRequest[] = [];
  /** Errors thrown by listeners (they never break the answer). */
  readonly listenerErrors: unknown[] = [];

  private tokens: Set<string>;
  private credentials: SimCredentials;
  private readonly accessTokenTtlMs: number;
  /** Access tokens issued by `/auth/from/api`, with their expiry (ms since the epoch). */
  private readonly issued = new Map<string, number>();
  private readonly vms = new Map<number, SimVM>();
  private readonly offerings = new Map<number, SimOffering>();
  private readonly datacenters = new Map<number, SimDatacenter>();
  private readonly images = new Map<number, SimImage>();
  private readonly sshKeys = new Map<number, SimSSHKey>();
  private readonly k8s: ManagedKubernetes;
  private readonly defaultPerPage: number;
  private readonly maxPerPage: number;

  private rules: ActiveRule[] = [];
  private readonly deleteListeners = new Set<DeleteListener>();
  private readonly actionListeners = new Set<ActionListener>();

  private server?: http.Server;
  private url?: string;
  private readonly timers = new Set<NodeJS.Timeout>();
  private seq = 0;
  /**
   * VM ids start at a random thousand per simulator: test files share one apiserver, and the product's claim check
   * reads every VPSieNode in the cluster (as it must: they all name VMs of one account), so another file's
   * VPSieNode must not carry the same VM id as this simulator's VM.
   */
  private nextIds = {
    vm: 1001 + 1000 * randomInt(0, 1_000_000),
    offering: 101,
    datacenter: 1,
    image: 201,
    sshKey: 301,
  };
  private ipCounter = 10;
  private readonly ipBase = randomInt(0, 0x20000);

  constructor(options: VPSieSimulatorOptions = {}) {
    const token = options.token ?? VPSieSimulator.DEFAULT_TOKEN;
    this.tokens = new Set(Array.isArray(token) ? token : [token]);
    this.credentials = { ...(options.credentials ?? VPSieSimulator.DEFAULT_CREDENTIALS) };
    this.accessTokenTtlMs = options.accessTokenTtlMs ?? 60 * 60_000;
    this.defaultPerPage = options.defaultPerPage ?? 25;
    this.maxPerPage = options.maxPerPage ?? 100;
    this.k8s = new ManagedKubernetes({
      addVM: (p) => this.addVM(p),
      updateVM: (id, patch) => this.updateVM(id, patch),
      dropVM: (id) => void this.vms.delete(id),
      nextIp: () => this.nextIp(),
      safely: (fn) => this.safely(fn),
    });
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

  /** Replaces the accepted static token(s): e.g. to simulate a rotation or a revoked credential. */
  setToken(token: string | string[]): void {
    this.tokens = new Set(Array.isArray(token) ? token : [token]);
  }

  /** Replaces the client credentials `/auth/from/api` accepts (access tokens already issued stay valid). */
  setClientCredentials(credentials: SimCredentials): void {
    this.credentials = { ...credentials };
  }

  /** Every access token issued so far stops working now (expiry, or revoked early): requests get 401. */
  expireAccessTokens(): void {
    for (const token of this.issued.keys()) this.issued.set(token, 0);
  }

  /** How many access tokens `/auth/from/api` has issued. */
  get accessTokensIssued(): number {
    return this.issued.size;
  }

  // ------------------------------------------------------------------------------------------------------
  // VMs and catalog: seeding and inspection (answers are copies; mutate through the methods)
  // ------------------------------------------------------------------------------------------------------

  addVM(partial: Partial<SimVM> = {}): SimVM {
    const id = partial.id ?? this.nextIds.vm++;
    if (this.vms.has(id)) throw new Error(`VPSieSimulator.addVM: VM ${id} exists`);
    if (id >= this.nextIds.vm) this.nextIds.vm = id + 1;
    const offering = this.offerings.get(partial.boxsize_id ?? -1) ?? [...this.offerings.values()][0];
    const created = timestamp();
    const name = partial.name ?? `vm-${id}`;
    const n = this.ipCounter;
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
      default_ip: this.nextIp(),
      default_ipv6: `2001:db8:${(this.ipBase & 0xffff).toString(16)}::${n.toString(16)}`,
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

  /** Changes a VM; a managed-Kubernetes machine that is this VM follows (status, hostname, IP). */
  updateVM(id: number, patch: Partial<Omit<SimVM, 'id'>>): SimVM {
    const vm = this.vms.get(id);
    if (!vm) throw new Error(`VPSieSimulator: no VM ${id}`);
    Object.assign(vm, patch, { id, last_updated: timestamp() });
    this.k8s.vmChanged(vm);
    return structuredClone(vm);
  }

  /**
   * Removes a VM out of band (no listeners): it vanished, or someone deleted it in the console. A
   * managed-Kubernetes machine that is this VM goes from its cluster too.
   */
  removeVM(id: number): boolean {
    const had = this.vms.delete(id);
    if (had) this.k8s.vmRemoved(id, false);
    return had;
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

  // ------------------------------------------------------------------------------------------------------
  // Managed Kubernetes (see ./k8s.ts)
  // ------------------------------------------------------------------------------------------------------

  /** A cluster with one master (on the wire only); `workerLimit` caps workers, see {@link setK8sWorkerLimit}. */
  addK8sCluster(p?: { identifier?: string; name?: string; workerLimit?: number | null }): SimK8sCluster {
    return this.k8s.addCluster(p);
  }

  addK8sNodeGroup(
    clusterIdentifier: string,
    p?: { id?: number; identifier?: string; name?: string },
  ): SimK8sNodeGroup {
    return this.k8s.addGroup(clusterIdentifier, p);
  }

  /** A copy of the cluster with its groups and worker machines, or undefined. */
  k8sCluster(identifier: string): SimK8sCluster | undefined {
    return this.k8s.view(identifier);
  }

  /**
   * Past `limit` workers (machines plus pending creates), `…/add/slave/…` answers HTTP 500 with
   * `{"error":true,"code":500,"message":"Worker nodes count exceeds the allowed limit N"}`. null: no limit.
   */
  setK8sWorkerLimit(clusterIdentifier: string, limit: number | null): void {
    this.k8s.setWorkerLimit(clusterIdentifier, limit);
  }

  /** Accepted `…/add/slave/…` calls whose machine VPSie has not finished yet. */
  slaveRequests(clusterIdentifier?: string): SlaveRequest[] {
    return this.k8s.slaveRequests(clusterIdentifier);
  }

  /** Called synchronously when a create is accepted, before the answer is sent. Answers an unsubscribe. */
  onSlaveRequested(listener: (req: SlaveRequest) => void): () => void {
    return this.k8s.onSlaveRequested(listener);
  }

  /**
   * VPSie finished creating the machine: it appears in `GET /k8s/cluster/byId/{id}`'s nodes, and also in
   * `GET /vm` (a SimVM with the same hostname and IP; `vmId` is its id) when `inVmList` (default false).
   */
  completeSlaveRequest(requestId: number, p?: CompleteOptions): SimK8sNode {
    return this.k8s.completeSlaveRequest(requestId, p);
  }

  /** A machine that is already there (no request). */
  addK8sNode(clusterIdentifier: string, p: CompleteOptions & { groupId: number }): SimK8sNode {
    return this.k8s.addNode(clusterIdentifier, p);
  }

  /** Changes a machine (status, hostname, IP); its VM in `GET /vm`, if any, follows. */
  updateK8sNode(
    clusterIdentifier: string,
    identifier: string,
    patch: { status?: string; hostname?: string; ip?: string | null },
  ): SimK8sNode {
    return this.k8s.updateNode(clusterIdentifier, identifier, patch);
  }

  /** Removes a machine out of band (no listeners), and its VM. */
  removeK8sNode(clusterIdentifier: string, identifier: string): boolean {
    return this.k8s.removeNode(clusterIdentifier, identifier);
  }

  /**
   * Called synchronously when a machine is deleted through the API (`…/delete/slave`, or `DELETE /vm/{id}` of
   * its VM), before the answer is sent. Answers an unsubscribe.
   */
  onK8sNodeDeleted(listener: (clusterIdentifier: string, node: SimK8sNode) => void): () => void {
    return this.k8s.onNodeDeleted(listener);
  }

  /**
   * What `POST …/add/slave/group/{gid}` answers: `{data:{id:0, identifier}}` ('async-identifier', default),
   * `{data:true}` ('async-true'), or a machine created at once, also a SimVM ('sync':
   * `{data:{id, identifier, hostname, status}}`).
   */
  setAddSlaveAnswer(mode: AddSlaveMode): void {
    this.k8s.setAddSlaveMode(mode);
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

  private authOf(header: string | undefined): AuthOutcome {
    if (typeof header !== 'string' || header === '') return 'missing';
    const token = /^Bearer (.+)$/.exec(header)?.[1];
    if (token === undefined) return 'invalid';
    if (this.tokens.has(token)) return 'valid';
    return (this.issued.get(token) ?? 0) > Date.now() ? 'valid' : 'invalid';
  }

  private dispatch(req: http.IncomingMessage, res: http.ServerResponse, rawBody: string | null): void {
    const url = new URL(req.url ?? '/', 'http://sim.invalid');
    const method = (req.method ?? 'GET').toUpperCase();
    const base = VPSieSimulator.BASE_PATH;
    const path = url.pathname.startsWith(`${base}/`) ? url.pathname.slice(base.length) : url.pathname;
    const auth = this.authOf(req.headers.authorization);
    let body: unknown;
    let bodyInvalid = false;
    if (rawBody !== null && rawBody !== '') {
      if (/application\/x-www-form-urlencoded/.test(req.headers['content-type'] ?? '')) {
        body = Object.fromEntries(new URLSearchParams(rawBody));
      } else {
        try {
          body = JSON.parse(rawBody);
        } catch {
          bodyInvalid = true;
          body = rawBody.slice(0, 200);
        }
      }
    }
    const record: RecordedRequest = {
      seq: ++this.seq,
      method,
      path,
      query: Object.fromEntries(url.searchParams),
      auth,
      at: now(),
      // The exchange's body carries the client secret: only the client id is kept.
      ...(body !== undefined
        ? { body: path === '/auth/from/api' && isRecord(body) ? { clientId: body.clientId } : body }
        : {}),
      ...(typeof req.headers['user-agent'] === 'string' ? { userAgent: req.headers['user-agent'] } : {}),
    };
    this.requests.push(record);

    // 1. Injected faults.
    const active = this.rules.find((r) => r.remaining > 0 && r.match(method, path));
    if (active) {
      active.remaining -= 1;
      active.hits += 1;
      record.fault = active.rule.fault.type;
      this.applyFault(active.rule.fault, req, res, record, body, bodyInvalid);
      return;
    }
    const answer = this.answer(record, url, body, bodyInvalid);
    this.send(res, record, answer.status, answer.body);
  }

  /** What the API answers, auth and routes included. */
  private answer(record: RecordedRequest, url: URL, body: unknown, bodyInvalid: boolean): Answer {
    const { method, path } = record;
    if (!url.pathname.startsWith(`${VPSieSimulator.BASE_PATH}/`)) {
      return { status: 404, body: errorBody(404, `No API at ${url.pathname}`) };
    }
    if (path === '/auth/from/api') {
      return method === 'POST' ? this.exchange(body) : { status: 405, body: errorBody(405) };
    }
    if (record.auth !== 'valid') {
      return {
        status: 401,
        body: errorBody(401, record.auth === 'missing' ? 'Authorization header is missing' : undefined),
      };
    }
    if (bodyInvalid) return { status: 400, body: errorBody(400, 'Request body is not valid JSON') };
    return this.route(method, path, url.searchParams, body);
  }

  private exchange(body: unknown): Answer {
    const { clientId, clientSecret } = isRecord(body) ? body : {};
    if (clientId !== this.credentials.clientId || clientSecret !== this.credentials.clientSecret) {
      return apiError(401, 'Invalid credentials');
    }
    const token = `sim-access-${randomUUID()}`;
    const expires = Date.now() + this.accessTokenTtlMs;
    this.issued.set(token, expires);
    return {
      status: 200,
      body: {
        accessToken: { token, expires: new Date(expires).toISOString() },
        refreshToken: {
          token: `sim-refresh-${randomUUID()}`,
          expires: new Date(expires + 7 * 86_400_000).toISOString(),
        },
      },
    };
  }

  private route(method: string, path: string, query: URLSearchParams, body: unknown): Answer {
    const segs = path.split('/').filter(Boolean);
    const err = (status: number, message?: string) => ({ status, body: errorBody(status, message) });
    const ok = (data: unknown, extra: Record<string, unknown> = {}) => ({
      status: 200,
      body: { error: false, ...extra, data },
    });
    const only = (allowed: string, handler: () => Answer) =>
      method === allowed ? handler() : err(405, `${method} is not allowed on ${path}`);
    const list = <T>(items: T[]) => this.paginate(items, query);
    const intId = (s: string): number | undefined => (/^\d+$/.test(s) ? Number(s) : undefined);

    if (segs[0] === 'k8s') return this.k8s.route(method, segs.slice(1), body);
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
        this.k8s.vmRemoved(vm.id, true);
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
        const changed = this.updateVM(vm.id, { status: action === 'stop' ? 'stopped' : 'running' });
        for (const l of this.actionListeners) this.safely(() => l(structuredClone(changed), action));
        return ok(changed, { message: `Action ${action} accepted for VM ${vm.id}` });
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
    return err(404, `No route for ${method} ${path}`);
  }

  private paginate<T>(items: T[], query: URLSearchParams): Answer {
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
    body: unknown,
    bodyInvalid: boolean,
  ): void {
    const url = new URL(req.url ?? '/', 'http://sim.invalid');
    const retryAfter = (v: number | string | undefined): Record<string, string> =>
      v === undefined ? {} : { 'Retry-After': String(v) };
    switch (fault.type) {
      case 'hang':
        return; // the socket is destroyed by the client's timeout or by stop()
      case 'reset':
        this.later(fault.delayMs, () => req.socket.destroy());
        return;
      case 'slow':
        this.later(fault.delayMs, () => {
          const answer = this.answer(record, url, body, bodyInvalid);
          this.send(res, record, answer.status, answer.body);
        });
        return;
      case 'short-list': {
        const answer = this.answer(record, url, body, bodyInvalid);
        const data = isRecord(answer.body) ? answer.body.data : undefined;
        if (Array.isArray(data) && isRecord(answer.body)) {
          answer.body.data = data.slice(0, Math.max(0, data.length - (fault.missing ?? 1)));
        }
        this.send(res, record, answer.status, answer.body);
        return;
      }
      case 'status':
        this.later(fault.delayMs, () =>
          this.send(
            res,
            record,
            fault.status,
            fault.body ?? errorBody(fault.status),
            retryAfter(fault.retryAfter),
          ),
        );
        return;
      case 'api-error':
        this.later(fault.delayMs, () =>
          this.send(
            res,
            record,
            fault.status ?? 200,
            { error: true, code: fault.code ?? 500, message: fault.message },
            retryAfter(fault.retryAfter),
          ),
        );
        return;
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

  private nextIp(): string {
    // Each simulator numbers from its own random point of 198.18.0.0/15 (reserved, never routed): the test files
    // share one apiserver, and a Node of another file's simulator must not carry the same address.
    const n = (this.ipBase + this.ipCounter++) % 0x20000;
    return `198.${18 + (n >> 16)}.${(n >> 8) & 0xff}.${n & 0xff}`;
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
