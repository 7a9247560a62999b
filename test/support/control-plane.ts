/**
 * A real, throwaway Kubernetes control plane for integration tests: etcd + kube-apiserver on loopback, started
 * the way controller-runtime's envtest does it, with the project's CRDs (deploy/crds) and the worker's least-privilege
 * RBAC (RBAC_FILES, from deploy/kubernetes) applied.
 *
 * Binaries: `bash scripts/install-control-plane.sh` installs etcd (Debian etcd-server) and builds
 * kube-apiserver into ${VPSIE_RUNBOOK_CACHE:-~/.cache/vpsie-runbook}/bin/kube-apiserver-<version>. The env
 * vars KUBE_APISERVER_BIN and ETCD_BIN override the lookup.
 *
 * Identities (static token file): an admin (group system:masters) and the restricted user `vpsie-runbook`
 * (only system:authenticated), which the harness adds as a subject to the bindings of RBAC_FILES, so it holds
 * exactly the worker's role.
 */
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as https from 'node:https';
import * as os from 'node:os';
import * as path from 'node:path';
import { parseAllDocuments, stringify } from 'yaml';
import { freePorts } from '../../src/temporal/free-port';

/** The restricted identity (static-token user) that is bound only to the project's role. */
export const RUNBOOK_USER = 'vpsie-runbook';
/** Namespace of the ServiceAccount `vpsie-runbook` that deploy/kubernetes binds for real clusters. */
export const RUNBOOK_NAMESPACE = 'vpsie-runbook';
/** A static-token user no role is bound to (only system:authenticated): what a refused identity looks like. */
export const NO_ROLE_USER = 'no-role-bound';

const REPO_ROOT = path.resolve(__dirname, '..', '..');
const CRD_DIR = path.join(REPO_ROOT, 'deploy', 'crds');
/** The worker's identity and role, as deploy/kubernetes deploys them (its other manifests are not applied here). */
export const RBAC_FILES = ['namespace.yaml', 'serviceaccount.yaml', 'role.yaml', 'bindings.yaml'].map((f) =>
  path.join(REPO_ROOT, 'deploy', 'kubernetes', f),
);
const WRAPPER_GO_MOD = path.join(REPO_ROOT, 'tools', 'kube-apiserver', 'go.mod');
const INSTALL_HINT = 'run `bash scripts/install-control-plane.sh` (installs etcd and builds kube-apiserver)';

/** Where a client reaches the apiserver. */
export interface ControlPlaneEndpoint {
  /** https://127.0.0.1:PORT */
  server: string;
  /** PEM of the CA that signed the serving certificate (self-signed by kube-apiserver in --cert-dir). */
  caData?: string;
}

export interface ControlPlane extends ControlPlaneEndpoint {
  /** Bearer token of `admin` (group system:masters). */
  adminToken: string;
  /** Bearer token of the user `vpsie-runbook`, which holds only the project's RBAC role. */
  runbookToken: string;
  /** Username of the restricted identity (`vpsie-runbook`). */
  runbookUser: string;
  /** Namespace of the deploy ServiceAccount `vpsie-runbook` (exists in the harness's control plane). */
  runbookNamespace: string;
  /** Bearer token of {@link NO_ROLE_USER}, when this control plane has one. */
  noRoleToken?: string;
  /** The audit log (JSON lines, Metadata level), when started with `auditLog`. */
  auditLog?: string;
  /** Work directory (certs, tokens, logs, etcd data); undefined for a control plane taken from env vars. */
  workDir?: string;
  /** Kills etcd and kube-apiserver (SIGTERM, then SIGKILL after a bound), waits, removes the temp dir. */
  stop(): Promise<void>;
  /**
   * Stops kube-apiserver (SIGTERM) and starts it again on the same port, certificates and etcd (kept running),
   * resolving once it answers /readyz again; `whileDown` runs in between (the outage). A control plane taken
   * from env vars is not ours to restart: it throws.
   */
  restartApiServer(whileDown?: () => Promise<void>): Promise<void>;
}

