/**
 * The project's VPSie API client (axios; answers parsed with the zod schemas of `./vpsie-schemas`).
 *
 * - One attempt per call. Temporal's retry policy is the only retry layer: a failure is a {@link VPSieApiError}
 *   saying whether retrying can help (`permanent`) and, when the API said so, after how long (`retryAfterMs`).
 *   The one exception is auth: with client credentials, a 401 re-exchanges them once and repeats the request,
 *   as the autoscaler does (an access token can expire or be revoked before its stated expiry).
 * - `{"error": true, "code", "message"}` is an error even in a 2xx answer. Capacity and quota messages ("Worker
 *   nodes count exceeds the allowed limit", "quota exceeded", …) are permanent whatever the status, since the
 *   API has been seen sending them as HTTP 500.
 * - Lists follow pages until they hold `total` items; one that stays short is refused, never returned.
 * - Errors are built here from plain fields: never the axios error, its config or its headers, and every text
 *   taken from an answer has the token, access tokens and client secret removed.
 * - `https` only, except to a loopback host (tests, a local proxy).
 * - No Temporal imports: activities map `permanent` and `retryAfterMs` onto Temporal failures.
 */
import { STATUS_CODES } from 'node:http';
import axios from 'axios';
import type { AxiosInstance } from 'axios';
import type { z } from 'zod';
import {
  addSlaveAnswer,
  datacenterSchema,
  describeIssues,
  errorBody,
  errorEnvelope,
  imageSchema,
  k8sClusterInfoSchema,
  k8sClusterSchema,
  k8sNodeGroupSchema,
  listEnvelope,
  objectEnvelope,
  offeringSchema,
  sshKeySchema,
  tokenAnswer,
  vmSchema,
} from './vpsie-schemas';

export type VM = z.output<typeof vmSchema>;
export type Offering = z.output<typeof offeringSchema>;
export type Datacenter = z.output<typeof datacenterSchema>;
export type Image = z.output<typeof imageSchema>;
export type SSHKey = z.output<typeof sshKeySchema>;
export type K8sCluster = z.output<typeof k8sClusterSchema>;
export type K8sClusterInfo = z.output<typeof k8sClusterInfoSchema>;
export type K8sClusterNode = K8sClusterInfo['nodes'][number];
export type K8sNodeGroup = z.output<typeof k8sNodeGroupSchema>;
export type VMAction = 'start' | 'stop' | 'restart';

/** What `POST …/add/slave/group/{gid}` accepted: `id` 0 while VPSie is still creating the machine. */
export interface AddedSlave {
  id: number;
  /** '' when the answer carried none (`data: true`). */
  identifier: string;
  hostname: string;
  status: string;
}

// ---------------------------------------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------------------------------------

export type VPSieErrorKind =
  | 'auth' // 401, credentials refused, or the token provider gave nothing usable
  | 'forbidden' // 403
  | 'not-found' // 404
  | 'rejected' // any other 4xx: the API refused this request as sent
  | 'capacity' // a capacity / quota / plan limit (any status): retrying cannot help
  | 'rate-limited' // 429
  | 'server' // 5xx, or an error envelope that does not say why
  | 'timeout' // no complete answer within timeoutMs
  | 'network' // connection refused / reset / DNS / dropped mid-body
  | 'incomplete' // a list with fewer items than its `total`
  | 'malformed'; // not what the API promises (not JSON, wrong shape, unexpected status)

const PERMANENT_KINDS: ReadonlySet<VPSieErrorKind> = new Set([
  'auth',
  'forbidden',
  'not-found',
  'rejected',
  'capacity',
  'malformed',
]);

/** The autoscaler's terminal-error patterns (`pkg/vpsie/client/errors.go` IsTerminalError), case-insensitive. */
const CAPACITY_PATTERNS = [
  'exceeds the allowed limit',
  'quota exceeded',
  'plan does not allow',
  'maximum number of',
  'limit reached',
  'subscription does not allow',
];

/** Whether an API message says a capacity, quota or plan limit was hit (the autoscaler's terminal errors). */
export function isCapacityMessage(text: string): boolean {
  const lower = text.toLowerCase();
  return CAPACITY_PATTERNS.some((p) => lower.includes(p));
}

