/**
 * The project's VPSie API client (axios).
 *
 * - One module owns the wire format, so the base URL and envelope shape can follow whichever API the account
 *   speaks (`https://api.vpsie.com/v2`, used by the autoscaler, or the SDK's `https://api.vpsie.com/apps/v2`).
 * - Every failure is a {@link VPSieApiError} built here from plain fields: it never carries the axios error,
 *   its config or its headers, so the bearer token cannot leak through `String(err)`, `JSON.stringify(err)`,
 *   `util.inspect(err)` or a log line.
 * - `permanent` says whether retrying can help: 401/403/404, other 4xx and malformed bodies are permanent;
 *   429, 5xx, timeouts and network errors are transient. The client retries transient failures itself a few
 *   times (small budget, see {@link DEFAULTS}); what is left is for the caller's retry policy.
 * - No Temporal imports: activities wrap this client and map `permanent` to non-retryable failures.
 */
import axios from 'axios';
import type { AxiosInstance, AxiosResponse } from 'axios';

// ---------------------------------------------------------------------------------------------------------
// Wire types (field names as the VPSie API sends them)
// ---------------------------------------------------------------------------------------------------------

/** VM statuses seen in the API; the API may add others, so any string is accepted. */
export type VMStatus = 'running' | 'stopped' | 'suspended' | 'provisioning' | 'error' | (string & {});

export interface VM {
  /** Numeric VM id: what `VPSieNode.spec.vpsieInstanceID` holds. Validated to be a positive integer. */
  id: number;
  /** UUID of the VM. */
  identifier: string;
  name: string;
  hostname: string;
  /** Validated to be a string. */
  status: VMStatus;
  cpu: number;
  /** MB */
  ram: number;
  /** GB */
  ssd: number;
  default_ip: string | null;
  default_ipv6: string | null;
  /** Offering id. */
  boxsize_id: number;
  datacenter_id: number;
  os_name: string;
  os_version: string;
  created_on: string;
  last_updated: string;
  tags: string[];
  notes: string;
}

/**
 * Catalog ids (offerings, datacenters, images) are numeric in some API versions and strings in others; the
 * NodeGroup spec stores them as strings. The client normalises them to strings so callers compare
 * `offering.id === nodeGroup.spec.offeringIDs[i]` (and `String(vm.boxsize_id) === offering.id`).
 */
export interface Offering {
  id: string;
  name: string;
  cpu: number;
  /** MB */
  ram: number;
  /** GB */
  disk: number;
  price: number;
  available: boolean;
  datacenter_id: string;
}

export interface Datacenter {
  id: string;
  name: string;
  code: string;
  available: boolean;
}

export interface Image {
  id: string;
  name: string;
  version: string;
  distribution: string;
  available: boolean;
}

export interface SSHKey {
  /** Numeric id, as the official SDK declares it. */
  id: number;
  /** UUID; `GET /sshkey/{identifier}` takes this. */
  identifier: string;
  name: string;
  created_on: string;
}

export interface QuotaItem {
  used: number;
  limit: number;
}

/**
 * Account quota. NOTE: `GET /account/quota` and this shape are the project simulator's; the real VPSie
 * account endpoint and its shape must be confirmed against the user's account before relying on it in
 * production (only this method and its validator need to change).
 */
export interface AccountQuota {
  vms: QuotaItem;
  cpu: QuotaItem;
  ramMB: QuotaItem;
}

export type VMAction = 'start' | 'stop' | 'restart';

// ---------------------------------------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------------------------------------

export type VPSieErrorKind =
  | 'auth' // 401, or the token provider returned no usable token
  | 'forbidden' // 403
  | 'not-found' // 404
  | 'rejected' // any other 4xx (400, 409, 422, ...): the API refused this request as sent
  | 'rate-limited' // 429
  | 'server' // 5xx
  | 'timeout' // no complete answer within timeoutMs
  | 'network' // connection refused / reset / DNS / dropped mid-body
  | 'malformed'; // the answer is not what the API promises (not JSON, wrong shape, unexpected status)

const PERMANENT_KINDS: ReadonlySet<VPSieErrorKind> = new Set([
  'auth',
  'forbidden',
  'not-found',
  'rejected',
  'malformed',
]);

