/**
 * A local HTTP sink (node:http on 127.0.0.1, random port) that plays the three escalation services the way
 * their documentation describes them, checks every payload with zod against that documented shape and its
 * limits, and keeps a record of every request. Written from the services' documentation, not from the
 * project's code:
 *
 *   PagerDuty Events API v2   POST /v2/enqueue  {routing_key (32 characters), event_action trigger|acknowledge|
 *                             resolve, dedup_key (≤ 255), payload {summary (≤ 1024), source, severity critical|
 *                             error|warning|info, timestamp?, component?, group?, class?, custom_details?}}, the
 *                             whole event ≤ 512 KB. 202 {status: "success", message: "Event processed", dedup_key};
 *                             400 {status: "invalid event", message, errors}. A trigger whose dedup_key names an
 *                             open incident joins it (no new incident); resolve closes it.
 *   Slack incoming webhook    POST /services/T…/B…/<secret>  {text, blocks?}: text 1..40000 characters and
 *                             readable (no JSON dump outside code spans), mrkdwn with <, > and & escaped, at most
 *                             50 blocks (header plain_text ≤ 150, section text ≤ 3000, ≤ 10 fields of ≤ 2000,
 *                             context ≤ 10 elements). 200 "ok"; 400 "invalid_payload"; unknown hook 404
 *                             "no_service".
 *   Generic webhook           POST /hooks/<secret>  the project's documents (README "Escalation channels"):
 *                             `vpsie-runbook.escalation` and `vpsie-runbook.approval-pending`, version 1, with an
 *                             `Idempotency-Key` header. 202 {accepted: true}.
 *
 * Faults ({@link EscalationSink.fail}), per service, for the next N requests: any status (429 with Retry-After,
 * 5xx, 400, …), `hang` (never answers), `accept-then-hang` (processes the request, then never answers: a lost
 * answer). A fault answers only a request whose payload passed the checks, so a test sees its payload was valid.
 */
import { randomBytes } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { writeFile } from 'node:fs/promises';
import http from 'node:http';
import { performance } from 'node:perf_hooks';
import { z } from 'zod';
import { join } from 'node:path';
import type { ChannelsConfig } from '../../src/channels';
import type { ChannelName, Routes } from '../../src/runbook/routing';
import { closeNow, listenOnLoopback } from './loopback-server';
import { secret } from './secrets';

export type SinkService = 'pagerduty' | 'slack' | 'webhook';

export type SinkFault =
  { status: number; retryAfter?: string; body?: string } | { hang: true } | { acceptThenHang: true };

export interface SinkRequest {
  seq: number;
  /** When it arrived (ms, performance.now()). */
  at: number;
  service: SinkService | 'unknown';
  method: string;
  path: string;
  headers: http.IncomingHttpHeaders;
  bytes: number;
  /** The parsed body; undefined when it was not JSON. */
  body: unknown;
  /** What the checks found wrong; empty when the payload passed. */
  problems: string[];
  /** The status answered, or 'hang'. */
  answer: number | 'hang';
  /** The answer came from an injected fault. */
  injected: boolean;
  /** The payload was processed (an incident opened or joined, a message or document stored). */
  accepted: boolean;
}

export interface Incident {
  dedupKey: string;
  status: 'triggered' | 'resolved';
  /** How many triggers joined it (1 = paged once). */
  triggers: number;
  resolves: number;
  summary: string;
  severity: string;
}

// ---------------------------------------------------------------------------------------------------------
// The documented shapes
// ---------------------------------------------------------------------------------------------------------

export const PAGERDUTY_MAX_EVENT_BYTES = 512 * 1024;

const pagerDutyPayload = z
  .object({
    summary: z.string().min(1).max(1024),
    source: z.string().min(1).max(255),
    severity: z.enum(['critical', 'error', 'warning', 'info']),
    timestamp: z.iso.datetime({ offset: true }).optional(),
    component: z.string().min(1).optional(),
    group: z.string().min(1).optional(),
    class: z.string().min(1).optional(),
    custom_details: z.record(z.string(), z.unknown()).optional(),
  })
  .strict();

const routingKey = z.string().length(32);
const dedupKey = z.string().min(1).max(255);