export interface VPSieApiErrorFields {
  kind: VPSieErrorKind;
  method: string;
  /** Path relative to the base URL, with its query string (never contains credentials). */
  path: string;
  /** The HTTP status (200 for an error envelope in a 2xx answer). */
  status?: number;
  /** The API's `code`, or the system error code (`ECONNRESET`). */
  code?: string;
  /** The API's `message` (or `error`) text, when the body carried one. */
  apiMessage?: string;
  /** How long the API asked us to wait (from `Retry-After` on a 429/503), ms. */
  retryAfterMs?: number;
  /** Overrides the default derived from `kind`. */
  permanent?: boolean;
}

export class VPSieApiError extends Error {
  readonly kind: VPSieErrorKind;
  readonly permanent: boolean;
  readonly method: string;
  readonly path: string;
  readonly status?: number;
  readonly code?: string;
  readonly apiMessage?: string;
  readonly retryAfterMs?: number;

  constructor(message: string, fields: VPSieApiErrorFields) {
    super(message);
    this.name = 'VPSieApiError';
    this.kind = fields.kind;
    this.permanent = fields.permanent ?? PERMANENT_KINDS.has(fields.kind);
    this.method = fields.method;
    this.path = fields.path;
    if (fields.status !== undefined) this.status = fields.status;
    if (fields.code !== undefined) this.code = fields.code;
    if (fields.apiMessage !== undefined) this.apiMessage = fields.apiMessage;
    if (fields.retryAfterMs !== undefined) this.retryAfterMs = fields.retryAfterMs;
  }

  /** Plain, secret-free form for logs and for activity failure details. */
  toJSON(): Record<string, unknown> {
    const { name, message, kind, permanent, method, path, status, code, apiMessage, retryAfterMs } = this;
    return { name, message, kind, permanent, method, path, status, code, apiMessage, retryAfterMs };
  }
}

export function isVPSieApiError(err: unknown): err is VPSieApiError {
  return err instanceof VPSieApiError;
}

// ---------------------------------------------------------------------------------------------------------
// Options
// ---------------------------------------------------------------------------------------------------------

/** A static bearer token, or a provider asked before every request (so a rotated secret needs no restart). */
export type TokenSource = string | (() => Promise<string>);

/** Client id and secret, exchanged for an access token at `POST /auth/from/api`. */
export interface Credentials {
  clientId: string;
  clientSecret: string;
}
/** Credentials, or a provider asked at every exchange (so rotated credentials need no restart). */
export type CredentialsSource = Credentials | (() => Promise<Credentials>);

export interface VPSieClientOptions {
  /** API base URL: `https://api.vpsie.com/v2` (default) or `https://api.vpsie.com/apps/v2`. */
  baseUrl?: string;
  /** Exactly one of `token` and `credentials`. */
  token?: TokenSource;
  credentials?: CredentialsSource;
  /** Deadline of one HTTP request (connect + headers + body), ms. */
  timeoutMs?: number;
  /** `per_page` asked for when listing. */
  pageSize?: number;
  /** Listing stops with a `malformed` error past this many pages (guards against a pagination loop). */
  maxPages?: number;
  /** Largest accepted response body, bytes. */
  maxResponseBytes?: number;
  userAgent?: string;
}

/** Per-call options. */
export interface CallOptions {
  /** Aborts the call, e.g. an activity's cancellation signal; its `reason` is thrown as is. */
  signal?: AbortSignal;
}

export const DEFAULTS = {
  baseUrl: 'https://api.vpsie.com/v2',
  timeoutMs: 15_000,
  pageSize: 100,
  maxPages: 1_000,
  maxResponseBytes: 10 * 1024 * 1024,
  userAgent: 'vpsie-runbook/0.1.0',
  /** An access token is renewed this long before its stated expiry (the autoscaler's buffer). */
  tokenRefreshBeforeMs: 5 * 60_000,
  /** Lifetime assumed when the exchange does not say (the autoscaler's default). */
  tokenDefaultLifetimeMs: 60 * 60_000,
} as const;

export const TOKEN_PATH = '/auth/from/api';

/** Hosts to which plain http is allowed: the credentials never leave the machine. */
export function isLoopbackHost(hostname: string): boolean {
  const h = hostname.toLowerCase();
  return h === 'localhost' || h === '[::1]' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(h);
}

function optionError(option: string, problem: string): Error {
  return new Error(`VPSieClient: option "${option}" ${problem}`);
}

function checkInt(option: string, value: unknown, min: number): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min) {
    const got = typeof value === 'number' ? value : typeof value;
    throw optionError(option, `must be an integer >= ${min}, got ${got}`);
  }
  return value;
}

