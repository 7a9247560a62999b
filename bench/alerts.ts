/**
 * Alertmanager's side: the webhook notification for a Failed VPSieNode (demo/alerts.ts builds it as the shipped
 * rule labels it and deploy/alertmanager/alertmanager.yml groups it: one alert per notification, per VPSieNode),
 * and a poster that keeps its connections open, as Alertmanager's HTTP client does.
 */
import http from 'node:http';
import { alertFor, notification } from '../demo/alerts';
import type { FleetNode } from './fleet';

/** The notification for one Failed VPSieNode firing since `startsAt` (repeats are the same bytes again). */
export function failedNotification(node: FleetNode, startsAt: Date): string {
  const alert = alertFor(
    {
      cause: 'ProvisioningTimeout',
      namespace: node.namespace,
      vpsieNode: node.name,
      nodeGroup: node.nodeGroup,
      alertName: 'VPSieNodeProvisioningFailed',
    },
    startsAt,
  );
  return JSON.stringify(notification(alert));
}

export interface PostAnswer {
  status: number;
  body: {
    message?: string;
    alerts?: {
      result?: string;
      reason?: string;
      runs?: { workflowId: string; runId?: string; action: string }[];
    }[];
  };
}

export class Poster {
  private readonly agent: http.Agent;
  private readonly url: URL;

  constructor(url: string, maxSockets: number) {
    this.url = new URL(url);
    this.agent = new http.Agent({ keepAlive: true, maxSockets });
  }

  post(body: string): Promise<PostAnswer> {
    return new Promise((resolve, reject) => {
      const req = http.request(
        this.url,
        {
          method: 'POST',
          agent: this.agent,
          headers: {
            'content-type': 'application/json',
            'content-length': Buffer.byteLength(body),
            'user-agent': 'Alertmanager/0.27.0 (vpsie-runbook bench)',
          },
          timeout: 60_000,
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('error', reject);
          res.on('end', () => {
            let parsed: PostAnswer['body'] = {};
            try {
              parsed = JSON.parse(Buffer.concat(chunks).toString('utf8')) as PostAnswer['body'];
            } catch {
              // not JSON: the status says enough
            }
            resolve({ status: res.statusCode ?? 0, body: parsed });
          });
        },
      );
      req.on('timeout', () => req.destroy(new Error(`POST ${this.url.href} timed out`)));
      req.on('error', reject);
      req.end(body);
    });
  }

  close(): void {
    this.agent.destroy();
  }
}

/** Runs `fn` over `items`, at most `limit` at once. */
export async function pool<T>(items: readonly T[], limit: number, fn: (item: T, i: number) => Promise<void>) {
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) {
      const i = next++;
      await fn(items[i], i);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
}
