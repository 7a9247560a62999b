/**
 * The VPSie client as the environment configures it (VPSIE_API_URL, VPSIE_TOKEN(_FILE) or
 * VPSIE_CLIENT_ID/SECRET(_FILE); src/config.ts), for the worker and the CLI alike.
 */
import { readFile } from 'node:fs/promises';
import type { Config } from '../config';
import { VPSieClient } from './vpsie';

/** null when no credentials are configured. A file is read at every use, so a rotated secret needs no restart. */
export function vpsieClientFromConfig(
  vpsie: Config['vpsie'],
): { client: VPSieClient; auth: 'token' | 'client credentials' } | null {
  const { baseUrl, tokenFile, token, clientId, clientIdFile, clientSecret, clientSecretFile } = vpsie;
  const value = (file?: string, text?: string) =>
    file ? async () => (await readFile(file, 'utf8')).trim() : async () => text ?? '';
  if (tokenFile || token)
    return {
      client: new VPSieClient({ baseUrl, token: tokenFile ? value(tokenFile) : (token as string) }),
      auth: 'token',
    };
  if ((clientIdFile || clientId) && (clientSecretFile || clientSecret)) {
    const id = value(clientIdFile, clientId);
    const secret = value(clientSecretFile, clientSecret);
    return {
      client: new VPSieClient({
        baseUrl,
        credentials: async () => ({ clientId: await id(), clientSecret: await secret() }),
      }),
      auth: 'client credentials',
    };
  }
  return null;
}