// Header values must not carry control characters; checked so that Node's own header validation never
// gets a chance to build an error around the value.
// eslint-disable-next-line no-control-regex
const BAD_TOKEN_CHARS = /[\u0000-\u001f\u007f\s]/;

function checkBaseUrl(raw: unknown): string {
  if (typeof raw !== 'string' || raw.trim() === '') throw optionError('baseUrl', 'must be a non-empty URL');
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw optionError('baseUrl', 'is not a valid URL');
  }
  if (url.protocol !== 'https:' && !(url.protocol === 'http:' && isLoopbackHost(url.hostname))) {
    throw optionError(
      'baseUrl',
      `must use https (http only to a loopback host), got ${url.protocol}//${url.host}`,
    );
  }
  if (url.username || url.password) throw optionError('baseUrl', 'must not contain credentials');
  if (url.search || url.hash) throw optionError('baseUrl', 'must not contain a query string or fragment');
  return url.toString().replace(/\/+$/, '');
}

// ---------------------------------------------------------------------------------------------------------
// Client
// ---------------------------------------------------------------------------------------------------------

interface Ctx {
  method: string;
  path: string;
}
type Body = { json: unknown } | { form: Record<string, string> };
interface Answer {
  status: number;
  text: string;
  retryAfter: unknown;
}

export class VPSieClient {
  readonly baseUrl: string;
  private readonly timeoutMs: number;
  private readonly pageSize: number;
  private readonly maxPages: number;
  private readonly maxResponseBytes: number;
  private readonly http: AxiosInstance;
  // #private fields: not shown by util.inspect or JSON.stringify of the client.
  readonly #token?: TokenSource;
  readonly #credentials?: CredentialsSource;
  #access?: { token: string; renewAt: number };
  #exchanging?: Promise<string>;
  /** Every secret this client has held, for redaction (the newest few). */
  #secrets: string[] = [];

  constructor(options: VPSieClientOptions) {
    if (options === null || typeof options !== 'object') throw new Error('VPSieClient: options are required');
    this.baseUrl = checkBaseUrl(options.baseUrl ?? DEFAULTS.baseUrl);
    const { token, credentials } = options;
    if ((token === undefined) === (credentials === undefined)) {
      throw optionError('token', 'or "credentials" is required, and only one of them');
    }
    if (token !== undefined) {
      if (typeof token === 'string') {
        if (token.trim() === '')
          throw optionError('token', 'must be a non-empty string or a provider function');
        if (BAD_TOKEN_CHARS.test(token))
          throw optionError('token', 'must not contain whitespace or control characters');
        this.remember(token);
      } else if (typeof token !== 'function') {
        throw optionError('token', 'must be a non-empty string or a provider function');
      }
      this.#token = token;
    } else {
      if (typeof credentials !== 'function') this.remember(checkCredentials(credentials).clientSecret);
      this.#credentials = credentials;
    }
    this.timeoutMs = checkInt('timeoutMs', options.timeoutMs ?? DEFAULTS.timeoutMs, 1);
    this.pageSize = checkInt('pageSize', options.pageSize ?? DEFAULTS.pageSize, 1);
    this.maxPages = checkInt('maxPages', options.maxPages ?? DEFAULTS.maxPages, 1);
    this.maxResponseBytes = checkInt(
      'maxResponseBytes',
      options.maxResponseBytes ?? DEFAULTS.maxResponseBytes,
      1,
    );
    const userAgent = options.userAgent ?? DEFAULTS.userAgent;
    if (typeof userAgent !== 'string' || userAgent.trim() === '' || /[\r\n]/.test(userAgent)) {
      throw optionError('userAgent', 'must be a non-empty single-line string');
    }
    this.http = axios.create({
      baseURL: this.baseUrl,
      // The deadline is our own AbortController's (it covers slow bodies, not only idle sockets).
      timeout: 0,
      // Status handling and parsing are ours: axios never throws for a status, so no AxiosError (which
      // carries the request config and its Authorization header) is built for one.
      validateStatus: () => true,
      responseType: 'text',
      transformResponse: [(data: unknown) => data],
      // A redirect could carry the Authorization header elsewhere; the API does not redirect.
      maxRedirects: 0,
      maxContentLength: this.maxResponseBytes,
      headers: { Accept: 'application/json', 'User-Agent': userAgent },
    });
  }

  // ------------------------------------------------------------------------------------------------------
  // VMs
  // ------------------------------------------------------------------------------------------------------

