/**
 * The suite's secrets, in one registry: every test that hands the product a secret (VPSie token, receiver token,
 * Slack URL, PagerDuty routing key, webhook URL, Kubernetes bearer token) takes it from `secret(kind)`, which
 * answers a recognisable random value and records it where every Jest worker can read it (a file under
 * VPSIE_TEST_WORKDIR, which the global setup creates). The history scan (test/support/history-scan.ts) and the
 * log checks look for every value registered here, whichever test file made it.
 *
 * No test dependency here: this module is loaded by the simulators and by the setup file of every test file.
 */
import { randomBytes } from 'node:crypto';
import { appendFileSync, existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';

export type SecretKind =
  | 'vpsie-token'
  | 'vpsie-client-secret'
  | 'receiver-token'
  | 'slack-webhook-url'
  | 'pagerduty-routing-key'
  | 'webhook-url'
  | 'kubernetes-token';

export interface RegisteredSecret {
  kind: SecretKind;
  value: string;
}

/**
 * Each kind's mark inside the value: a value found somewhere says what it was. Letters and digits only, so that
 * every value passes every check the product makes (a routing key is 32 letters or digits; a token has no space).
 */
const MARK: Record<SecretKind, string> = {
  'vpsie-token': 'vt',
  'vpsie-client-secret': 'vc',
  'receiver-token': 'rt',
  'slack-webhook-url': 'sl',
  'pagerduty-routing-key': 'pd',
  'webhook-url': 'wh',
  'kubernetes-token': 'kt',
};
/** PagerDuty's integration key is exactly 32 characters; the others are longer, as real tokens are. */
const LENGTH: Partial<Record<SecretKind, number>> = { 'pagerduty-routing-key': 32 };
const PREFIX = 'SECRET';

/** This process's secrets (also the only record when no test work directory exists, e.g. in the demo). */
const own: RegisteredSecret[] = [];

function registryFile(): string | undefined {
  const dir = process.env.VPSIE_TEST_WORKDIR;
  return dir ? join(dir, 'secrets.jsonl') : undefined;
}

/** Records a secret made elsewhere (e.g. a token the apiserver issued) so that the scans look for it too. */
export function registerSecret(kind: SecretKind, value: string): string {
  if (value.length < 12) throw new Error(`registerSecret(${kind}): a value this short would match by chance`);
  own.push({ kind, value });
  const file = registryFile();
  // One short line per append: O_APPEND keeps lines of concurrent workers whole. No directory (a process started
  // outside Jest with the variable left over): this process's own record is all there is.
  if (file && existsSync(dirname(file)))
    appendFileSync(file, `${JSON.stringify({ kind, value })}\n`, { mode: 0o600 });
  return value;
}

/** A new random secret of `kind`, e.g. `SECRETrt3f9c…` (48 characters; a routing key 32), registered. */
export function secret(kind: SecretKind): string {
  const length = LENGTH[kind] ?? 48;
  const head = `${PREFIX}${MARK[kind]}`;
  const hex = randomBytes(length)
    .toString('hex')
    .slice(0, length - head.length);
  return registerSecret(kind, head + hex);
}

/** What kind of secret a value of {@link secret} is (from its mark); undefined for other values. */
export function kindOf(value: string): SecretKind | undefined {
  if (!value.startsWith(PREFIX)) return undefined;
  const mark = value.slice(PREFIX.length, PREFIX.length + 2);
  return (Object.keys(MARK) as SecretKind[]).find((k) => MARK[k] === mark);
}

/**
 * Every secret of the run: those any worker registered, this process's own, and the control plane's bearer tokens
 * (admin and vpsie-runbook, from the KUBE_TEST_* variables). Deduplicated.
 */
export function registeredSecrets(): RegisteredSecret[] {
  const all: RegisteredSecret[] = [...own];
  const file = registryFile();
  if (file) {
    let text = '';
    try {
      text = readFileSync(file, 'utf8');
    } catch {
      // nothing registered yet
    }
    for (const line of text.split('\n')) {
      if (!line.trim()) continue;
      try {
        all.push(JSON.parse(line) as RegisteredSecret);
      } catch {
        // a line being written right now: the next read has it
      }
    }
  }
  for (const name of ['KUBE_TEST_ADMIN_TOKEN', 'KUBE_TEST_RUNBOOK_TOKEN', 'KUBE_TEST_NO_ROLE_TOKEN']) {
    const value = process.env[name];
    if (value) all.push({ kind: 'kubernetes-token', value });
  }
  const seen = new Set<string>();
  return all.filter((s) => !seen.has(s.value) && seen.add(s.value));
}

/** A secret said without its value: its kind and length. */
export function describeSecret(s: RegisteredSecret): string {
  return `${s.kind} (${s.value.length} characters)`;
}

export interface SecretHit {
  kind: SecretKind;
  /** The secret described without its value ({@link describeSecret}). */
  secret: string;
  /** Characters around the first occurrence, with every registered secret in them replaced by `<kind>`. */
  context: string;
}

/** Every registered secret that occurs in `text`, each described without its value. */
export function findSecrets(text: string, secrets: readonly RegisteredSecret[]): SecretHit[] {
  const hits: SecretHit[] = [];
  for (const s of secrets) {
    const at = text.indexOf(s.value);
    if (at < 0) continue;
    let context = text.slice(Math.max(0, at - 60), at + s.value.length + 60);
    for (const other of secrets) context = context.split(other.value).join(`<${other.kind}>`);
    hits.push({ kind: s.kind, secret: describeSecret(s), context });
  }
  return hits;
}
