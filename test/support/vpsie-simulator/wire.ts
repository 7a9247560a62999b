/**
 * The simulator's wire records, faults and error bodies. Its own types, independent of the project's client, so
 * a wrong field name in the client is caught rather than mirrored.
 */
import { STATUS_CODES } from 'node:http';

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

// ---------------------------------------------------------------------------------------------------------
// Faults and recorded requests
// ---------------------------------------------------------------------------------------------------------

export type Fault =
  /** Answer this status with the API's error body (or `body`), optionally with `Retry-After`. */
  | { type: 'status'; status: number; retryAfter?: number | string; body?: unknown; delayMs?: number }
  /**
   * Answer `status` (default 200) with `{"error": true, "code", "message"}`: how VPSie reports many failures,
   * capacity among them ({@link capacityFault}). `code` defaults to 500, as in the capacity answer the
   * autoscaler's tests record.
   */
  | {
      type: 'api-error';
      message: string;
      code?: number;
      status?: number;
      retryAfter?: number | string;
      delayMs?: number;
    }
  /** Answer as the API would, but with the last `missing` (default 1) items cut from `data`, totals kept. */
  | { type: 'short-list'; missing?: number }
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

/** The message VPSie gives when a cluster has all the workers its plan allows (autoscaler's errors_test.go). */
export function capacityMessage(limit: number): string {
  return `Worker nodes count exceeds the allowed limit ${limit}`;
}

/** The capacity answer as the autoscaler's tests record it: `{"error":true,"code":500,"message":…}`. */
export function capacityFault(limit: number, status = 200): Fault {
  return { type: 'api-error', status, code: 500, message: capacityMessage(limit) };
}

export interface FaultRule {
  /** HTTP method to match; any when omitted. */
  method?: string;
  /**
   * Path relative to `/v2`, without the query: an exact string with `:param` segments and an optional
   * trailing `*` (e.g. `/vm`, `/vm/:id`, `/k8s/cluster/byId/:id`, `/vm*`), or a RegExp tested against the path.
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
  /** Parsed body (JSON or form) of requests that carry one; the client secret of an exchange is left out. */
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

export interface Answer {
  status: number;
  body: unknown;
}

// ---------------------------------------------------------------------------------------------------------
// Error bodies
// ---------------------------------------------------------------------------------------------------------

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

/** The VM API's error body: `{error: <status text>, message, code}`. */
export function errorBody(
  status: number,
  message?: string,
): { error: string; message: string; code: number } {
  return {
    error: STATUS_CODES[status] ?? `HTTP ${status}`,
    message: message ?? DEFAULT_MESSAGES[status] ?? STATUS_CODES[status] ?? `HTTP ${status}`,
    code: status,
  };
}

/** The managed-Kubernetes and auth endpoints' error body: `{error: true, code, message}`. */
export function apiError(status: number, message: string): Answer {
  return { status, body: { error: true, code: status, message } };
}

export function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

export function timestamp(): string {
  return new Date().toISOString();
}

export function compilePath(pattern: string | RegExp): (path: string) => boolean {
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