  /** Every VM of the account, across all pages. */
  async listVMs(call?: CallOptions): Promise<VM[]> {
    return this.listAll('/vm', vmSchema, (v) => v.id, call);
  }

  /** The VM, or `null` when the API answers 404 (no such VM, e.g. already terminated). */
  async getVM(id: number, call?: CallOptions): Promise<VM | null> {
    return this.getOrNull(`/vm/${vmId('getVM', id)}`, vmSchema, call);
  }

  /** Terminates the VM. Idempotent: a 404 means it is already gone, the wanted end state. */
  async deleteVM(id: number, call?: CallOptions): Promise<{ alreadyGone: boolean }> {
    const body = await this.orNull(this.call('DELETE', `/vm/${vmId('deleteVM', id)}`, undefined, call));
    return { alreadyGone: body === null };
  }

  /** A power action; an unknown VM is a permanent `not-found` (the wanted state cannot be reached). */
  async vmAction(id: number, action: VMAction, call?: CallOptions): Promise<void> {
    if (action !== 'start' && action !== 'stop' && action !== 'restart') {
      throw new RangeError(`vmAction: action must be start, stop or restart, got ${String(action)}`);
    }
    await this.call('POST', `/vm/${vmId('vmAction', id)}/action`, { json: { action } }, call);
  }

  // ------------------------------------------------------------------------------------------------------
  // Catalog
  // ------------------------------------------------------------------------------------------------------

  async listOfferings(call?: CallOptions): Promise<Offering[]> {
    return this.listAll('/offerings', offeringSchema, (o) => o.id, call);
  }

  /** The offering, or `null` on 404 (the id names no offering: a finding, not a failure). */
  async getOffering(id: string | number, call?: CallOptions): Promise<Offering | null> {
    return this.getOrNull(`/offerings/${pathId('getOffering', id)}`, offeringSchema, call);
  }

  async listDatacenters(call?: CallOptions): Promise<Datacenter[]> {
    return this.listAll('/datacenters', datacenterSchema, (d) => d.id, call);
  }

  async listImages(call?: CallOptions): Promise<Image[]> {
    return this.listAll('/images', imageSchema, (i) => i.id, call);
  }

  async listSSHKeys(call?: CallOptions): Promise<SSHKey[]> {
    return this.listAll('/sshkeys', sshKeySchema, (k) => k.identifier, call);
  }

  /** The SSH key by identifier (or id), or `null` on 404. */
  async getSSHKey(identifier: string | number, call?: CallOptions): Promise<SSHKey | null> {
    return this.getOrNull(`/sshkey/${pathId('getSSHKey', identifier)}`, sshKeySchema, call);
  }

  // ------------------------------------------------------------------------------------------------------
  // Managed Kubernetes (the endpoints the autoscaler uses)
  // ------------------------------------------------------------------------------------------------------

  async listK8sClusters(call?: CallOptions): Promise<K8sCluster[]> {
    return this.listAll('/k8s/cluster/all', k8sClusterSchema, (c) => c.identifier, call);
  }

  /** The cluster with its machines (`nodes`), or `null` on 404 (no such cluster). */
  async getK8sCluster(clusterIdentifier: string, call?: CallOptions): Promise<K8sClusterInfo | null> {
    return this.getOrNull(
      `/k8s/cluster/byId/${pathId('getK8sCluster', clusterIdentifier)}`,
      k8sClusterInfoSchema,
      call,
    );
  }

  /** The cluster's node groups (their numeric `id` is `VPSieNode.spec.vpsieGroupID`), or `null` on 404. */
  async listK8sNodeGroups(clusterIdentifier: string, call?: CallOptions): Promise<K8sNodeGroup[] | null> {
    const path = `/k8s/node/groups/byClusterId/${pathId('listK8sNodeGroups', clusterIdentifier)}`;
    return this.orNull(this.listAll(path, k8sNodeGroupSchema, (g) => g.id, call));
  }