export interface VPSieApiErrorFields {
  kind: VPSieErrorKind;
  method: string;
  /** Path relative to the base URL, with its query string (never contains credentials). */
  path: string;
  status?: number;
  /** The API's `code` from its `{error, message, code}` body, or the system error code (`ECONNRESET`). */
  code?: string;
  /** The API's `message` (or `error`) text, when the body carried one. */
  apiMessage?: string;
  /** How many HTTP attempts were made before giving up. */
  attempts?: number;
  /** For 429/503: how long the API asked us to wait, in ms (from `Retry-After`). */
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
  readonly attempts?: number;
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
    if (fields.attempts !== undefined) this.attempts = fields.attempts;
    if (fields.retryAfterMs !== undefined) this.retryAfterMs = fields.retryAfterMs;
  }

  /** Plain, secret-free form for logs and for activity failure details. */
  toJSON(): Record<string, unknown> {
    return {
      name: this.name,
      message: this.message,
      kind: this.kind,
      permanent: this.permanent,
      method: this.method,
      path: this.path,
      status: this.status,
      code: this.code,
      apiMessage: this.apiMessage,
      attempts: this.attempts,
      retryAfterMs: this.retryAfterMs,
    };
  }
}

export function isVPSieApiError(err: unknown): err is VPSieApiError {
  return err instanceof VPSieApiError;
}

// ---------------------------------------------------------------------------------------------------------
// Options
// ---------------------------------------------------------------------------------------------------------

export type TokenSource = string | (() => Promise<string>);

export interface VPSieClientOptions {
  /** API base URL, e.g. `https://api.vpsie.com/v2` (default) or `https://api.vpsie.com/apps/v2`. */
  baseUrl?: string;
  /**
   * Bearer token, or a provider called before every HTTP attempt (so a rotated secret is picked up without a
   * restart; cache inside the provider if reading it is expensive).
   */
  token: TokenSource;
  /** Whole-attempt deadline (connect + headers + body), ms. */
  timeoutMs?: number;
  /** Extra attempts after the first, for transient failures (429, 5xx, timeout, network). */
  maxRetries?: number;
  /** First backoff step, ms; doubles per retry, with jitter (half fixed, half random). */
  retryBaseDelayMs?: number;
  /** Upper bound of one computed backoff step, ms. */
  retryMaxDelayMs?: number;
  /**
   * The longest `Retry-After` the client waits for in-process, ms. A longer one is not slept through here:
   * the error is thrown at once with `retryAfterMs`, for the caller's (durable) retry policy to honour.
   */
  maxRetryAfterMs?: number;
  /** `per_page` asked for when listing. */
  pageSize?: number;
  /** Listing stops with a `malformed` error past this many pages (guards against a pagination loop). */
  maxPages?: number;
  /** Largest accepted response body, bytes. */
  maxResponseBytes?: number;
  userAgent?: string;
  /** Called before each retry sleep (for logs/metrics/heartbeats). Never receives the token. */
  onRetry?: (info: RetryInfo) => void;
}

export interface RetryInfo {
  method: string;
  path: string;
  /** The attempt that failed (1-based). */
  attempt: number;
  delayMs: number;
  kind: VPSieErrorKind;
  status?: number;
}

/** Per-call options. */
export interface CallOptions {
  /**
   * Aborts the call (in flight or sleeping between retries), e.g. an activity's cancellation signal. On abort
   * the signal's `reason` is thrown as is.
   */
  signal?: AbortSignal;
}

/** Production defaults. Tests pass small values through the constructor; the code paths are the same. */
export const DEFAULTS = {
  baseUrl: 'https://api.vpsie.com/v2',
  timeoutMs: 15_000,
  maxRetries: 3,
  retryBaseDelayMs: 500,
  retryMaxDelayMs: 8_000,
  maxRetryAfterMs: 60_000,
  pageSize: 100,
  maxPages: 1_000,
  maxResponseBytes: 10 * 1024 * 1024,
  userAgent: 'vpsie-runbook/0.1.0',
} as const;

