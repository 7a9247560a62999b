/** What the runbook's step 4 ("Check VPSie console") keeps of a VM: enough to decide and to escalate. */
export interface VMSnapshot {
  id: number;
  identifier: string;
  name: string;
  hostname: string;
  status: string;
  ipAddress: string | null;
  /** null when the API did not say. */
  datacenterID: string | null;
  offeringID: string | null;
  createdOn: string;
  tags: string[];
}

/** The fields of a VPSie VM this module reads (the client's `VM` has them all). */
export interface VMFields {
  id: number;
  identifier: string;
  name: string;
  hostname: string;
  status: string;
  default_ip: string | null;
  datacenter_id: number | string | null;
  boxsize_id: number | string | null;
  created_on: string;
  tags: string[];
}

export function toVMSnapshot(vm: VMFields): VMSnapshot {
  return {
    id: vm.id,
    identifier: vm.identifier,
    name: vm.name,
    hostname: vm.hostname,
    status: vm.status,
    ipAddress: vm.default_ip,
    datacenterID: vm.datacenter_id === null ? null : String(vm.datacenter_id),
    offeringID: vm.boxsize_id === null ? null : String(vm.boxsize_id),
    createdOn: vm.created_on,
    tags: [...vm.tags],
  };
}

/** Runbook cause 5: which of a NodeGroup's `sshKeyIDs` the VPSie account does not know. */
export interface SSHKeyCheck {
  known: string[];
  unknown: string[];
}

/**
 * Matches NodeGroup key ids against the account's keys. NodeGroups in the wild carry either the numeric id or
 * the identifier (UUID), so both count.
 */
export function checkSSHKeyIDs(
  wanted: readonly string[],
  keys: ReadonlyArray<{ id: number; identifier: string }>,
): SSHKeyCheck {
  const ids = new Set(keys.flatMap((k) => [String(k.id), k.identifier]));
  return {
    known: wanted.filter((w) => ids.has(w)),
    unknown: wanted.filter((w) => !ids.has(w)),
  };
}

/** Runbook cause 1 ("verify offering/datacenter/image IDs are valid"): what the NodeGroup names that VPSie lacks. */
export interface CatalogCheck {
  unknownOfferings: string[];
  unavailableOfferings: string[];
  datacenter: 'ok' | 'unknown' | 'unavailable' | 'unset';
  image: 'ok' | 'unknown' | 'unavailable' | 'unset';
}

type CatalogItem = { id: string; available: boolean };

export function checkCatalog(
  wanted: { offeringIDs: readonly string[]; datacenterID: string | null; osImageID: string | null },
  catalog: {
    offerings: readonly CatalogItem[];
    datacenters: readonly CatalogItem[];
    images: readonly CatalogItem[];
  },
): CatalogCheck {
  const find = (items: readonly CatalogItem[], id: string | null): CatalogCheck['image'] => {
    if (!id) return 'unset';
    const item = items.find((i) => i.id === id);
    return !item ? 'unknown' : item.available ? 'ok' : 'unavailable';
  };
  return {
    unknownOfferings: wanted.offeringIDs.filter((id) => find(catalog.offerings, id) === 'unknown'),
    unavailableOfferings: wanted.offeringIDs.filter((id) => find(catalog.offerings, id) === 'unavailable'),
    datacenter: find(catalog.datacenters, wanted.datacenterID),
    image: find(catalog.images, wanted.osImageID),
  };
}