  /**
   * Asks VPSie for one more machine in the group, as the autoscaler's provisioner does. Not idempotent: every
   * accepted call is one more machine, so callers must not repeat it blindly (the runbook does not call it).
   */
  async addK8sSlave(clusterIdentifier: string, groupId: number, call?: CallOptions): Promise<AddedSlave> {
    const path = `/k8s/cluster/byId/${pathId('addK8sSlave', clusterIdentifier)}/add/slave/group/${vmId('addK8sSlave', groupId)}`;
    const { data } = this.parse(
      { method: 'POST', path },
      addSlaveAnswer,
      await this.call('POST', path, undefined, call),
    );
    if (typeof data === 'object' && data !== null && ((data.id ?? 0) !== 0 || data.identifier !== '')) {
      return { id: data.id ?? 0, identifier: data.identifier, hostname: data.hostname, status: data.status };
    }
    return { id: 0, identifier: '', hostname: '', status: 'provisioning' };
  }

  /**
   * Removes a machine from the cluster the way the autoscaler does (`DELETE …/delete/slave` with the node's
   * identifier in the body). Idempotent: a 404 means it is already gone.
   */
  async deleteK8sNode(
    clusterIdentifier: string,
    nodeIdentifier: string,
    call?: CallOptions,
  ): Promise<{ alreadyGone: boolean }> {
    const path = `/k8s/cluster/byId/${pathId('deleteK8sNode', clusterIdentifier)}/delete/slave`;
    pathId('deleteK8sNode', nodeIdentifier);
    const body = await this.orNull(this.call('DELETE', path, { json: { identifier: nodeIdentifier } }, call));
    return { alreadyGone: body === null };
  }

  // ------------------------------------------------------------------------------------------------------
  // Plumbing
  // ------------------------------------------------------------------------------------------------------

  private async getOrNull<S extends z.ZodType>(
    path: string,
    schema: S,
    call?: CallOptions,
  ): Promise<z.output<S> | null> {
    const body = await this.orNull(this.call('GET', path, undefined, call));
    return body === null ? null : this.parse({ method: 'GET', path }, objectEnvelope(schema), body);
  }

  /** A 404 (or an error envelope with code 404) answers `null`. */
  private async orNull<T>(p: Promise<T>): Promise<T | null> {
    try {
      return await p;
    } catch (err) {
      if (err instanceof VPSieApiError && err.kind === 'not-found') return null;
      throw err;
    }
  }

  private parse<S extends z.ZodType>(ctx: Ctx, schema: S, body: unknown): z.output<S> {
    const result = schema.safeParse(body);
    if (!result.success) throw malformed(ctx, this.redact(describeIssues(result.error)));
    return result.data;
  }

  /**
   * Follows pages until the list holds the `total` the API reported. A page that adds nothing while items are
   * still missing means the list is short: refused as `incomplete`, transient, because the usual cause is the
   * set changing between pages (a VM deleted mid-listing shifts the rest); a fresh listing on the next attempt
   * is the remedy, and a listing that stays short ends with the caller's retry budget. Never returned short:
   * a missing VM would read as "not created" or "already gone".
   */
  private async listAll<S extends z.ZodType>(
    basePath: string,
    item: S,
    key: (item: z.output<S>) => unknown,
    call?: CallOptions,
  ): Promise<z.output<S>[]> {
    const envelope = listEnvelope(item);
    const out: z.output<S>[] = [];
    const seen = new Set<unknown>();
    for (let page = 1; ; page++) {
      const path = `${basePath}?page=${page}&per_page=${this.pageSize}`;
      const ctx = { method: 'GET', path };
      if (page > this.maxPages) throw malformed(ctx, `the list did not end within ${this.maxPages} pages`);
      const body = this.parse(ctx, envelope, await this.call('GET', path, undefined, call));
      let added = 0;
      for (const it of body.data) {
        // Items shift between pages when the set changes while we list: keep the first copy.
        if (seen.has(key(it))) continue;
        seen.add(key(it));
        out.push(it);
        added++;
      }
      const total = body.pagination?.total ?? body.total;
      if (total === undefined) {
        const pages = body.pagination?.total_pages;
        if (pages !== undefined && page < pages) continue;
        return out;
      }
      if (out.length >= total) return out;
      if (added === 0) {
        throw new VPSieApiError(
          `VPSie API GET ${basePath}: incomplete list: the API reported ${total} items but answered ${out.length} (page ${page} added none)`,
          { ...ctx, kind: 'incomplete' },
        );
      }
    }
  }

  /** One call: one HTTP request (two with client credentials after a 401). Answers the parsed body. */
  private async call(
    method: string,
    path: string,
    body: Body | undefined,
    call?: CallOptions,
  ): Promise<unknown> {
    const ctx = { method, path };
    const signal = call?.signal;
    throwIfAborted(signal);
    let bearer = await this.bearer(ctx, signal);
    let answer = await this.send(ctx, body, bearer, signal);
    if (answer.status === 401 && this.#credentials !== undefined) {
      bearer = await this.bearer(ctx, signal, bearer);
      answer = await this.send(ctx, body, bearer, signal);
    }
    return this.interpret(ctx, answer);
  }