function optionError(option: string, problem: string): Error {
  return new Error(`VPSieClient: option "${option}" ${problem}`);
}

function checkInt(option: string, value: unknown, min: number): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min) {
    throw optionError(
      option,
      `must be an integer >= ${min}, got ${typeof value === 'number' ? value : typeof value}`,
    );
  }
  return value;
}

// Header values must not carry control characters; checked so that Node's own header validation never
// gets a chance to build an error around the value.
// eslint-disable-next-line no-control-regex
const BAD_TOKEN_CHARS = /[\u0000-\u001f\u007f\s]/;

// ---------------------------------------------------------------------------------------------------------
// Client
// ---------------------------------------------------------------------------------------------------------

interface Resolved {
  baseUrl: string;
  timeoutMs: number;
  maxRetries: number;
  retryBaseDelayMs: number;
  retryMaxDelayMs: number;
  maxRetryAfterMs: number;
  pageSize: number;
  maxPages: number;
  maxResponseBytes: number;
  userAgent: string;
}

interface Pagination {
  total?: number;
  count?: number;
  per_page?: number;
  current_page?: number;
  total_pages: number;
}

type Json = unknown;

export class VPSieClient {
  readonly baseUrl: string;
  private readonly opts: Resolved;
  private readonly http: AxiosInstance;
  // A #private field: not shown by util.inspect or JSON.stringify of the client.
  readonly #tokenSource: TokenSource;
  private readonly onRetry?: (info: RetryInfo) => void;

  constructor(options: VPSieClientOptions) {
    if (options === null || typeof options !== 'object') {
      throw new Error('VPSieClient: options object is required');
    }
    const baseUrlRaw = options.baseUrl ?? DEFAULTS.baseUrl;
    if (typeof baseUrlRaw !== 'string' || baseUrlRaw.trim() === '') {
      throw optionError('baseUrl', 'must be a non-empty http(s) URL');
    }
    let parsed: URL;
    try {
      parsed = new URL(baseUrlRaw);
    } catch {
      throw optionError('baseUrl', 'is not a valid URL');
    }
    if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') {
      throw optionError('baseUrl', `must use http or https, got ${parsed.protocol}`);
    }
    if (parsed.username || parsed.password) {
      throw optionError('baseUrl', 'must not contain credentials; pass the token through "token"');
    }
    if (parsed.search || parsed.hash) {
      throw optionError('baseUrl', 'must not contain a query string or fragment');
    }
    const baseUrl = parsed.toString().replace(/\/+$/, '');

    const token = options.token;
    if (typeof token === 'string') {
      if (token.trim() === '')
        throw optionError('token', 'must be a non-empty string or a provider function');
      if (BAD_TOKEN_CHARS.test(token))
        throw optionError('token', 'must not contain whitespace or control characters');
    } else if (typeof token !== 'function') {
      throw optionError('token', 'must be a non-empty string or a provider function');
    }

    const timeoutMs = checkInt('timeoutMs', options.timeoutMs ?? DEFAULTS.timeoutMs, 1);
    const maxRetries = checkInt('maxRetries', options.maxRetries ?? DEFAULTS.maxRetries, 0);
    const retryBaseDelayMs = checkInt(
      'retryBaseDelayMs',
      options.retryBaseDelayMs ?? DEFAULTS.retryBaseDelayMs,
      0,
    );
    const retryMaxDelayMs = checkInt(
      'retryMaxDelayMs',
      options.retryMaxDelayMs ?? DEFAULTS.retryMaxDelayMs,
      0,
    );
    const maxRetryAfterMs = checkInt(
      'maxRetryAfterMs',
      options.maxRetryAfterMs ?? DEFAULTS.maxRetryAfterMs,
      0,
    );
    const pageSize = checkInt('pageSize', options.pageSize ?? DEFAULTS.pageSize, 1);
    const maxPages = checkInt('maxPages', options.maxPages ?? DEFAULTS.maxPages, 1);
    const maxResponseBytes = checkInt(
      'maxResponseBytes',
      options.maxResponseBytes ?? DEFAULTS.maxResponseBytes,
      1,
    );
    const userAgent = options.userAgent ?? DEFAULTS.userAgent;
    if (typeof userAgent !== 'string' || userAgent.trim() === '' || /[\r\n]/.test(userAgent)) {
      throw optionError('userAgent', 'must be a non-empty single-line string');
    }
    if (options.onRetry !== undefined && typeof options.onRetry !== 'function') {
      throw optionError('onRetry', 'must be a function');
    }