export interface StartControlPlaneOptions {
  /** Use this directory (it is kept) instead of a fresh temp dir (which stop() removes). */
  workDir?: string;
  /** Progress lines (what starts, how long it took). */
  log?: (line: string) => void;
  /** Extra kube-apiserver flags, e.g. --kubelet-* for a fake kubelet. */
  extraApiServerArgs?: string[];
  /** Bound for the whole startup (default 90 s). */
  timeoutMs?: number;
  /**
   * Write an audit log: every request (but the apiserver's own and health probes) at Metadata level (who, what,
   * User-Agent, status; no bodies), one JSON line each, at this path, or `<workDir>/audit.log` when true.
   */
  auditLog?: boolean | string;
}

/** The audit policy: Metadata level (no bodies), one line per request (its end), without the apiserver's own. */
const AUDIT_POLICY = `apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: [RequestReceived]
omitManagedFields: true
rules:
  - level: None
    users: ['system:apiserver']
  - level: None
    nonResourceURLs: ['/readyz', '/readyz/*', '/healthz', '/healthz/*', '/livez', '/livez/*']
  - level: Metadata
`;

export interface ControlPlaneBinaries {
  etcd: string;
  kubeApiserver: string;
}

// ---------------------------------------------------------------------------------------------------------
// Binaries

/** The k8s.io/kubernetes version the wrapper module in tools/kube-apiserver builds, e.g. v1.34.4. */
export function kubeApiserverVersion(): string {
  const text = fs.readFileSync(WRAPPER_GO_MOD, 'utf8');
  const m = /^require\s+k8s\.io\/kubernetes\s+(v\S+)/m.exec(text);
  if (!m) throw new Error(`cannot find "require k8s.io/kubernetes vX.Y.Z" in ${WRAPPER_GO_MOD}`);
  return m[1];
}

function cacheBinDir(): string {
  return path.join(
    process.env.VPSIE_RUNBOOK_CACHE || path.join(os.homedir(), '.cache', 'vpsie-runbook'),
    'bin',
  );
}

function isExecutable(file: string): boolean {
  try {
    fs.accessSync(file, fs.constants.X_OK);
    return fs.statSync(file).isFile();
  } catch {
    return false;
  }
}

function onPath(name: string): string | undefined {
  for (const dir of (process.env.PATH ?? '').split(path.delimiter)) {
    if (dir && isExecutable(path.join(dir, name))) return path.join(dir, name);
  }
  return undefined;
}

function findBinary(name: string, envVar: string, candidates: string[]): string {
  const fromEnv = process.env[envVar];
  if (fromEnv) {
    if (!isExecutable(fromEnv))
      throw new Error(`${envVar}=${fromEnv} is not an executable file; ${INSTALL_HINT}`);
    return fromEnv;
  }
  for (const c of candidates) if (isExecutable(c)) return c;
  const found = onPath(name);
  if (found) return found;
  throw new Error(
    `${name} not found (looked at $${envVar}, ${candidates.join(', ')} and PATH); ${INSTALL_HINT}, ` +
      `or set ${envVar}`,
  );
}

/** Finds etcd and kube-apiserver: $ETCD_BIN / $KUBE_APISERVER_BIN, then the install cache, then PATH. */
export function findControlPlaneBinaries(): ControlPlaneBinaries {
  const bin = cacheBinDir();
  return {
    kubeApiserver: findBinary('kube-apiserver', 'KUBE_APISERVER_BIN', [
      path.join(bin, `kube-apiserver-${kubeApiserverVersion()}`),
    ]),
    etcd: findBinary('etcd', 'ETCD_BIN', [path.join(bin, 'etcd'), '/usr/bin/etcd']),
  };
}

// ---------------------------------------------------------------------------------------------------------
// HTTP

export interface KubeResponse {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  text: string;
  /** Parsed JSON body (undefined when the body is not JSON). */
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  json: any;
}