export const pagerDutyEvent = z.discriminatedUnion('event_action', [
  z
    .object({
      routing_key: routingKey,
      event_action: z.literal('trigger'),
      dedup_key: dedupKey.optional(),
      client: z.string().optional(),
      client_url: z.string().url().optional(),
      payload: pagerDutyPayload,
    })
    .strict(),
  z
    .object({
      routing_key: routingKey,
      event_action: z.enum(['acknowledge', 'resolve']),
      dedup_key: dedupKey,
    })
    .strict(),
]);

const mrkdwn = (max: number) =>
  z.object({ type: z.literal('mrkdwn'), text: z.string().min(1).max(max) }).strict();
const slackBlock = z.discriminatedUnion('type', [
  z
    .object({
      type: z.literal('header'),
      text: z
        .object({
          type: z.literal('plain_text'),
          text: z.string().min(1).max(150),
          emoji: z.boolean().optional(),
        })
        .strict(),
    })
    .strict(),
  z
    .object({
      type: z.literal('section'),
      text: mrkdwn(3000).optional(),
      fields: z.array(mrkdwn(2000)).min(1).max(10).optional(),
    })
    .strict()
    .refine((s) => s.text !== undefined || s.fields !== undefined, 'a section needs text or fields'),
  z.object({ type: z.literal('context'), elements: z.array(mrkdwn(3000)).min(1).max(10) }).strict(),
  z.object({ type: z.literal('divider') }).strict(),
]);
export const slackMessage = z
  .object({ text: z.string().min(1).max(40_000), blocks: z.array(slackBlock).max(50).optional() })
  .strict();

