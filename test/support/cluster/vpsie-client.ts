/**
 * The controller's VPSie client, as upstream's Go client (`pkg/vpsie/client/client.go`) behaves on the wire:
 * the calls go over HTTP to the VPSie simulator with the Go client's User-Agent (`vpsie-k8s-autoscaler/1.0`),
 * so the simulator's faults apply to them and its request log tells them from the product's by that header.
 *
 * Answers are read the way the Go client reads them, errors worded as it words them:
 * - HTTP ≥ 400: `VPSie API error (status: N): <error> - <message>` when the body is `{error: "<text>",
 *   message}`; otherwise (the managed-Kubernetes endpoints answer `{"error": true, …}`, which Go cannot decode
 *   into its string field) `VPSie API error (status: N): <status text> - <raw body>`.
 * - HTTP 2xx with `{"error": true, "code", "message"}` on the managed-Kubernetes endpoints:
 *   `VPSie API error (status: <code>): <Operation>Failed - <message>`.
 * - each call wraps as upstream does (`failed to get VM 7: …`, `failed to add K8s slave node: …`); a 404 to a
 *   delete is success; a body that does not decode is `failed to decode response: …`.
 *
 * A per-VPSieNode stage (see scenarios.ts) can answer in VPSie's place: that answer is read the same way.
 */
import { CONTROLLER_USER_AGENT } from './names';
import type { ControllerVPSieCall } from './types';

/** Go's http.StatusText for the statuses VPSie answers. */
const STATUS_TEXT: Record<number, string> = {
  400: 'Bad Request',
  401: 'Unauthorized',
  403: 'Forbidden',
  404: 'Not Found',
  409: 'Conflict',
  422: 'Unprocessable Entity',
  429: 'Too Many Requests',
  500: 'Internal Server Error',
  502: 'Bad Gateway',
  503: 'Service Unavailable',
  504: 'Gateway Timeout',
};

/** An answer on the wire: status and raw body text. */
export interface WireAnswer {
  status: number;
  body: string;
}

/** An error as the Go client returns it. */
export class VPSieClientError extends Error {
  constructor(
    message: string,
    /** The APIError's status (HTTP, or the body's `code`), when there is one. */
    readonly status?: number,
  ) {
    super(message);
  }
  get notFound(): boolean {
    return this.status === 404;
  }
  wrap(prefix: string): VPSieClientError {
    return new VPSieClientError(`${prefix}: ${this.message}`, this.status);
  }
}

/** A VM as the Go client's VPS struct holds it. */
export interface VPS {
  id: number;
  identifier: string;
  hostname: string;
  status: string;
  cpu: number;
  ram: number;
  ssd: number;
  ip: string;
  ipv6: string;
  createdAt: number;
}

export interface K8sClusterNode {
  identifier: string;
  hostname: string;
  ip: string;
  status: string;
}

/** Answers in VPSie's place for a staged VPSieNode, or undefined to ask VPSie. */
export type Override = (method: string, path: string) => WireAnswer | undefined;

const RFC3339 = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)$/;

export class VPSieClient {
  /** Every call, in order. */
  readonly calls: ControllerVPSieCall[] = [];

  constructor(
    private readonly baseUrl: () => string,
    private readonly token: () => string,
    private readonly timeoutMs = 30_000,
  ) {}

  // ---- the calls upstream makes ----------------------------------------------------------------------

  async addK8sSlaveToGroup(cluster: string, groupId: number, override?: Override): Promise<VPS> {
    if (!cluster)
      throw new VPSieClientError(
        "configuration error in field 'cluster_identifier': Cluster identifier is required",
      );
    if (!groupId)
      throw new VPSieClientError("configuration error in field 'group_id': Numeric group ID is required");
    const body = await this.call(
      'POST',
      `/k8s/cluster/byId/${cluster}/add/slave/group/${groupId}`,
      override,
      'failed to add K8s slave node',
    );
    const res = object(body);
    if (res.error === true) throw apiFailure(res, 'AddK8sSlaveToGroupFailed');
    const data = res.data;
    if (isObject(data) && (Number(data.id) || data.identifier)) {
      return {
        ...emptyVPS(),
        id: Number(data.id) || 0,
        identifier: String(data.identifier ?? ''),
        hostname: String(data.hostname ?? ''),
        status: String(data.status ?? ''),
      };
    }
    return { ...emptyVPS(), status: 'provisioning' };
  }