    this.baseUrl = baseUrl;
    this.#tokenSource = token;
    this.onRetry = options.onRetry;
    this.opts = {
      baseUrl,
      timeoutMs,
      maxRetries,
      retryBaseDelayMs,
      retryMaxDelayMs,
      maxRetryAfterMs,
      pageSize,
      maxPages,
      maxResponseBytes,
      userAgent,
    };
    this.http = axios.create({
      baseURL: baseUrl,
      // The deadline is enforced by our own AbortController (covers slow bodies, not only idle sockets).
      timeout: 0,
      // Status handling and JSON parsing are ours: axios never throws for an HTTP status, so no AxiosError
      // (which carries the request config and its Authorization header) is ever created for one.
      validateStatus: () => true,
      responseType: 'text',
      transformResponse: [(data: unknown) => data],
      // A redirect could carry the Authorization header elsewhere; the API does not redirect.
      maxRedirects: 0,
      maxContentLength: maxResponseBytes,
      headers: { Accept: 'application/json', 'User-Agent': userAgent },
    });
  }

  // ------------------------------------------------------------------------------------------------------
  // VMs
  // ------------------------------------------------------------------------------------------------------

  /** All VMs of the account, following pagination across every page (deduplicated by id). */
  async listVMs(call?: CallOptions): Promise<VM[]> {
    return this.listAll('/vm', (item, ctx) => validateVM(item, ctx), call);
  }

  /** The VM, or `null` when the API answers 404 (no such VM, e.g. already terminated). */
  async getVM(id: number, call?: CallOptions): Promise<VM | null> {
    const path = `/vm/${vmId('getVM', id)}`;
    const body = await this.requestOrNull('GET', path, undefined, call);
    if (body === null) return null;
    return validateVM(unwrapObject(body, { method: 'GET', path }), { method: 'GET', path });
  }

  /**
   * Terminates the VM. Idempotent: a 404 means the VM is already gone, which is the wanted end state, and
   * answers `{ alreadyGone: true }`.
   */
  async deleteVM(id: number, call?: CallOptions): Promise<{ alreadyGone: boolean }> {
    const path = `/vm/${vmId('deleteVM', id)}`;
    const body = await this.requestOrNull('DELETE', path, undefined, call);
    return { alreadyGone: body === null };
  }

  /**
   * Runs a power action. A 404 (unknown VM) is a permanent `not-found` error here: unlike delete, the wanted
   * state cannot be reached. Note that transient failures are retried like every call; `start`/`stop` are
   * idempotent, a retried `restart` may restart twice.
   */
  async vmAction(id: number, action: VMAction, call?: CallOptions): Promise<void> {
    if (action !== 'start' && action !== 'stop' && action !== 'restart') {
      throw new RangeError(`vmAction: action must be start, stop or restart, got ${String(action)}`);
    }
    await this.request('POST', `/vm/${vmId('vmAction', id)}/action`, { action }, call);
  }

  // ------------------------------------------------------------------------------------------------------
  // Catalog
  // ------------------------------------------------------------------------------------------------------

  async listOfferings(call?: CallOptions): Promise<Offering[]> {
    return this.listAll('/offerings', (item, ctx) => validateOffering(item, ctx), call);
  }

  /** The offering, or `null` on 404 (the id names no offering: a configuration finding, not a failure). */
  async getOffering(id: string | number, call?: CallOptions): Promise<Offering | null> {
    const path = `/offerings/${catalogId('getOffering', id)}`;
    const body = await this.requestOrNull('GET', path, undefined, call);
    if (body === null) return null;
    return validateOffering(unwrapObject(body, { method: 'GET', path }), { method: 'GET', path });
  }

  async listDatacenters(call?: CallOptions): Promise<Datacenter[]> {
    return this.listAll('/datacenters', (item, ctx) => validateDatacenter(item, ctx), call);
  }

  async listImages(call?: CallOptions): Promise<Image[]> {
    return this.listAll('/images', (item, ctx) => validateImage(item, ctx), call);
  }

  async listSSHKeys(call?: CallOptions): Promise<SSHKey[]> {
    return this.listAll('/sshkeys', (item, ctx) => validateSSHKey(item, ctx), call);
  }

  /** The SSH key by identifier (or id), or `null` on 404. */
  async getSSHKey(identifier: string | number, call?: CallOptions): Promise<SSHKey | null> {
    const path = `/sshkey/${catalogId('getSSHKey', identifier)}`;
    const body = await this.requestOrNull('GET', path, undefined, call);
    if (body === null) return null;
    return validateSSHKey(unwrapObject(body, { method: 'GET', path }), { method: 'GET', path });
  }

  /** See {@link AccountQuota}: the endpoint and shape must be confirmed against the real account API. */
  async getAccountQuota(call?: CallOptions): Promise<AccountQuota> {
    const path = '/account/quota';
    const ctx = { method: 'GET', path };
    const obj = unwrapObject(await this.request('GET', path, undefined, call), ctx);
    const item = (key: string): QuotaItem => {
      const v = obj[key];
      if (!isRecord(v) || !isFiniteNumber(v.used) || !isFiniteNumber(v.limit)) {
        throw malformed(ctx, `"${key}" must be {used: number, limit: number}`);
      }
      return { used: v.used, limit: v.limit };
    };
    return { vms: item('vms'), cpu: item('cpu'), ramMB: item('ramMB') };
  }

  // ------------------------------------------------------------------------------------------------------
  // Plumbing
  // ------------------------------------------------------------------------------------------------------

  private async listAll<T extends { id: unknown }>(
    basePath: string,
    validate: (item: unknown, ctx: ErrCtx) => T,
    call?: CallOptions,
  ): Promise<T[]> {
    const out: T[] = [];
    const seen = new Set<unknown>();
    let page = 1;
    let totalPages = 1;
    do {
      if (page > this.opts.maxPages) {
        throw malformed(
          { method: 'GET', path: basePath },
          `pagination did not end within ${this.opts.maxPages} pages (total_pages ${totalPages})`,
        );
      }
      const path = `${basePath}?page=${page}&per_page=${this.opts.pageSize}`;
      const ctx = { method: 'GET', path };
      const body = await this.request('GET', path, undefined, call);
      if (!isRecord(body) || !Array.isArray(body.data)) {
        throw malformed(ctx, 'expected an object with a "data" array');
      }
      for (const raw of body.data) {
        const item = validate(raw, ctx);
        // Items shift between pages when something is deleted while we list: keep the first copy.
        if (!seen.has(item.id)) {
          seen.add(item.id);
          out.push(item);
        }
      }
      const pagination = readPagination(body.pagination, ctx);
      // No pagination block means the endpoint answered everything at once.
      totalPages = pagination ? pagination.total_pages : page;
      page += 1;
    } while (page <= totalPages);
    return out;
  }

  /** Like {@link request}, but a 404 answers `null` instead of throwing. */
  private async requestOrNull(
    method: string,
    path: string,
    data: Json | undefined,
    call: CallOptions | undefined,
  ): Promise<Json | null> {
    try {
      return await this.request(method, path, data, call);
    } catch (err) {
      if (err instanceof VPSieApiError && err.kind === 'not-found') return null;
      throw err;
    }
  }

  /** One logical call: attempts with retries on transient failures. Answers the parsed JSON body. */
  private async request(
    method: string,
    path: string,
    data: Json | undefined,
    call: CallOptions | undefined,
  ): Promise<Json> {
    const signal = call?.signal;
    for (let attempt = 1; ; attempt++) {
      throwIfAborted(signal);
      let failure: VPSieApiError;
      try {
        return await this.attempt(method, path, data, signal);
      } catch (err) {
        if (!(err instanceof VPSieApiError)) throw err; // the caller's abort reason
        failure = err;
      }
      const base = { kind: failure.kind, method, path, status: failure.status, code: failure.code };
      const done = (extra: Partial<VPSieApiErrorFields> = {}, note = ''): VPSieApiError =>
        new VPSieApiError(failure.message + note, {
          ...base,
          apiMessage: failure.apiMessage,
          retryAfterMs: failure.retryAfterMs,
          permanent: failure.permanent,
          attempts: attempt,
          ...extra,
        });
      if (failure.permanent) throw done();
      if (attempt > this.opts.maxRetries) {
        throw done({}, attempt > 1 ? ` (gave up after ${attempt} attempts)` : '');
      }
      let delayMs: number;
      if (failure.retryAfterMs !== undefined) {
        if (failure.retryAfterMs > this.opts.maxRetryAfterMs) {
          throw done(
            {},
            ` (Retry-After ${Math.ceil(failure.retryAfterMs / 1000)} s exceeds the in-process limit)`,
          );
        }
        delayMs = failure.retryAfterMs;
      } else {
        const step = Math.min(this.opts.retryMaxDelayMs, this.opts.retryBaseDelayMs * 2 ** (attempt - 1));
        delayMs = Math.round(step / 2 + Math.random() * (step / 2));
      }
      if (this.onRetry) {
        try {
          this.onRetry({ method, path, attempt, delayMs, kind: failure.kind, status: failure.status });
        } catch {
          // an observer must not change the outcome
        }
      }
      await sleep(delayMs, signal);
    }
  }

  private async resolveToken(method: string, path: string): Promise<string> {
    if (typeof this.#tokenSource === 'string') return this.#tokenSource;
    let token: unknown;
    try {
      token = await this.#tokenSource();
    } catch (err) {
      // Reading the secret failing (e.g. the apiserver blinked) is not proof the credential is bad: transient.
      const reason = err instanceof Error ? err.message : String(err);
      throw new VPSieApiError(
        `VPSie API ${method} ${path}: the token provider failed: ${this.redact(reason)}`,
        {
          kind: 'auth',
          method,
          path,
          permanent: false,
        },
      );
    }
    if (typeof token !== 'string' || token.trim() === '' || BAD_TOKEN_CHARS.test(token)) {
      throw new VPSieApiError(
        `VPSie API ${method} ${path}: the token provider returned no usable token (empty, not a string, or with whitespace)`,
        { kind: 'auth', method, path, permanent: true },
      );
    }
    return token;
  }

  /** One HTTP attempt. Throws only VPSieApiError, or the caller's abort reason. */
  private async attempt(
    method: string,
    path: string,
    data: Json | undefined,
    signal?: AbortSignal,
  ): Promise<Json> {
    const token = await this.resolveToken(method, path);
    const ctx: ErrCtx = { method, path };

    const controller = new AbortController();
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      controller.abort();
    }, this.opts.timeoutMs);
    const onCallerAbort = () => controller.abort();
    signal?.addEventListener('abort', onCallerAbort, { once: true });

    let res: AxiosResponse<string>;
    try {
      res = await this.http.request<string>({
        method,
        url: path,
        data: data === undefined ? undefined : JSON.stringify(data),
        headers: {
          Authorization: `Bearer ${token}`,
          ...(data === undefined ? {} : { 'Content-Type': 'application/json' }),
        },
        signal: controller.signal,
      });
    } catch (err) {
      if (signal?.aborted) throw abortReason(signal);
      // Build our own error from the few safe fields; the axios error (config, headers) is dropped here.
      const code = readStringProp(err, 'code');
      const rawMessage = err instanceof Error ? err.message : String(err);
      if (timedOut || code === 'ECONNABORTED' || code === 'ETIMEDOUT') {
        throw new VPSieApiError(
          `VPSie API ${method} ${path}: no answer within ${this.opts.timeoutMs} ms (timeout)`,
          {
            ...ctx,
            kind: 'timeout',
            code: 'ETIMEDOUT',
          },
        );
      }
      if (/maxContentLength/.test(rawMessage)) {
        throw malformed(ctx, `response body larger than ${this.opts.maxResponseBytes} bytes`);
      }
      throw new VPSieApiError(
        `VPSie API ${method} ${path}: network error${code ? ` ${code}` : ''}: ${this.redact(rawMessage, token)}`,
        { ...ctx, kind: 'network', ...(code ? { code } : {}) },
      );
    } finally {
      clearTimeout(timer);
      signal?.removeEventListener('abort', onCallerAbort);
    }

    const status = res.status;
    const text = typeof res.data === 'string' ? res.data : '';
    if (status >= 200 && status < 300) {
      if (status === 204 || text.trim() === '') return {};
      try {
        return JSON.parse(text) as Json;
      } catch {
        throw malformed(
          ctx,
          `HTTP ${status} with a body that is not JSON: ${this.snippet(text, token)}`,
          status,
        );
      }
    }
    throw this.statusError(ctx, status, text, res.headers['retry-after'], token);
  }

  private statusError(
    ctx: ErrCtx,
    status: number,
    text: string,
    retryAfterHeader: unknown,
    token: string,
  ): VPSieApiError {
    const redact = (t: string) => this.redact(t, token);
    let kind: VPSieErrorKind;
    if (status === 401) kind = 'auth';
    else if (status === 403) kind = 'forbidden';
    else if (status === 404) kind = 'not-found';
    else if (status === 429) kind = 'rate-limited';
    else if (status >= 500 && status <= 599) kind = 'server';
    else if (status >= 400 && status <= 499) kind = 'rejected';
    else kind = 'malformed'; // 1xx/3xx: nothing the API is documented to send

    // The API's error body: {error, message, code}; `error` is a string or a boolean depending on the API.
    let apiMessage: string | undefined;
    let apiError: string | undefined;
    let code: string | undefined;
    let detail = '';
    let parsed: unknown;
    try {
      parsed = text.trim() === '' ? undefined : JSON.parse(text);
    } catch {
      parsed = undefined;
    }
    if (isRecord(parsed)) {
      if (typeof parsed.message === 'string' && parsed.message !== '') apiMessage = redact(parsed.message);
      if (typeof parsed.error === 'string' && parsed.error !== '') apiError = redact(parsed.error);
      if (typeof parsed.code === 'string' || typeof parsed.code === 'number')
        code = redact(String(parsed.code));
      const parts = [apiError, apiMessage && apiMessage !== apiError ? apiMessage : undefined].filter(
        Boolean,
      );
      if (parts.length > 0) detail = `: ${parts.join(': ')}`;
      if (code !== undefined) detail += ` (code ${code})`;
    } else if (text.trim() !== '') {
      detail = `: ${this.snippet(text, token)}`;
    }

    const retryAfterMs = status === 429 || status === 503 ? parseRetryAfter(retryAfterHeader) : undefined;
    const label = STATUS_TEXT[status] ? `${status} ${STATUS_TEXT[status]}` : String(status);
    return new VPSieApiError(`VPSie API ${ctx.method} ${ctx.path} failed: HTTP ${label}${detail}`, {
      ...ctx,
      kind,
      status,
      ...(code !== undefined ? { code } : {}),
      ...(apiMessage !== undefined || apiError !== undefined ? { apiMessage: apiMessage ?? apiError } : {}),
      ...(retryAfterMs !== undefined ? { retryAfterMs } : {}),
    });
  }

  /** Removes the token (this attempt's, and the static one) from text that goes into an error. */
  private redact(text: string, token?: string): string {
    let out = text;
    for (const secret of [token, typeof this.#tokenSource === 'string' ? this.#tokenSource : undefined]) {
      if (secret) out = out.split(secret).join('[REDACTED]');
    }
    return out;
  }

  private snippet(text: string, token: string): string {
    // Redact before cutting, so a token straddling the cut cannot survive in part.
    const flat = this.redact(text, token).replace(/\s+/g, ' ').trim();
    return JSON.stringify(flat.length > 200 ? `${flat.slice(0, 200)}…` : flat);
  }
}