/** Text a person can read: outside code spans no JSON, and mrkdwn's <, > and & escaped (links aside). */
export function readabilityProblems(text: string, where: string): string[] {
  const problems: string[] = [];
  const prose = text.replace(/```[\s\S]*?```/g, '').replace(/`[^`]*`/g, '');
  if (/^\s*[[{]/.test(prose) || /\{\s*"/.test(prose) || /"\s*:\s*[[{"]/.test(prose))
    problems.push(`${where}: reads like JSON, not like a message`);
  try {
    const parsed: unknown = JSON.parse(text);
    if (typeof parsed === 'object' && parsed !== null) problems.push(`${where}: is a JSON document`);
  } catch {
    // not JSON: good
  }
  if (/<(?![@#!]|https?:|mailto:)/.test(text)) problems.push(`${where}: an unescaped "<"`);
  if (/&(?!amp;|lt;|gt;)/.test(text)) problems.push(`${where}: an unescaped "&"`);
  return problems;
}

const source = <T extends z.ZodType>(value: T) =>
  z.union([
    z.object({ status: z.literal('ok'), value }).strict(),
    z.object({ status: z.literal('error'), type: z.string(), message: z.string() }).strict(),
    z.object({ status: z.literal('unavailable'), why: z.string() }).strict(),
  ]);
const iso = z.iso.datetime({ offset: true });

export const escalationDocument = z
  .object({
    type: z.literal('vpsie-runbook.escalation'),
    version: z.literal(1),
    sentAt: iso,
    workflowId: z.string().min(1),
    runId: z.string().min(1),
    vpsieNode: z.object({ namespace: z.string(), name: z.string(), uid: z.string().nullable() }).strict(),
    nodeGroup: z.string().nullable(),
    audience: z.enum(['vpsie-support', 'platform-team']),
    routedBecause: z.string().min(1),
    severity: z.enum(['critical', 'error', 'warning', 'info']),
    cause: z.string().nullable(),
    kind: z.string().min(1),
    reason: z.string().min(1),
    step: z.string().nullable(),
    summary: z.string().min(1).max(1024),
    observedAt: iso,
    evidence: z.array(z.string()),
    reasons: z.array(
      z.object({ says: z.string(), source: z.string(), field: z.string(), value: z.string() }).loose(),
    ),
    also: z.array(z.string()),
    error: z.object({ step: z.string(), type: z.string(), message: z.string() }).loose().nullable(),
    vpsieNodeYaml: source(z.string().nullable()),
    events: source(z.array(z.object({ type: z.string().nullable(), reason: z.string().nullable() }).loose())),
    controllerLogs: source(
      z.object({ pods: z.array(z.object({ pod: z.string(), lines: z.array(z.string()) }).loose()) }).loose(),
    ),
    machine: source(z.object({ status: z.string().nullable() }).loose()),
    node: source(
      z
        .object({ node: z.object({ name: z.string() }).loose() })
        .loose()
        .nullable(),
    ),
    plan: z.array(
      z.object({ id: z.string(), kind: z.string(), state: z.string(), target: z.string() }).loose(),
    ),
    decisions: z.array(z.object({ at: z.string(), accepted: z.boolean() }).loose()),
    truncated: z.array(z.string()),
  })
  .strict();

export const approvalDocument = z
  .object({
    type: z.literal('vpsie-runbook.approval-pending'),
    version: z.literal(1),
    sentAt: iso,
    workflowId: z.string().min(1),
    // null: the orphaned-VM sweep, whose approvals are about machines in VPSie, not a VPSieNode
    vpsieNode: z
      .object({ namespace: z.string().min(1), name: z.string().min(1) })
      .strict()
      .nullable(),
    approval: z
      .object({
        stepId: z.string().min(1),
        kind: z.string().min(1),
        target: z.unknown(),
        targetDescription: z.string().min(1),
        action: z.string().nullable(),
        expiresAt: iso,
        approvers: z.array(z.string()),
        approveCommand: z.string().startsWith('temporal workflow update execute '),
        rejectCommand: z.string().startsWith('temporal workflow update execute '),
      })
      .strict(),
  })
  .strict();

const issuesOf = (where: string, error: z.ZodError) =>
  error.issues.map((i) => `${where}${i.path.length ? `.${i.path.join('.')}` : ''}: ${i.message}`);

// ---------------------------------------------------------------------------------------------------------
// The sink
// ---------------------------------------------------------------------------------------------------------

interface ArmedFault {
  fault: SinkFault;
  remaining: number;
}

export class EscalationSink {
  /** Every request, in order of arrival. */
  readonly requests: SinkRequest[] = [];
  /** PagerDuty incidents by dedup_key. */
  readonly incidents = new Map<string, Incident>();
  /** The secrets the sink's URLs and key hold: a test checks that none of them leaks. */
  readonly routingKey = secret('pagerduty-routing-key');
  private readonly slackSecret = secret('slack-webhook-url');
  private readonly webhookSecret = secret('webhook-url');
  private readonly events = new EventEmitter();
  private readonly faults: Record<SinkService, ArmedFault[]> = { pagerduty: [], slack: [], webhook: [] };
  private server?: http.Server;
  private base = '';

  get secrets(): string[] {
    return [this.routingKey, this.slackSecret, this.webhookSecret];
  }

  /**
   * The worker's channel configuration for this sink, as the environment gives it: the routing key and the Slack
   * URL as files written to `dir` (mounted secrets), the webhook URL as a value. A hang costs one attempt 5 s; an
   * answer on loopback never comes near it, even on a loaded machine.
   */
  async channelsConfig(
    dir: string,
    routes: Routes,
    approvalChannels: ChannelName[] = ['slack', 'webhook'],
  ): Promise<ChannelsConfig> {
    await writeFile(join(dir, 'pd-key'), `${this.routingKey}\n`);
    await writeFile(join(dir, 'slack-url'), this.url('slack'));
    return {
      pagerduty: {
        routingKey: { variable: 'PAGERDUTY_ROUTING_KEY_FILE', file: join(dir, 'pd-key') },
        eventsUrl: this.url('pagerduty'),
      },
      slack: { variable: 'SLACK_WEBHOOK_URL_FILE', file: join(dir, 'slack-url') },
      webhook: { variable: 'ESCALATION_WEBHOOK_URL', value: this.url('webhook') },
      routes,
      approvalChannels,
      timeoutMs: 5_000,
    };
  }

  async start(): Promise<void> {
    this.server = http.createServer((req, res) => void this.handle(req, res));
    const port = await listenOnLoopback(this.server);
    this.base = `http://127.0.0.1:${port}`;
  }

  async stop(): Promise<void> {
    if (this.server) await closeNow(this.server);
  }

  /** The URL of a service; the Slack and webhook URLs carry their secret, as the real ones do. */
  url(service: SinkService): string {
    switch (service) {
      case 'pagerduty':
        return `${this.base}/v2/enqueue`;
      case 'slack':
        return `${this.base}/services/T0RUNBOOK/B0ESCALATE/${this.slackSecret}`;
      case 'webhook':
        return `${this.base}/hooks/${this.webhookSecret}`;
    }
  }

  /** Answers the next `times` valid requests to `service` with `fault`. */
  fail(service: SinkService, fault: SinkFault, times = 1): void {
    this.faults[service].push({ fault, remaining: times });
  }

  clear(): void {
    this.requests.length = 0;
    this.incidents.clear();
    for (const s of Object.keys(this.faults) as SinkService[]) this.faults[s] = [];
  }

  of(service: SinkService): SinkRequest[] {
    return this.requests.filter((r) => r.service === service);
  }

  /** Resolves once `count` requests to `service` have been answered (or hung), rejects after `timeoutMs`. */
  async waitFor(service: SinkService, count: number, timeoutMs = 30_000): Promise<SinkRequest[]> {
    const have = () => this.of(service);
    if (have().length >= count) return have();
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.events.off('request', check);
        reject(new Error(`sink: ${have().length} of ${count} requests to ${service} within ${timeoutMs} ms`));
      }, timeoutMs);
      const check = () => {
        if (have().length < count) return;
        clearTimeout(timer);
        this.events.off('request', check);
        resolve(have());
      };
      this.events.on('request', check);
    });
  }

  private serviceOf(path: string): SinkService | 'unknown' {
    if (path === '/v2/enqueue') return 'pagerduty';
    if (path === `/services/T0RUNBOOK/B0ESCALATE/${this.slackSecret}`) return 'slack';
    if (path === `/hooks/${this.webhookSecret}`) return 'webhook';
    return 'unknown';
  }

  private async handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const raw = Buffer.concat(chunks);
    const path = (req.url ?? '').split('?')[0];
    const service = this.serviceOf(path);
    const record: SinkRequest = {
      seq: this.requests.length + 1,
      at: performance.now(),
      service,
      method: req.method ?? '',
      path,
      headers: req.headers,
      bytes: raw.length,
      body: undefined,
      problems: [],
      answer: 0,
      injected: false,
      accepted: false,
    };
    try {
      record.body = JSON.parse(raw.toString('utf8'));
    } catch {
      record.problems.push('body: not JSON');
    }
    if (!/^application\/json\b/.test(req.headers['content-type'] ?? ''))
      record.problems.push('Content-Type: not application/json');
    if (req.method !== 'POST') record.problems.push(`method: ${req.method}, not POST`);

    const answer = (status: number, body: string, headers: Record<string, string> = {}) => {
      record.answer = status;
      res.writeHead(status, {
        'Content-Type': body.startsWith('{') ? 'application/json' : 'text/plain',
        ...headers,
      });
      res.end(body);
    };
    const done = () => {
      this.requests.push(record);
      this.events.emit('request', record);
    };

    if (service === 'unknown') {
      answer(404, 'no_service');
      return done();
    }
    const check = { pagerduty: this.checkPagerDuty, slack: this.checkSlack, webhook: this.checkWebhook }[
      service
    ];
    if (record.body !== undefined) record.problems.push(...check.call(this, record));
    if (record.problems.length) {
      const body =
        service === 'pagerduty'
          ? JSON.stringify({
              status: 'invalid event',
              message: 'Event object is invalid',
              errors: record.problems,
            })
          : service === 'slack'
            ? 'invalid_payload'
            : JSON.stringify({ error: 'invalid document', problems: record.problems });
      answer(400, body);
      return done();
    }

    const armed = this.faults[service][0];
    if (armed) {
      armed.remaining -= 1;
      if (armed.remaining <= 0) this.faults[service].shift();
      record.injected = true;
      const f = armed.fault;
      if ('hang' in f) {
        record.answer = 'hang';
        return done(); // the socket stays open until the client gives up or the sink stops
      }
      if ('acceptThenHang' in f) {
        this.accept(service, record);
        record.answer = 'hang';
        return done();
      }
      answer(
        f.status,
        f.body ?? this.faultBody(service, f.status, path),
        f.retryAfter ? { 'Retry-After': f.retryAfter } : {},
      );
      return done();
    }
    const dedup = this.accept(service, record);
    if (service === 'pagerduty')
      answer(202, JSON.stringify({ status: 'success', message: 'Event processed', dedup_key: dedup }));
    else if (service === 'slack') answer(200, 'ok');
    else answer(202, JSON.stringify({ accepted: true }));
    return done();
  }

  /** A fault's body as each service writes one; the webhook's 400 echoes its path, as careless receivers do. */
  private faultBody(service: SinkService, status: number, path: string): string {
    if (service === 'pagerduty') {
      if (status === 400)
        return JSON.stringify({
          status: 'invalid event',
          message: 'Event object is invalid',
          errors: ['injected'],
        });
      if (status === 429)
        return JSON.stringify({
          status: 'throttle event',
          message: 'Requests for this service are arriving too quickly.',
        });
      return JSON.stringify({ status: 'error', message: 'Internal Server Error' });
    }
    if (service === 'slack')
      return status === 400 ? 'invalid_payload' : status === 429 ? 'rate_limited' : 'rollup_error';
    return JSON.stringify({ error: `HTTP ${status} for ${path}` });
  }

  /** Processes a valid request: opens, joins or resolves an incident. Answers the dedup key (PagerDuty). */
  private accept(service: SinkService, record: SinkRequest): string {
    record.accepted = true;
    if (service !== 'pagerduty') return '';
    const e = record.body as z.infer<typeof pagerDutyEvent>;
    const key = e.dedup_key ?? randomBytes(16).toString('hex');
    const open = this.incidents.get(key);
    if (e.event_action === 'trigger') {
      if (open && open.status === 'triggered') open.triggers += 1;
      else
        this.incidents.set(key, {
          dedupKey: key,
          status: 'triggered',
          triggers: 1,
          resolves: 0,
          summary: e.payload.summary,
          severity: e.payload.severity,
        });
    } else if (e.event_action === 'resolve' && open) {
      open.status = 'resolved';
      open.resolves += 1;
    }
    return key;
  }

  private checkPagerDuty(r: SinkRequest): string[] {
    const problems: string[] = [];
    if (r.bytes > PAGERDUTY_MAX_EVENT_BYTES) problems.push(`event: ${r.bytes} bytes, over 512 KB`);
    const parsed = pagerDutyEvent.safeParse(r.body);
    if (!parsed.success) return [...problems, ...issuesOf('event', parsed.error)];
    if (parsed.data.routing_key !== this.routingKey) problems.push('routing_key: not this integration');
    return problems;
  }

  private checkSlack(r: SinkRequest): string[] {
    const parsed = slackMessage.safeParse(r.body);
    if (!parsed.success) return issuesOf('message', parsed.error);
    const m = parsed.data;
    const problems = readabilityProblems(m.text, 'text');
    (m.blocks ?? []).forEach((b, i) => {
      const texts =
        b.type === 'section'
          ? [b.text?.text, ...(b.fields ?? []).map((f) => f.text)]
          : b.type === 'context'
            ? b.elements.map((e) => e.text)
            : [];
      for (const t of texts) if (t) problems.push(...readabilityProblems(t, `blocks[${i}]`));
    });
    return problems;
  }

  private checkWebhook(r: SinkRequest): string[] {
    const problems: string[] = [];
    const key = r.headers['idempotency-key'];
    if (typeof key !== 'string' || !/^[0-9a-f]{32}$/.test(key))
      problems.push('Idempotency-Key: missing or not 32 hex digits');
    if (r.bytes > PAGERDUTY_MAX_EVENT_BYTES) problems.push(`document: ${r.bytes} bytes, over 512 KB`);
    const type = (r.body as { type?: unknown } | null)?.type;
    const schema = type === 'vpsie-runbook.approval-pending' ? approvalDocument : escalationDocument;
    const parsed = schema.safeParse(r.body);
    if (!parsed.success) problems.push(...issuesOf('document', parsed.error));
    return problems;
  }
}