  async listVMs(override?: Override): Promise<VPS[]> {
    const body = await this.call('GET', '/vm', override, 'failed to list VMs');
    const data = object(body).data;
    if (!Array.isArray(data)) return [];
    try {
      return data.map((vm) => toVPS(vm));
    } catch (err) {
      throw new VPSieClientError(`failed to list VMs: failed to decode response: ${(err as Error).message}`);
    }
  }

  /** Upstream decodes the body itself as the VM; a `{data: …}` wrapper is looked through here. */
  async getVM(id: number, override?: Override): Promise<VPS> {
    if (!id) throw new VPSieClientError("configuration error in field 'vm_id': VM ID is required");
    const body = await this.call('GET', `/vm/${id}`, override, `failed to get VM ${id}`);
    const res = object(body);
    return toVPS(isObject(res.data) ? res.data : res);
  }

  async deleteVM(id: number, override?: Override): Promise<void> {
    if (!id) throw new VPSieClientError("configuration error in field 'vm_id': VM ID is required");
    try {
      await this.call('DELETE', `/vm/${id}`, override, `failed to delete VM ${id}`);
    } catch (err) {
      if (err instanceof VPSieClientError && err.notFound) return;
      throw err;
    }
  }

  async getK8sClusterInfo(cluster: string, override?: Override): Promise<K8sClusterNode[]> {
    const body = await this.call(
      'GET',
      `/k8s/cluster/byId/${cluster}`,
      override,
      'failed to get K8s cluster info',
    );
    const res = object(body);
    if (res.error === true) throw apiFailure(res, 'GetK8sClusterInfoFailed');
    const data = isObject(res.data) ? res.data : {};
    const nodes = ['nodes', 'slaves', 'masters'].flatMap((k) => (Array.isArray(data[k]) ? data[k] : []));
    return nodes.filter(isObject).map((n) => ({
      identifier: String(n.identifier ?? ''),
      hostname: String(n.hostname ?? ''),
      ip: String(n.ip ?? ''),
      status: String(n.status ?? ''),
    }));
  }

  /** FindK8sNodeIdentifier: '' when the cluster (404) or the node is not there. */
  async findK8sNodeIdentifier(cluster: string, hostname: string, override?: Override): Promise<string> {
    if (!cluster || !hostname) return '';
    let nodes: K8sClusterNode[];
    try {
      nodes = await this.getK8sClusterInfo(cluster, override);
    } catch (err) {
      if (err instanceof VPSieClientError && err.notFound) return '';
      throw (err as VPSieClientError).wrap('failed to get cluster info');
    }
    return nodes.find((n) => n.hostname.toLowerCase() === hostname.toLowerCase())?.identifier ?? '';
  }

  async deleteK8sNode(cluster: string, identifier: string, override?: Override): Promise<void> {
    let body: unknown;
    try {
      body = await this.call(
        'DELETE',
        `/k8s/cluster/byId/${cluster}/delete/slave`,
        override,
        'failed to delete K8s node',
        { identifier },
      );
    } catch (err) {
      if (err instanceof VPSieClientError && err.notFound) return;
      throw err;
    }
    const res = object(body);
    if (res.error === true) throw apiFailure(res, 'DeleteK8sNodeFailed');
  }

  async listK8sNodeGroups(cluster: string): Promise<{ id: number; groupName: string }[]> {
    const body = await this.call(
      'GET',
      `/k8s/node/groups/byClusterId/${cluster}`,
      undefined,
      'failed to list K8s node groups',
    );
    const res = object(body);
    if (res.error === true) throw apiFailure(res, 'ListK8sNodeGroupsFailed');
    const data = Array.isArray(res.data) ? res.data : [];
    return data
      .filter(isObject)
      .map((g) => ({ id: Number(g.id) || 0, groupName: String(g.group_name ?? '') }));
  }

  async createK8sNodeGroup(cluster: string, groupName: string, kubeSizeID: number): Promise<void> {
    const body = await this.call(
      'POST',
      '/k8s/cluster/add/group',
      undefined,
      'failed to create K8s node group',
      {
        clusterIdentifier: cluster,
        groupName,
        KubeSizeID: kubeSizeID,
      },
    );
    const res = object(body);
    if (res.error === true) throw apiFailure(res, 'CreateK8sNodeGroupFailed');
  }

  // ---- the wire ----------------------------------------------------------------------------------------

