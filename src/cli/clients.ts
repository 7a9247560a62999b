/**
 * The product's Kubernetes and VPSie clients, configured from the same environment as the worker
 * (KUBECONFIG/KUBE_CONTEXT, VPSIE_API_URL and the VPSie credentials, src/config.ts).
 */
import type { Config } from '../config';
import { KubernetesClient, loadKubeConfig } from '../clients/kubernetes';
import type { VPSieClient } from '../clients/vpsie';
import { vpsieClientFromConfig } from '../clients/vpsie-config';

export function kubernetesClient(
  config: Config,
  flags: { kubeconfig?: string; context?: string },
): KubernetesClient {
  return new KubernetesClient(
    loadKubeConfig({
      ...config.kubernetes,
      ...(flags.kubeconfig !== undefined ? { kubeconfig: flags.kubeconfig } : {}),
      ...(flags.context !== undefined ? { context: flags.context } : {}),
    }),
  );
}

/** null when no VPSie credentials are configured; files are read at each use, as the worker reads them. */
export function vpsieClient(config: Config): VPSieClient | null {
  return vpsieClientFromConfig(config.vpsie)?.client ?? null;
}