export interface KubeRequestOptions {
  /** Object (sent as JSON) or string. */
  body?: unknown;
  /** Content-Type of the body; default application/json (use application/merge-patch+json for patches). */
  contentType?: string;
  accept?: string;
  timeoutMs?: number;
  /** Skip verifying the serving certificate (only for waiting on readiness before the CA is known). */
  insecure?: boolean;
}

/** One plain HTTPS request to the apiserver with a bearer token. Never throws on HTTP error statuses. */
export function kubeRequest(
  ep: ControlPlaneEndpoint,
  token: string | undefined,
  method: string,
  urlPath: string,
  opts: KubeRequestOptions = {},
): Promise<KubeResponse> {
  const url = new URL(urlPath, ep.server);
  const body =
    opts.body === undefined
      ? undefined
      : typeof opts.body === 'string'
        ? opts.body
        : JSON.stringify(opts.body);
  const headers: Record<string, string> = { Accept: opts.accept ?? 'application/json' };
  if (token) headers.Authorization = `Bearer ${token}`;
  if (body !== undefined) {
    headers['Content-Type'] = opts.contentType ?? 'application/json';
    headers['Content-Length'] = String(Buffer.byteLength(body));
  }
  return new Promise((resolve, reject) => {
    const req = https.request(
      url,
      {
        method,
        headers,
        agent: false,
        ca: opts.insecure ? undefined : ep.caData,
        rejectUnauthorized: !opts.insecure,
        timeout: opts.timeoutMs ?? 15_000,
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('error', reject);
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          let json: unknown;
          try {
            json = JSON.parse(text);
          } catch {
            json = undefined;
          }
          resolve({ status: res.statusCode ?? 0, headers: res.headers, text, json });
        });
      },
    );
    req.on('timeout', () => req.destroy(new Error(`${method} ${url.href} timed out`)));
    req.on('error', reject);
    req.end(body);
  });
}

// ---------------------------------------------------------------------------------------------------------
// Manifests

export interface KubeObject {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; [k: string]: unknown };
  [k: string]: unknown;
}

const CLUSTER_SCOPED = new Set([
  'Namespace',
  'Node',
  'PersistentVolume',
  'ClusterRole',
  'ClusterRoleBinding',
  'CustomResourceDefinition',
  'StorageClass',
  'PriorityClass',
  'APIService',
]);
const PLURALS: Record<string, string> = {
  Endpoints: 'endpoints',
  Ingress: 'ingresses',
  NetworkPolicy: 'networkpolicies',
  PriorityClass: 'priorityclasses',
  StorageClass: 'storageclasses',
};

/** REST path of one object (kinds used by this project; plural = lower-case kind + "s" otherwise). */
export function objectPath(obj: KubeObject): string {
  const [group, version] = obj.apiVersion.includes('/') ? obj.apiVersion.split('/') : ['', obj.apiVersion];
  const base = group ? `/apis/${group}/${version}` : `/api/${version}`;
  const plural = PLURALS[obj.kind] ?? `${obj.kind.toLowerCase()}s`;
  const ns = CLUSTER_SCOPED.has(obj.kind) ? '' : `/namespaces/${obj.metadata.namespace ?? 'default'}`;
  return `${base}${ns}/${plural}/${obj.metadata.name}`;
}

/** All YAML documents of a file, or of every *.yaml / *.yml file of a directory (sorted by name). */
export function loadManifests(fileOrDir: string): KubeObject[] {
  const files = fs.statSync(fileOrDir).isDirectory()
    ? fs
        .readdirSync(fileOrDir)
        .filter((f) => /\.ya?ml$/.test(f))
        .sort()
        .map((f) => path.join(fileOrDir, f))
    : [fileOrDir];
  const out: KubeObject[] = [];
  for (const file of files) {
    for (const doc of parseAllDocuments(fs.readFileSync(file, 'utf8'))) {
      if (doc.errors.length > 0) throw new Error(`${file}: ${doc.errors[0].message}`);
      const obj = doc.toJS() as KubeObject | null;
      if (obj) out.push(obj);
    }
  }
  return out;
}

/** An HTTP error answer of the apiserver. */
export class KubeApiError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
    this.name = 'KubeApiError';
  }
}

