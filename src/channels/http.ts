/**
 * One HTTP POST to an escalation channel, as the project's clients do it: one attempt, the outcome classified
 * as transient (429, 5xx, 408, timeout, network: Temporal retries) or permanent (any other 4xx, a redirect, a bad
 * configuration: retrying cannot help). Every text that reaches an error is built here from safe fields; the
 * URL (a Slack webhook URL is itself a secret) and the routing key never appear in one.
 */
import { readFile } from 'node:fs/promises';
import { STATUS_CODES } from 'node:http';
import axios from 'axios';
import { isLoopbackHost } from '../clients/vpsie';
import type { ChannelName } from '../runbook/routing';

export type ChannelErrorKind =
  | 'rate-limited' // 429
  | 'server' // 5xx, 408
  | 'timeout' // no complete answer in time
  | 'network' // refused, reset, DNS
  | 'rejected' // 400 and other 4xx: the service refused this request as sent
  | 'auth' // 401, 403: the key or URL is wrong or revoked
  | 'not-found' // 404, 410: the hook or channel is gone
  | 'redirect' // 3xx: not followed (a redirect could carry the secret URL's body elsewhere)
  | 'config' // the configured URL or key is unusable
  | 'secret-unreadable'; // the secret's file could not be read now

const PERMANENT: ReadonlySet<ChannelErrorKind> = new Set([
  'rejected',
  'auth',
  'not-found',
  'redirect',
  'config',
]);

export const CHANNEL_LABELS: Record<ChannelName, string> = {
  pagerduty: 'PagerDuty',
  slack: 'Slack',
  webhook: 'webhook',
};

export class ChannelError extends Error {
  override name = 'ChannelError';
  readonly channel: ChannelName;
  readonly kind: ChannelErrorKind;
  readonly permanent: boolean;
  readonly status?: number;
  readonly retryAfterMs?: number;

  constructor(
    message: string,
    fields: { channel: ChannelName; kind: ChannelErrorKind; status?: number; retryAfterMs?: number },
  ) {
    super(message);
    this.channel = fields.channel;
    this.kind = fields.kind;
    this.permanent = PERMANENT.has(fields.kind);
    if (fields.status !== undefined) this.status = fields.status;
    if (fields.retryAfterMs !== undefined) this.retryAfterMs = fields.retryAfterMs;
  }
}

/** A secret given as a file (read at every use, so a rotated secret needs no restart) or as the value itself. */
export interface SecretSource {
  /** The environment variable it came from, for messages (`SLACK_WEBHOOK_URL_FILE`). */
  variable: string;
  file?: string;
  value?: string;
}

/** The secret's current value. A file that cannot be read now is transient (a mounted secret being rotated). */
export async function readSecret(channel: ChannelName, source: SecretSource): Promise<string> {
  if (source.file === undefined) {
    if (source.value === undefined || source.value.trim() === '')
      throw new ChannelError(`${CHANNEL_LABELS[channel]}: ${source.variable} is empty`, {
        channel,
        kind: 'config',
      });
    return source.value.trim();
  }
  let text: string;
  try {
    text = (await readFile(source.file, 'utf8')).trim();
  } catch (err) {
    const code = (err as { code?: unknown }).code;
    throw new ChannelError(
      `${CHANNEL_LABELS[channel]}: ${source.variable} (${source.file}) could not be read${typeof code === 'string' ? `: ${code}` : ''}`,
      { channel, kind: 'secret-unreadable' },
    );
  }
  if (text === '')
    throw new ChannelError(`${CHANNEL_LABELS[channel]}: ${source.variable} (${source.file}) is empty`, {
      channel,
      kind: 'config',
    });
  return text;
}

/**
 * Why `text` cannot be a channel's URL, or null. https only (the URL or what is sent to it is a secret), except
 * to a loopback host; no user:password part. Never quotes the URL.
 */
export function channelUrlProblem(text: string): string | null {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    return 'must be an absolute URL';
  }
  if (url.protocol !== 'https:' && !(url.protocol === 'http:' && isLoopbackHost(url.hostname)))
    return 'must use https (http only to a loopback host)';
  if (url.username || url.password) return 'must not contain a user or password';
  return null;
}

/** The parts of a URL that may be secret: the whole, its path and query, and each long path segment. */
export function secretPartsOf(url: string): string[] {
  const parts = [url];
  try {
    const u = new URL(url);
    parts.push(`${u.pathname}${u.search}`, u.search.slice(1));
    parts.push(...u.pathname.split('/').filter((s) => s.length >= 8));
  } catch {
    // not a URL: only the whole is known
  }
  return parts.filter((p) => p.length >= 4);
}

export interface PostOptions {
  /** Deadline of the request (connect, headers and body), ms. */
  timeoutMs: number;
  /** The activity's cancellation. */
  signal?: AbortSignal;
  headers?: Record<string, string>;
  /** Texts to remove from anything that reaches an error (the URL's parts, the routing key). */
  secrets: string[];
}