  /**
   * One request; answers the decoded body of a 2xx. Errors: the request failing (`failed to perform request`),
   * HTTP ≥ 400 (an APIError), an undecodable body — each wrapped in `wrap` as the calling method does.
   */
  private async call(
    method: string,
    path: string,
    override: Override | undefined,
    wrap: string,
    body?: unknown,
  ): Promise<unknown> {
    const at = Date.now();
    const record = (status: number, error?: string) =>
      this.calls.push({ method, path, status, at, ...(error ? { error } : {}) });
    let answer = override?.(method, path);
    if (!answer) {
      try {
        answer = await this.http(method, path, body);
      } catch (err) {
        const message = `${wrap}: failed to perform request: ${method} "${this.baseUrl()}${path}": ${(err as Error).message}`;
        record(0, message);
        throw new VPSieClientError(message);
      }
    }
    if (answer.status >= 400) {
      const err = httpFailure(answer).wrap(wrap);
      record(answer.status, err.message);
      throw err;
    }
    try {
      const decoded = answer.body === '' ? {} : (JSON.parse(answer.body) as unknown);
      const failed = isObject(decoded) && decoded.error === true;
      record(answer.status, failed ? String(decoded.message ?? '') : undefined);
      return decoded;
    } catch (err) {
      const message = `${wrap}: failed to decode response: ${(err as Error).message}`;
      record(answer.status, message);
      throw new VPSieClientError(message);
    }
  }

  private async http(method: string, path: string, body?: unknown): Promise<WireAnswer> {
    const res = await fetch(`${this.baseUrl()}${path}`, {
      method,
      headers: {
        Authorization: `Bearer ${this.token()}`,
        'User-Agent': CONTROLLER_USER_AGENT,
        Accept: 'application/json',
        ...(body === undefined ? {} : { 'Content-Type': 'application/json' }),
      },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      signal: AbortSignal.timeout(this.timeoutMs),
    });
    return { status: res.status, body: await res.text() };
  }
}

// ---------------------------------------------------------------------------------------------------------

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function object(v: unknown): Record<string, unknown> {
  return isObject(v) ? v : {};
}

function emptyVPS(): VPS {
  return {
    id: 0,
    identifier: '',
    hostname: '',
    status: '',
    cpu: 0,
    ram: 0,
    ssd: 0,
    ip: '',
    ipv6: '',
    createdAt: 0,
  };
}

/** Decodes a VM as Go's json.Unmarshal into VPS would: a `created_on` that is not RFC 3339 fails. */
function toVPS(raw: unknown): VPS {
  const vm = object(raw);
  const created = vm.created_on;
  if (typeof created === 'string' && created !== '' && !RFC3339.test(created))
    throw new Error(`parsing time "\\"${created}\\"" as "\\"2006-01-02T15:04:05Z07:00\\"": cannot parse`);
  return {
    id: Number(vm.id) || 0,
    identifier: String(vm.identifier ?? ''),
    hostname: String(vm.hostname ?? ''),
    status: String(vm.status ?? ''),
    cpu: Number(vm.cpu) || 0,
    ram: Number(vm.ram) || 0,
    ssd: Number(vm.ssd) || 0,
    ip: String(vm.default_ip ?? ''),
    ipv6: String(vm.default_ipv6 ?? ''),
    createdAt: typeof created === 'string' ? Date.parse(created) || 0 : 0,
  };
}

function httpFailure(answer: WireAnswer): VPSieClientError {
  let parsed: unknown;
  try {
    parsed = JSON.parse(answer.body);
  } catch {
    parsed = undefined;
  }
  const text = STATUS_TEXT[answer.status] ?? '';
  if (
    isObject(parsed) &&
    typeof parsed.error === 'string' &&
    typeof parsed.message === 'string' &&
    parsed.message
  )
    return new VPSieClientError(
      `VPSie API error (status: ${answer.status}): ${parsed.error} - ${parsed.message}`,
      answer.status,
    );
  return new VPSieClientError(
    `VPSie API error (status: ${answer.status}): ${text} - ${answer.body}`,
    answer.status,
  );
}

function apiFailure(res: Record<string, unknown>, operation: string): VPSieClientError {
  const code = Number(res.code) || 0;
  return new VPSieClientError(
    `VPSie API error (status: ${code}): ${operation} - ${String(res.message ?? '')}`,
    code,
  );
}
