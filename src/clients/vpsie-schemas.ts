/**
 * What the VPSie API answers, as zod schemas: the client parses every body through one of these, so a wrong
 * shape is a `malformed` error naming the field, never a wrong value further on. Field names are the API's
 * (domain.md §3 and §8; the managed-Kubernetes shapes are those the autoscaler decodes).
 *
 * Fields the runbook relies on are required (ids and identifiers); descriptive ones tolerate being absent or
 * null, since one odd VM must not make a whole list unreadable.
 */
import { z } from 'zod';

/** A string that may be absent or null in some API versions: '' then. */
const text = z
  .string()
  .nullish()
  .transform((v) => v ?? '');
/** An address: '' and null both mean "none". */
const address = z
  .string()
  .nullish()
  .transform((v) => (v ? v : null));
const count = z
  .number()
  .nullish()
  .transform((v) => v ?? null);
/** Numeric in some API versions, a string in others; kept as sent. */
const idLike = z
  .union([z.number(), z.string()])
  .nullish()
  .transform((v) => v ?? null);
/** Catalog ids are numbers or strings; NodeGroup specs hold strings, so they are normalised to strings. */
const catalogId = z.union([z.number(), z.string().min(1)]).transform(String);
/** `available` is a boolean, or 0/1 like the API's other flags; absent means available. */
const flag = z
  .union([z.boolean(), z.literal(0), z.literal(1)])
  .optional()
  .transform((v) => v === undefined || v === true || v === 1);

// ---------------------------------------------------------------------------------------------------------
// Envelopes
// ---------------------------------------------------------------------------------------------------------

/** `{"error": true, "code", "message"}`: an error, even in a 2xx answer. */
export const errorEnvelope = z.object({
  error: z.literal(true),
  code: z.union([z.number(), z.string()]).optional(),
  message: z.string().optional(),
});

/** The body of a non-2xx answer: `{error, message, code}`, `error` a string or a boolean. All optional. */
export const errorBody = z.object({
  error: z.union([z.string(), z.boolean()]).optional().catch(undefined),
  message: z.string().optional().catch(undefined),
  code: z.union([z.number(), z.string()]).optional().catch(undefined),
});

/**
 * A list: `{data: [...]}` with the count of every item either in `pagination.total` (the API the autoscaler
 * uses) or in `total` (the official SDK's shape). Without either, the answer is the whole list.
 */
export function listEnvelope<T extends z.ZodType>(item: T) {
  const nonNegative = z.number().int().nonnegative();
  return z.object({
    data: z.array(item),
    total: nonNegative.optional(),
    pagination: z.object({ total: nonNegative.optional(), total_pages: nonNegative.optional() }).nullish(),
  });
}

/** A single object comes as `{data: {...}}` or bare. */
export function objectEnvelope<T extends z.ZodType>(item: T) {
  return z.preprocess((body) => {
    if (typeof body === 'object' && body !== null && 'data' in body) return (body as { data: unknown }).data;
    return body;
  }, item);
}

/** `POST /auth/from/api`: `{accessToken: {token, expires}, refreshToken: {…}}`; `expires` is RFC 3339. */
export const tokenAnswer = z.object({
  accessToken: z.object({ token: z.string().min(1), expires: z.string().optional() }),
});

// ---------------------------------------------------------------------------------------------------------
// VMs and catalog
// ---------------------------------------------------------------------------------------------------------

export const vmSchema = z.object({
  /** What `VPSieNode.spec.vpsieInstanceID` holds. */
  id: z.number().int().positive(),
  /** UUID: VPSie may in principle reuse a numeric id, never a UUID. */
  identifier: z.string().min(1),
  name: text,
  hostname: text,
  /** `running`, `stopped`, `suspended`, `provisioning`, `error`, …; the autoscaler notes it may be empty. */
  status: text,
  cpu: count,
  /** MB */
  ram: count,
  /** GB */
  ssd: count,
  default_ip: address,
  default_ipv6: address,
  /** Offering id. */
  boxsize_id: idLike,
  datacenter_id: idLike,
  os_name: text,
  os_version: text,
  created_on: text,
  last_updated: text,
  tags: z
    .array(z.string())
    .nullish()
    .transform((v) => v ?? []),
  notes: text,
});