/** Server-side apply (creates or updates) of one object; throws with the apiserver's answer on failure. */
export async function applyObject(
  ep: ControlPlaneEndpoint,
  token: string,
  obj: KubeObject,
): Promise<KubeObject> {
  const res = await kubeRequest(
    ep,
    token,
    'PATCH',
    `${objectPath(obj)}?fieldManager=vpsie-runbook-test&force=true`,
    {
      body: obj,
      contentType: 'application/apply-patch+yaml',
    },
  );
  if (res.status < 200 || res.status >= 300) {
    throw new KubeApiError(
      res.status,
      `apply ${obj.kind} ${obj.metadata.name}: HTTP ${res.status}: ${res.text}`,
    );
  }
  return res.json as KubeObject;
}

// ---------------------------------------------------------------------------------------------------------
// kubeconfig and env

/** A kubeconfig for one identity (bearer token) of the control plane. */
export function kubeconfigYaml(
  ep: ControlPlaneEndpoint,
  token: string,
  opts: { user?: string; namespace?: string } = {},
): string {
  const user = opts.user ?? 'user';
  const cluster: Record<string, unknown> = { server: ep.server };
  if (ep.caData) cluster['certificate-authority-data'] = Buffer.from(ep.caData).toString('base64');
  else cluster['insecure-skip-tls-verify'] = true;
  const context: Record<string, unknown> = { cluster: 'test', user };
  if (opts.namespace) context.namespace = opts.namespace;
  return stringify({
    apiVersion: 'v1',
    kind: 'Config',
    clusters: [{ name: 'test', cluster }],
    users: [{ name: user, user: { token } }],
    contexts: [{ name: 'test', context }],
    'current-context': 'test',
  });
}

/**
 * Env vars that describe a running control plane (for Jest global setup -> test files):
 * KUBE_TEST_SERVER, KUBE_TEST_ADMIN_TOKEN, KUBE_TEST_RUNBOOK_TOKEN, KUBE_TEST_CA_DATA (base64 of the PEM),
 * KUBE_TEST_NO_ROLE_TOKEN and KUBE_TEST_AUDIT_LOG when there are.
 */
export function controlPlaneEnv(cp: ControlPlane): Record<string, string> {
  const env: Record<string, string> = {
    KUBE_TEST_SERVER: cp.server,
    KUBE_TEST_ADMIN_TOKEN: cp.adminToken,
    KUBE_TEST_RUNBOOK_TOKEN: cp.runbookToken,
  };
  if (cp.caData) env.KUBE_TEST_CA_DATA = Buffer.from(cp.caData).toString('base64');
  if (cp.noRoleToken) env.KUBE_TEST_NO_ROLE_TOKEN = cp.noRoleToken;
  if (cp.auditLog) env.KUBE_TEST_AUDIT_LOG = cp.auditLog;
  return env;
}

/**
 * The control plane described by KUBE_TEST_* env vars (see controlPlaneEnv; KUBE_TEST_CA_DATA may be PEM or
 * base64 of PEM), or undefined when KUBE_TEST_SERVER is not set. Its stop() does nothing: whoever started it
 * stops it.
 */
export function controlPlaneFromEnv(env: NodeJS.ProcessEnv = process.env): ControlPlane | undefined {
  const server = env.KUBE_TEST_SERVER;
  if (!server) return undefined;
  const adminToken = env.KUBE_TEST_ADMIN_TOKEN;
  const runbookToken = env.KUBE_TEST_RUNBOOK_TOKEN;
  if (!adminToken || !runbookToken) {
    throw new Error('KUBE_TEST_SERVER is set but KUBE_TEST_ADMIN_TOKEN or KUBE_TEST_RUNBOOK_TOKEN is not');
  }
  const ca = env.KUBE_TEST_CA_DATA;
  const caData = !ca
    ? undefined
    : ca.includes('-----BEGIN')
      ? ca
      : Buffer.from(ca, 'base64').toString('utf8');
  return {
    server,
    caData,
    adminToken,
    runbookToken,
    runbookUser: RUNBOOK_USER,
    runbookNamespace: RUNBOOK_NAMESPACE,
    ...(env.KUBE_TEST_NO_ROLE_TOKEN ? { noRoleToken: env.KUBE_TEST_NO_ROLE_TOKEN } : {}),
    ...(env.KUBE_TEST_AUDIT_LOG ? { auditLog: env.KUBE_TEST_AUDIT_LOG } : {}),
    stop: async () => undefined,
    restartApiServer: () =>
      Promise.reject(new Error('the control plane from KUBE_TEST_* is not ours to restart')),
  };
}