  /** The bearer token for a request; with credentials, the cached access token unless it is `stale`. */
  private async bearer(ctx: Ctx, signal?: AbortSignal, stale?: string): Promise<string> {
    const source = this.#token;
    if (typeof source === 'string') return source;
    if (source) {
      let token: unknown;
      try {
        token = await source();
      } catch (err) {
        // Reading the secret failing (the file blinked) is no proof the credential is bad: transient.
        const reason = this.redact(err instanceof Error ? err.message : String(err));
        throw new VPSieApiError(`VPSie API ${ctx.method} ${ctx.path}: the token provider failed: ${reason}`, {
          ...ctx,
          kind: 'auth',
          permanent: false,
        });
      }
      if (typeof token !== 'string' || token.trim() === '' || BAD_TOKEN_CHARS.test(token)) {
        throw new VPSieApiError(
          `VPSie API ${ctx.method} ${ctx.path}: the token provider gave no usable token (empty, not a string, or with whitespace)`,
          { ...ctx, kind: 'auth' },
        );
      }
      this.remember(token);
      return token;
    }
    const access = this.#access;
    if (access && access.token !== stale && Date.now() < access.renewAt) return access.token;
    // One exchange at a time, shared by every call that needs it; each caller may still abort its own wait.
    const exchanging = (this.#exchanging ??= this.exchange().finally(() => (this.#exchanging = undefined)));
    return abortable(exchanging, signal);
  }

  /** `POST /auth/from/api` with the client id and secret, form-encoded as the autoscaler sends them. */
  private async exchange(): Promise<string> {
    const ctx = { method: 'POST', path: TOKEN_PATH };
    const source = this.#credentials as CredentialsSource;
    let provided: unknown;
    try {
      provided = typeof source === 'function' ? await source() : source;
    } catch (err) {
      // As for the token provider: a secret that cannot be read now is no proof it is wrong.
      const reason = this.redact(err instanceof Error ? err.message : String(err));
      throw new VPSieApiError(`VPSie API auth: the credentials provider failed: ${reason}`, {
        ...ctx,
        kind: 'auth',
        permanent: false,
      });
    }
    let credentials: Credentials;
    try {
      credentials = checkCredentials(provided);
    } catch (err) {
      throw new VPSieApiError(
        `VPSie API auth: the credentials provider gave unusable credentials: ${(err as Error).message.replace(/^.*?option "credentials" /, '')}`,
        {
          ...ctx,
          kind: 'auth',
        },
      );
    }
    this.remember(credentials.clientSecret);
    const form = { clientId: credentials.clientId, clientSecret: credentials.clientSecret };
    const body = this.interpret(ctx, await this.send(ctx, { form }, undefined, undefined));
    const { accessToken } = this.parse(ctx, tokenAnswer, body);
    if (BAD_TOKEN_CHARS.test(accessToken.token)) throw malformed(ctx, 'the access token contains whitespace');
    this.remember(accessToken.token);
    const expires = accessToken.expires ? Date.parse(accessToken.expires) : Number.NaN;
    const expiresAt = Number.isNaN(expires) ? Date.now() + DEFAULTS.tokenDefaultLifetimeMs : expires;
    this.#access = { token: accessToken.token, renewAt: expiresAt - DEFAULTS.tokenRefreshBeforeMs };
    return accessToken.token;
  }

  /** One HTTP request. Throws only VPSieApiError (timeout, network), or the caller's abort reason. */
  private async send(
    ctx: Ctx,
    body: Body | undefined,
    bearer: string | undefined,
    signal?: AbortSignal,
  ): Promise<Answer> {
    const controller = new AbortController();
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      controller.abort();
    }, this.timeoutMs);
    const onCallerAbort = () => controller.abort();
    signal?.addEventListener('abort', onCallerAbort, { once: true });
    const headers: Record<string, string> = {};
    if (bearer !== undefined) headers.Authorization = `Bearer ${bearer}`;
    let data: string | undefined;
    if (body && 'json' in body) {
      headers['Content-Type'] = 'application/json';
      data = JSON.stringify(body.json);
    } else if (body) {
      headers['Content-Type'] = 'application/x-www-form-urlencoded';
      data = new URLSearchParams(body.form).toString();
    }
    try {
      const res = await this.http.request<string>({
        method: ctx.method,
        url: ctx.path,
        data,
        headers,
        signal: controller.signal,
      });
      return {
        status: res.status,
        text: typeof res.data === 'string' ? res.data : '',
        retryAfter: res.headers['retry-after'],
      };
    } catch (err) {
      if (signal?.aborted) throw abortReason(signal);
      // Our own error from the few safe fields; the axios error (config, headers) is dropped here.
      const code = readStringProp(err, 'code');
      const raw = err instanceof Error ? err.message : String(err);
      if (timedOut || code === 'ECONNABORTED' || code === 'ETIMEDOUT') {
        throw new VPSieApiError(
          `VPSie API ${ctx.method} ${ctx.path}: no answer within ${this.timeoutMs} ms (timeout)`,
          {
            ...ctx,
            kind: 'timeout',
            code: 'ETIMEDOUT',
          },
        );
      }
      if (/maxContentLength/.test(raw)) {
        throw malformed(ctx, `response body larger than ${this.maxResponseBytes} bytes`);
      }
      throw new VPSieApiError(
        `VPSie API ${ctx.method} ${ctx.path}: network error${code ? ` ${code}` : ''}: ${this.redact(raw)}`,
        { ...ctx, kind: 'network', ...(code ? { code } : {}) },
      );
    } finally {
      clearTimeout(timer);
      signal?.removeEventListener('abort', onCallerAbort);
    }
  }

  /** The parsed body of a successful answer; otherwise the error it stands for. */
  private interpret(ctx: Ctx, answer: Answer): unknown {
    const { status, text } = answer;
    let body: unknown;
    let isJson = true;
    try {
      body = text.trim() === '' ? undefined : JSON.parse(text);
    } catch {
      isJson = false;
    }
    if (status >= 200 && status < 300) {
      if (!isJson)
        throw malformed(ctx, `HTTP ${status} with a body that is not JSON: ${this.snippet(text)}`, status);
      const envelope = errorEnvelope.safeParse(body);
      if (!envelope.success) return body ?? {};
      const { code, message } = envelope.data;
      // The envelope's code is HTTP-like when it says anything; without one the API failed without saying why,
      // which the autoscaler retries: transient.
      const effective = typeof code === 'number' && code >= 400 && code <= 599 ? code : 500;
      return this.failure(ctx, answer, effective, { code, message }, true);
    }
    if (!isJson)
      return this.failure(ctx, answer, status, { raw: text.trim() ? this.snippet(text) : undefined });
    const parsed = errorBody.safeParse(body);
    const { code, message, error } = parsed.success ? parsed.data : {};
    return this.failure(ctx, answer, status, {
      code,
      message,
      error: typeof error === 'string' ? error : undefined,
    });
  }

  /** The error an answer stands for; `effective` is the HTTP-like status that decides its kind. */
  private failure(
    ctx: Ctx,
    answer: Answer,
    effective: number,
    api: { code?: string | number; message?: string; error?: string; raw?: string },
    envelope = false,
  ): never {
    const message = api.message ? this.redact(api.message) : undefined;
    const error = api.error ? this.redact(api.error) : undefined;
    const code = api.code === undefined ? undefined : this.redact(String(api.code));
    const said = [error, message !== error ? message : undefined, api.raw].filter(Boolean).join(': ');
    let kind: VPSieErrorKind;
    if (isCapacityMessage(said)) kind = 'capacity';
    else if (effective === 401) kind = 'auth';
    else if (effective === 403) kind = 'forbidden';
    else if (effective === 404) kind = 'not-found';
    else if (effective === 429) kind = 'rate-limited';
    else if (effective >= 500 && effective <= 599) kind = 'server';
    else if (effective >= 400 && effective <= 499) kind = 'rejected';
    else kind = 'malformed'; // 1xx/3xx: nothing the API is documented to send
    const retryAfterMs =
      effective === 429 || effective === 503 ? parseRetryAfter(answer.retryAfter) : undefined;
    const status = answer.status;
    const label = `HTTP ${status}${STATUS_CODES[status] ? ` ${STATUS_CODES[status]}` : ''}`;
    throw new VPSieApiError(
      `VPSie API ${ctx.method} ${ctx.path} failed: ${label}${envelope ? ' with {"error": true}' : ''}` +
        `${said ? `: ${said}` : ''}${code !== undefined ? ` (code ${code})` : ''}`,
      {
        ...ctx,
        kind,
        status,
        ...(code !== undefined ? { code } : {}),
        ...((message ?? error) !== undefined ? { apiMessage: message ?? error } : {}),
        ...(retryAfterMs !== undefined ? { retryAfterMs } : {}),
      },
    );
  }

  private remember(secret: string): void {
    if (this.#secrets.includes(secret)) return;
    this.#secrets.push(secret);
    if (this.#secrets.length > 8) this.#secrets.shift();
  }

  /** Removes every secret this client holds or has held from text that goes into an error. */
  private redact(text: string): string {
    let out = text;
    for (const secret of this.#secrets) out = out.split(secret).join('[REDACTED]');
    return out;
  }

  private snippet(text: string): string {
    // Redact before cutting, so a secret straddling the cut cannot survive in part.
    const flat = this.redact(text).replace(/\s+/g, ' ').trim();
    return JSON.stringify(flat.length > 200 ? `${flat.slice(0, 200)}…` : flat);
  }
}

// ---------------------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------------------

function malformed(ctx: Ctx, problem: string, status?: number): VPSieApiError {
  return new VPSieApiError(`VPSie API ${ctx.method} ${ctx.path}: malformed response: ${problem}`, {
    ...ctx,
    kind: 'malformed',
    ...(status !== undefined ? { status } : {}),
  });
}

function checkCredentials(c: unknown): Credentials {
  const ok = (v: unknown) => typeof v === 'string' && v.trim() !== '';
  if (typeof c !== 'object' || c === null)
    throw optionError('credentials', 'must be {clientId, clientSecret}');
  const { clientId, clientSecret } = c as Record<string, unknown>;
  if (!ok(clientId)) throw optionError('credentials', '"clientId" must be a non-empty string');
  if (!ok(clientSecret)) throw optionError('credentials', '"clientSecret" must be a non-empty string');
  return { clientId: clientId as string, clientSecret: clientSecret as string };
}

function readStringProp(v: unknown, key: string): string | undefined {
  if (typeof v !== 'object' || v === null) return undefined;
  const value = (v as Record<string, unknown>)[key];
  return typeof value === 'string' ? value : undefined;
}

/** A positive integer id (VM, node group), or a RangeError: a caller's bug, found before any request. */
function vmId(fn: string, id: unknown): number {
  if (typeof id !== 'number' || !Number.isInteger(id) || id <= 0) {
    throw new RangeError(`${fn}: id must be a positive integer, got ${String(id)}`);
  }
  return id;
}

function pathId(fn: string, id: unknown): string {
  if (typeof id === 'number' && Number.isInteger(id) && id > 0) return String(id);
  if (typeof id === 'string' && id.trim() !== '') return encodeURIComponent(id);
  throw new RangeError(`${fn}: id must be a positive integer or a non-empty string, got ${String(id)}`);
}

/** `Retry-After`: delay-seconds or an HTTP date. Answers ms (>= 0), or undefined when absent/unreadable. */
export function parseRetryAfter(header: unknown, now: number = Date.now()): number | undefined {
  const value = Array.isArray(header) ? header[0] : header;
  if (typeof value === 'number' && Number.isFinite(value) && value >= 0) return Math.round(value * 1000);
  if (typeof value !== 'string' || value.trim() === '') return undefined;
  const v = value.trim();
  if (/^\d+(\.\d+)?$/.test(v)) return Math.round(Number(v) * 1000);
  const at = Date.parse(v);
  if (Number.isNaN(at)) return undefined;
  return Math.max(0, at - now);
}

function abortReason(signal: AbortSignal): unknown {
  return signal.reason ?? Object.assign(new Error('The operation was aborted'), { name: 'AbortError' });
}

function throwIfAborted(signal?: AbortSignal): void {
  if (signal?.aborted) throw abortReason(signal);
}

/** Waits for `p`, or rejects with the signal's reason when it aborts first (`p` itself goes on). */
function abortable<T>(p: Promise<T>, signal?: AbortSignal): Promise<T> {
  if (!signal) return p;
  if (signal.aborted) return Promise.reject(abortReason(signal));
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(abortReason(signal));
    signal.addEventListener('abort', onAbort, { once: true });
    p.then(resolve, reject).finally(() => signal.removeEventListener('abort', onAbort));
  });
}