export const offeringSchema = z.object({
  id: catalogId,
  name: text,
  cpu: count,
  ram: count,
  disk: count,
  price: count,
  available: flag,
  datacenter_id: catalogId.nullish().transform((v) => v ?? null),
});

export const datacenterSchema = z.object({ id: catalogId, name: text, code: text, available: flag });

export const imageSchema = z.object({
  id: catalogId,
  name: text,
  version: text,
  distribution: text,
  available: flag,
});

export const sshKeySchema = z.object({
  /** Numeric, as the official SDK declares it. */
  id: z.number().int(),
  /** `GET /sshkey/{identifier}` takes this. */
  identifier: z.string().min(1),
  name: text,
  created_on: text,
});

// ---------------------------------------------------------------------------------------------------------
// Managed Kubernetes
// ---------------------------------------------------------------------------------------------------------

/** An item of `GET /k8s/cluster/all`. */
export const k8sClusterSchema = z.object({
  /** What `VPSieNode.spec.resourceIdentifier` and `NodeGroup.spec.resourceIdentifier` hold. */
  identifier: z.string().min(1),
  cluster_name: text,
  kube_version: text,
  count: count,
  managerCount: count,
  slaveCount: count,
  created_on: text,
});

/** A machine of a managed cluster, as `GET /k8s/cluster/byId/{id}` lists it in `nodes`. */
export const k8sNodeSchema = z.object({
  /** UUID: what `DELETE …/delete/slave` and `VPSieNode.spec.vpsieNodeIdentifier` name. */
  identifier: z.string().min(1),
  hostname: text,
  ip: address,
  status: text,
  /** `master` or `slave`. */
  role: text,
  cpu: count,
  ram: count,
  disk: count,
  created_on: address,
});

/**
 * `GET /k8s/cluster/byId/{id}`: the cluster with its machines in `nodes`; older answers split them into
 * `masters` and `slaves`, which the autoscaler also searches, so all three are read.
 */
export const k8sClusterInfoSchema = z
  .object({
    identifier: z.string().min(1),
    cluster_name: text,
    kube_version: text,
    status: text,
    nodes: z.array(k8sNodeSchema).nullish(),
    masters: z.array(k8sNodeSchema).nullish(),
    slaves: z.array(k8sNodeSchema).nullish(),
  })
  .transform(({ nodes, masters, slaves, ...cluster }) => {
    const all = new Map<string, z.output<typeof k8sNodeSchema>>();
    for (const n of [...(nodes ?? []), ...(slaves ?? []), ...(masters ?? [])]) {
      if (!all.has(n.identifier)) all.set(n.identifier, n);
    }
    return { ...cluster, nodes: [...all.values()] };
  });

/** An item of `GET /k8s/node/groups/byClusterId/{id}`. */
export const k8sNodeGroupSchema = z.object({
  /** Numeric: what `VPSieNode.spec.vpsieGroupID` and `…/add/slave/group/{id}` take. */
  id: z.number().int().positive(),
  identifier: z.string().min(1),
  group_name: text,
  boxsize_id: idLike,
  datacenter_id: idLike,
  dcIdentifier: text,
  nodes_count: count,
  cluster_id: idLike,
  created_on: text,
});

/**
 * `POST /k8s/cluster/byId/{id}/add/slave/group/{gid}`: `data` is the machine (with id 0 while VPSie is still
 * creating it, and usually an identifier), or just `true` (accepted, nothing known yet), or absent.
 */
export const addSlaveAnswer = z.object({
  data: z
    .union([
      z.literal(true),
      z.object({
        id: z.number().int().nonnegative().nullish(),
        identifier: text,
        hostname: text,
        status: text,
      }),
    ])
    .nullish(),
});

/** The first few problems of a failed parse, as `path: message`, without the values (they may echo secrets). */
export function describeIssues(error: z.ZodError): string {
  const shown = error.issues.slice(0, 3).map((i) => {
    const at = i.path.length ? i.path.map(String).join('.') : '(body)';
    return `${at}: ${i.message}`;
  });
  const more = error.issues.length > 3 ? ` (and ${error.issues.length - 3} more)` : '';
  return shown.join('; ') + more;
}