// ---------------------------------------------------------------------------------------------------------
// Processes

interface Proc {
  name: string;
  child: ChildProcess;
  logFile: string;
  exit?: string;
  exited: Promise<void>;
  /** How it was started, so that it can be started again the same way. */
  bin: string;
  args: string[];
}

const liveChildren = new Set<ChildProcess>();
let exitHookInstalled = false;

/** Last resort if a test run ends without stop(): never leave etcd or kube-apiserver behind. */
function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.on('exit', () => {
    for (const c of liveChildren) {
      try {
        c.kill('SIGKILL');
      } catch {
        // already gone
      }
    }
  });
}

function launch(name: string, bin: string, args: string[], workDir: string): Proc {
  const logFile = path.join(workDir, `${name}.log`);
  const fd = fs.openSync(logFile, 'a');
  let child: ChildProcess;
  try {
    child = spawn(bin, args, { cwd: workDir, stdio: ['ignore', fd, fd] });
  } finally {
    fs.closeSync(fd);
  }
  installExitHook();
  liveChildren.add(child);
  const proc: Proc = { name, child, logFile, exited: Promise.resolve(), bin, args };
  proc.exited = new Promise<void>((resolve) => {
    child.once('exit', (code, signal) => {
      proc.exit = signal ? `killed by ${signal}` : `exited with code ${code}`;
      liveChildren.delete(child);
      resolve();
    });
    child.once('error', (err) => {
      proc.exit = `failed to start: ${err.message}`;
      liveChildren.delete(child);
      resolve();
    });
  });
  return proc;
}