export interface Answer {
  status: number;
  text: string;
}

export const USER_AGENT = 'vpsie-runbook/0.1.0';
const MAX_ANSWER_BYTES = 64 * 1024;

function redact(text: string, secrets: readonly string[]): string {
  let out = text;
  // longest first, so a part of a longer secret never leaves the rest behind
  for (const s of [...secrets].sort((a, b) => b.length - a.length))
    if (s) out = out.split(s).join('[REDACTED]');
  return out;
}

/** The start of an answer's body, single line, redacted, quoted. */
export function snippet(text: string, secrets: readonly string[]): string {
  const flat = redact(text, secrets).replace(/\s+/g, ' ').trim();
  return JSON.stringify(flat.length > 200 ? `${flat.slice(0, 200)}…` : flat);
}

/**
 * The longest `Retry-After` followed: the escalation's retry policy's own longest interval (one minute), so a
 * channel asking for an hour cannot stretch one escalation's 15 attempts past its retry budget.
 */
const MAX_RETRY_AFTER_MS = 60_000;

function retryAfterMs(header: unknown): number | undefined {
  const v = Array.isArray(header) ? header[0] : header;
  if (typeof v !== 'string' || v.trim() === '') return undefined;
  if (/^\d+$/.test(v.trim())) return Math.min(Number(v.trim()) * 1000, MAX_RETRY_AFTER_MS);
  const at = Date.parse(v);
  return Number.isNaN(at) ? undefined : Math.max(0, Math.min(at - Date.now(), MAX_RETRY_AFTER_MS));
}

/**
 * POSTs `body` as JSON, once. Answers a 2xx; throws a {@link ChannelError} for anything else, transient or
 * permanent as above, or the caller's abort reason.
 */
export async function postJson(
  channel: ChannelName,
  url: string,
  body: unknown,
  opts: PostOptions,
): Promise<Answer> {
  const label = CHANNEL_LABELS[channel];
  const problem = channelUrlProblem(url);
  if (problem) throw new ChannelError(`${label}: the configured URL ${problem}`, { channel, kind: 'config' });
  const controller = new AbortController();
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    controller.abort();
  }, opts.timeoutMs);
  const onAbort = () => controller.abort();
  opts.signal?.addEventListener('abort', onAbort, { once: true });
  let status: number;
  let text: string;
  let retryAfter: unknown;
  try {
    const res = await axios.request<string>({
      method: 'POST',
      url,
      data: JSON.stringify(body),
      headers: { 'Content-Type': 'application/json', 'User-Agent': USER_AGENT, ...opts.headers },
      signal: controller.signal,
      timeout: 0,
      // Statuses and bodies are ours to read: axios never builds an error (which carries the URL) for them.
      validateStatus: () => true,
      responseType: 'text',
      transformResponse: [(d: unknown) => d],
      maxRedirects: 0,
      maxContentLength: MAX_ANSWER_BYTES,
      maxBodyLength: 1024 * 1024,
    });
    status = res.status;
    text = typeof res.data === 'string' ? res.data : '';
    retryAfter = res.headers['retry-after'];
  } catch (err) {
    if (opts.signal?.aborted) throw opts.signal.reason ?? err;
    const code = (err as { code?: unknown }).code;
    if (timedOut || code === 'ECONNABORTED' || code === 'ETIMEDOUT')
      throw new ChannelError(`${label}: no answer within ${opts.timeoutMs} ms (timeout)`, {
        channel,
        kind: 'timeout',
      });
    // Only the error's code: its message may name the host and path.
    throw new ChannelError(`${label}: network error${typeof code === 'string' ? ` ${code}` : ''}`, {
      channel,
      kind: 'network',
    });
  } finally {
    clearTimeout(timer);
    opts.signal?.removeEventListener('abort', onAbort);
  }
  if (status >= 200 && status < 300) return { status, text };
  const said = text.trim() ? `: ${snippet(text, opts.secrets)}` : '';
  const message = `${label}: HTTP ${status}${STATUS_CODES[status] ? ` ${STATUS_CODES[status]}` : ''}${said}`;
  let kind: ChannelErrorKind;
  if (status === 429) kind = 'rate-limited';
  else if (status >= 500 || status === 408) kind = 'server';
  else if (status === 401 || status === 403) kind = 'auth';
  else if (status === 404 || status === 410) kind = 'not-found';
  else if (status >= 300 && status < 400) kind = 'redirect';
  else kind = 'rejected';
  const wait = status === 429 || status === 503 ? retryAfterMs(retryAfter) : undefined;
  throw new ChannelError(message, {
    channel,
    kind,
    status,
    ...(wait !== undefined ? { retryAfterMs: wait } : {}),
  });
}