// ---------------------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------------------

interface ErrCtx {
  method: string;
  path: string;
}

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

function malformed(ctx: ErrCtx, problem: string, status?: number): VPSieApiError {
  return new VPSieApiError(`VPSie API ${ctx.method} ${ctx.path}: malformed response: ${problem}`, {
    ...ctx,
    kind: 'malformed',
    ...(status !== undefined ? { status } : {}),
  });
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function isFiniteNumber(v: unknown): v is number {
  return typeof v === 'number' && Number.isFinite(v);
}

function readStringProp(v: unknown, key: string): string | undefined {
  if (typeof v !== 'object' || v === null) return undefined;
  const value = (v as Record<string, unknown>)[key];
  return typeof value === 'string' ? value : undefined;
}

function vmId(fn: string, id: unknown): number {
  if (typeof id !== 'number' || !Number.isInteger(id) || id <= 0) {
    throw new RangeError(`${fn}: VM id must be a positive integer, got ${String(id)}`);
  }
  return id;
}

function catalogId(fn: string, id: unknown): string {
  if (typeof id === 'number' && Number.isInteger(id) && id > 0) return String(id);
  if (typeof id === 'string' && id.trim() !== '') return encodeURIComponent(id);
  throw new RangeError(`${fn}: id must be a positive integer or a non-empty string, got ${String(id)}`);
}

/** Single objects come as `{data: {...}}` (SDK style, `error: false` beside it) or bare. */
function unwrapObject(body: unknown, ctx: ErrCtx): Record<string, unknown> {
  if (isRecord(body) && isRecord(body.data)) return body.data;
  if (isRecord(body) && 'id' in body) return body;
  throw malformed(ctx, 'expected an object (or {data: object})');
}

function readPagination(v: unknown, ctx: ErrCtx): Pagination | undefined {
  if (v === undefined || v === null) return undefined;
  if (
    !isRecord(v) ||
    typeof v.total_pages !== 'number' ||
    !Number.isInteger(v.total_pages) ||
    v.total_pages < 0
  ) {
    throw malformed(ctx, '"pagination.total_pages" must be a non-negative integer');
  }
  return v as unknown as Pagination;
}

function validateVM(item: unknown, ctx: ErrCtx): VM {
  if (!isRecord(item)) throw malformed(ctx, 'VM entry is not an object');
  if (typeof item.id !== 'number' || !Number.isInteger(item.id) || item.id <= 0) {
    throw malformed(ctx, `VM "id" must be a positive integer, got ${JSON.stringify(item.id) ?? 'nothing'}`);
  }
  if (typeof item.status !== 'string') throw malformed(ctx, `VM ${item.id} has no string "status"`);
  return item as unknown as VM;
}

function normaliseCatalogId(
  item: unknown,
  what: string,
  ctx: ErrCtx,
): Record<string, unknown> & { id: string } {
  if (!isRecord(item)) throw malformed(ctx, `${what} entry is not an object`);
  const id = item.id;
  if (!((typeof id === 'number' && Number.isFinite(id)) || (typeof id === 'string' && id !== ''))) {
    throw malformed(ctx, `${what} "id" must be a number or a non-empty string`);
  }
  return { ...item, id: String(id) };
}

function validateOffering(item: unknown, ctx: ErrCtx): Offering {
  const o = normaliseCatalogId(item, 'offering', ctx);
  if (o.datacenter_id !== undefined && o.datacenter_id !== null) o.datacenter_id = String(o.datacenter_id);
  return o as unknown as Offering;
}

function validateDatacenter(item: unknown, ctx: ErrCtx): Datacenter {
  return normaliseCatalogId(item, 'datacenter', ctx) as unknown as Datacenter;
}

function validateImage(item: unknown, ctx: ErrCtx): Image {
  return normaliseCatalogId(item, 'image', ctx) as unknown as Image;
}

function validateSSHKey(item: unknown, ctx: ErrCtx): SSHKey {
  if (!isRecord(item)) throw malformed(ctx, 'SSH key entry is not an object');
  if (typeof item.id !== 'number' || !Number.isInteger(item.id)) {
    throw malformed(ctx, 'SSH key "id" must be an integer');
  }
  if (typeof item.identifier !== 'string')
    throw malformed(ctx, `SSH key ${item.id} has no string "identifier"`);
  return item as unknown as SSHKey;
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

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) {
      reject(abortReason(signal));
      return;
    }
    const onAbort = () => {
      clearTimeout(timer);
      reject(abortReason(signal as AbortSignal));
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}