function tail(file: string, lines = 30): string {
  try {
    return fs.readFileSync(file, 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
  } catch {
    return '(no output)';
  }
}

async function terminate(proc: Proc, graceMs: number): Promise<void> {
  if (proc.exit !== undefined) return;
  proc.child.kill('SIGTERM');
  const timer = new Promise<'timeout'>((r) => setTimeout(() => r('timeout'), graceMs).unref());
  if ((await Promise.race([proc.exited.then(() => 'exited' as const), timer])) === 'timeout') {
    proc.child.kill('SIGKILL');
    await proc.exited;
  }
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

// ---------------------------------------------------------------------------------------------------------
// Start

/** Starts etcd + kube-apiserver, applies deploy/crds and RBAC_FILES, and returns when all of it is usable. */
export async function startControlPlane(opts: StartControlPlaneOptions = {}): Promise<ControlPlane> {
  const log = opts.log ?? (() => undefined);
  const t0 = Date.now();
  const deadline = t0 + (opts.timeoutMs ?? 90_000);
  const bins = findControlPlaneBinaries();
  const ownDir = opts.workDir === undefined;
  const workDir =
    opts.workDir === undefined
      ? fs.mkdtempSync(path.join(os.tmpdir(), 'vpsie-cp-'))
      : path.resolve(opts.workDir);
  fs.mkdirSync(workDir, { recursive: true });

  const procs: Proc[] = [];
  const cleanup = async () => {
    // apiserver first, so it does not spend its shutdown retrying a dead etcd
    for (const p of [...procs].reverse()) await terminate(p, p.name === 'etcd' ? 5_000 : 10_000);
    if (ownDir && !process.env.KUBE_TEST_KEEP_WORKDIR) fs.rmSync(workDir, { recursive: true, force: true });
  };

  const failure = (what: string, cause?: unknown) => {
    const details = procs
      .map((p) => `--- ${p.name} (${p.exit ?? 'running'}), last lines of ${p.logFile}:\n${tail(p.logFile)}`)
      .join('\n');
    const msg = cause instanceof Error ? cause.message : cause === undefined ? '' : String(cause);
    return new Error(`control plane: ${what}${msg ? `: ${msg}` : ''}\n${details}`);
  };

  /** Polls check() until it returns a value; fails fast when a process exits, and at the deadline. */
  const waitFor = async <T>(what: string, check: () => Promise<T | undefined>): Promise<T> => {
    let lastErr: unknown;
    for (;;) {
      const dead = procs.find((p) => p.exit !== undefined);
      if (dead) throw failure(`${dead.name} ${dead.exit} while waiting for ${what}`);
      try {
        const v = await check();
        if (v !== undefined) return v;
      } catch (e) {
        // a manifest the apiserver rejects will not get better by retrying
        if (e instanceof KubeApiError && (e.status === 400 || e.status === 422)) throw failure(what, e);
        lastErr = e;
      }
      if (Date.now() > deadline) throw failure(`timed out waiting for ${what}`, lastErr);
      await sleep(100);
    }
  };

  try {
    const crds = loadManifests(CRD_DIR).filter((o) => o.kind === 'CustomResourceDefinition');
    if (crds.length === 0) throw new Error(`no CustomResourceDefinition in ${CRD_DIR}`);
    const order = ['Namespace', 'ServiceAccount', 'ClusterRole', 'Role', 'ClusterRoleBinding', 'RoleBinding'];
    const rbac = RBAC_FILES.flatMap((f) => loadManifests(f)).sort(
      (a, b) => order.indexOf(a.kind) - order.indexOf(b.kind),
    );

    const adminToken = randomBytes(24).toString('hex');
    const runbookToken = randomBytes(24).toString('hex');
    const noRoleToken = randomBytes(24).toString('hex');
    // token,user,uid,"group1,group2"
    fs.writeFileSync(
      path.join(workDir, 'tokens.csv'),
      `${adminToken},admin,admin,"system:masters"\n${runbookToken},${RUNBOOK_USER},${RUNBOOK_USER}\n` +
        `${noRoleToken},${NO_ROLE_USER},${NO_ROLE_USER}\n`,
      { mode: 0o600 },
    );
    const auditLog =
      opts.auditLog === true
        ? path.join(workDir, 'audit.log')
        : typeof opts.auditLog === 'string'
          ? path.resolve(opts.auditLog)
          : undefined;
    if (auditLog) fs.writeFileSync(path.join(workDir, 'audit-policy.yaml'), AUDIT_POLICY);
    const { publicKey, privateKey } = generateKeyPairSync('rsa', {
      modulusLength: 2048,
      publicKeyEncoding: { type: 'spki', format: 'pem' },
      privateKeyEncoding: { type: 'pkcs8', format: 'pem' },
    });
    fs.writeFileSync(path.join(workDir, 'sa.pub'), publicKey);
    fs.writeFileSync(path.join(workDir, 'sa.key'), privateKey, { mode: 0o600 });
    const certDir = path.join(workDir, 'certs');
    fs.mkdirSync(certDir, { recursive: true });

    const [etcdClient, etcdPeer, apiPort] = await freePorts(3);
    const etcdUrl = `http://127.0.0.1:${etcdClient}`;
    const peerUrl = `http://127.0.0.1:${etcdPeer}`;
    procs.push(
      launch(
        'etcd',
        bins.etcd,
        [
          '--name=default',
          `--data-dir=${path.join(workDir, 'etcd')}`,
          `--listen-client-urls=${etcdUrl}`,
          `--advertise-client-urls=${etcdUrl}`,
          `--listen-peer-urls=${peerUrl}`,
          `--initial-advertise-peer-urls=${peerUrl}`,
          `--initial-cluster=default=${peerUrl}`,
          '--initial-cluster-state=new',
          '--logger=zap',
          '--log-outputs=stderr',
          '--log-level=warn',
        ],
        workDir,
      ),
    );
    log(`etcd ${bins.etcd} on ${etcdUrl}`);

    const server = `https://127.0.0.1:${apiPort}`;
    procs.push(
      launch(
        'kube-apiserver',
        bins.kubeApiserver,
        [
          `--etcd-servers=${etcdUrl}`,
          `--cert-dir=${certDir}`,
          '--bind-address=127.0.0.1',
          '--advertise-address=127.0.0.1',
          `--secure-port=${apiPort}`,
          '--service-cluster-ip-range=10.0.0.0/24',
          '--service-account-issuer=https://kubernetes.default.svc.cluster.local',
          `--service-account-key-file=${path.join(workDir, 'sa.pub')}`,
          `--service-account-signing-key-file=${path.join(workDir, 'sa.key')}`,
          `--token-auth-file=${path.join(workDir, 'tokens.csv')}`,
          '--authorization-mode=RBAC',
          // no controller-manager here: the ServiceAccount plugin would wait for token controllers
          '--disable-admission-plugins=ServiceAccount',
          '--allow-privileged=true',
          '--profiling=false',
          ...(auditLog
            ? [
                `--audit-policy-file=${path.join(workDir, 'audit-policy.yaml')}`,
                `--audit-log-path=${auditLog}`,
                // never rotated (0 would mean 100 MB): readers follow one file
                '--audit-log-maxsize=1000000',
              ]
            : []),
          ...(opts.extraApiServerArgs ?? []),
        ],
        workDir,
      ),
    );
    log(`kube-apiserver ${bins.kubeApiserver} on ${server}`);

    // kube-apiserver writes its self-signed serving certificate (and the CA that signed it) here at startup.
    const certFile = path.join(certDir, 'apiserver.crt');
    const readCa = () => (fs.existsSync(certFile) ? fs.readFileSync(certFile, 'utf8') : undefined);
    const insecure: ControlPlaneEndpoint = { server };
    await Promise.all([
      waitFor('kube-apiserver /readyz', async () => {
        const res = await kubeRequest(insecure, adminToken, 'GET', '/readyz', {
          insecure: true,
          timeoutMs: 5_000,
        });
        return res.status === 200 ? true : undefined;
      }).then(() => log(`kube-apiserver ready after ${Date.now() - t0} ms`)),
      // The CRDs go in as soon as the apiserver takes requests, while its last post-start hooks still run.
      waitFor('CRDs applied', async () => {
        const caData = readCa();
        if (!caData) return undefined;
        await Promise.all(crds.map((crd) => applyObject({ server, caData }, adminToken, crd)));
        return true;
      }),
    ]);
    const caData = readCa();
    const ep: ControlPlaneEndpoint = { server, caData };

    // kube-system normally exists (system namespaces controller); make sure before the Role goes there.
    const ks = await kubeRequest(ep, adminToken, 'GET', '/api/v1/namespaces/kube-system');
    if (ks.status === 404) {
      const created = await kubeRequest(ep, adminToken, 'POST', '/api/v1/namespaces', {
        body: { apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'kube-system' } },
      });
      if (created.status !== 201 && created.status !== 409)
        throw failure(`create kube-system: ${created.text}`);
    } else if (ks.status !== 200) {
      throw failure(`get kube-system: HTTP ${ks.status} ${ks.text}`);
    }

    // RBAC: the deploy manifests as they are, plus the static-token user on every binding.
    for (const obj of rbac) {
      if (obj.kind === 'ClusterRoleBinding' || obj.kind === 'RoleBinding') {
        const subjects = (obj.subjects as unknown[] | undefined) ?? [];
        obj.subjects = [
          ...subjects,
          { kind: 'User', apiGroup: 'rbac.authorization.k8s.io', name: RUNBOOK_USER },
        ];
      }
      await applyObject(ep, adminToken, obj);
    }

    // kube-apiserver makes every create of a custom resource sleep 2 s while its CRD has been Established for
    // less than 2 s (apiextensions customresource_handler.go, for HA setups): wait that out here, once.
    let createsFastAt = 0;
    for (const crd of crds) {
      const spec = crd.spec as { group: string; names: { plural: string }; versions: { name: string }[] };
      const established = await waitFor(`CRD ${crd.metadata.name} Established`, async () => {
        const res = await kubeRequest(ep, adminToken, 'GET', objectPath(crd));
        const conds = (res.json?.status?.conditions ?? []) as {
          type: string;
          status: string;
          lastTransitionTime?: string;
        }[];
        const cond = conds.find((c) => c.type === 'Established' && c.status === 'True');
        return cond ? Date.parse(cond.lastTransitionTime ?? '') || Date.now() : undefined;
      });
      createsFastAt = Math.max(createsFastAt, established + 2_100);
      for (const v of spec.versions) {
        await waitFor(`${spec.names.plural}.${spec.group}/${v.name} served`, async () => {
          const res = await kubeRequest(
            ep,
            adminToken,
            'GET',
            `/apis/${spec.group}/${v.name}/${spec.names.plural}`,
          );
          return res.status === 200 ? true : undefined;
        });
      }
    }

    // RBAC is enforced from an informer cache: wait until the runbook identity's grants are visible.
    const probes = [
      { verb: 'delete', group: 'autoscaler.vpsie.com', resource: 'vpsienodes', namespace: 'default' },
      { verb: 'get', group: '', resource: 'pods', subresource: 'log', namespace: 'kube-system' },
    ];
    for (const attrs of probes) {
      await waitFor(`RBAC ${attrs.verb} ${attrs.resource} for ${RUNBOOK_USER}`, async () => {
        const res = await kubeRequest(
          ep,
          runbookToken,
          'POST',
          '/apis/authorization.k8s.io/v1/selfsubjectaccessreviews',
          {
            body: {
              apiVersion: 'authorization.k8s.io/v1',
              kind: 'SelfSubjectAccessReview',
              spec: { resourceAttributes: attrs },
            },
          },
        );
        return res.json?.status?.allowed === true ? true : undefined;
      });
    }
    if (createsFastAt > Date.now()) await sleep(createsFastAt - Date.now());
    log(`control plane ready (CRDs and RBAC applied) after ${Date.now() - t0} ms`);

    let stopping: Promise<void> | undefined;
    /** The same flags, port and --cert-dir (its serving certificate is reused), so clients keep trusting it. */
    const restartApiServer = async (whileDown?: () => Promise<void>): Promise<void> => {
      const at = procs.findIndex((p) => p.name === 'kube-apiserver');
      if (stopping || at < 0) throw new Error('control plane: restartApiServer after stop()');
      await terminate(procs[at], 10_000);
      await whileDown?.();
      procs[at] = launch('kube-apiserver', procs[at].bin, procs[at].args, workDir);
      const started = Date.now();
      const restartDeadline = started + (opts.timeoutMs ?? 90_000);
      for (;;) {
        if (procs[at].exit !== undefined) throw failure(`kube-apiserver ${procs[at].exit} after a restart`);
        const res = await kubeRequest(ep, adminToken, 'GET', '/readyz', { timeoutMs: 5_000 }).catch(
          () => null,
        );
        if (res?.status === 200) break;
        if (Date.now() > restartDeadline)
          throw failure('timed out waiting for kube-apiserver /readyz after a restart');
        await sleep(100);
      }
      log(`kube-apiserver restarted, ready after ${Date.now() - started} ms`);
    };
    return {
      server,
      caData,
      adminToken,
      runbookToken,
      runbookUser: RUNBOOK_USER,
      runbookNamespace: RUNBOOK_NAMESPACE,
      noRoleToken,
      ...(auditLog ? { auditLog } : {}),
      workDir: workDir,
      stop: () => (stopping ??= cleanup()),
      restartApiServer,
    };
  } catch (err) {
    // read the logs before cleanup removes them
    const error =
      err instanceof Error && err.message.startsWith('control plane:') ? err : failure('startup failed', err);
    await cleanup();
    throw error;
  }
}
