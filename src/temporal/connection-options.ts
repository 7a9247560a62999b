/**
 * The TLS and API-key part of every connection the processes make to Temporal (Connection and NativeConnection
 * take the same shape), from TEMPORAL_TLS* and TEMPORAL_API_KEY(_FILE) (src/config.ts).
 */
import { readFile } from 'node:fs/promises';
import { ConfigError, type TemporalSecurity } from '../config';

export interface TemporalConnectionSecurity {
  /** false: plain gRPC. Always set, so that an API key alone never turns TLS on where TEMPORAL_TLS=false. */
  tls:
    | false
    | {
        serverNameOverride?: string;
        serverRootCACertificate?: Buffer;
        clientCertPair?: { crt: Buffer; key: Buffer };
      };
  apiKey?: string;
}

const CERTIFICATE = /-----BEGIN CERTIFICATE-----/;
const PRIVATE_KEY = /-----BEGIN (?:[A-Z]+ )?PRIVATE KEY-----/;

/**
 * Reads the files now and checks that each holds what its variable says, so that a wrong mount is named at
 * start-up rather than found as a failed TLS handshake. Throws a ConfigError naming every variable at fault (a
 * key's content is never quoted). The files are read once: a rotated certificate or key takes a restart.
 */
export async function temporalConnectionSecurity(
  security: TemporalSecurity,
): Promise<TemporalConnectionSecurity> {
  const problems: string[] = [];
  const read = async (variable: string, file: string, pem?: { re: RegExp; what: string }) => {
    try {
      const data = await readFile(file);
      if (pem && !pem.re.test(data.toString('utf8')))
        problems.push(`${variable} must name a PEM file with ${pem.what}, got ${file}`);
      return data;
    } catch (err) {
      problems.push(
        `${variable}: cannot read ${file} (${(err as NodeJS.ErrnoException).code ?? String(err)})`,
      );
      return undefined;
    }
  };
  let tls: TemporalConnectionSecurity['tls'] = false;
  if (security.tls) {
    const { serverCaCertFile, clientCertFile, clientKeyFile, serverName } = security.tls;
    // one after the other, so that the problems come in a stable order
    const ca = serverCaCertFile
      ? await read('TEMPORAL_TLS_SERVER_CA_CERT_PATH', serverCaCertFile, {
          re: CERTIFICATE,
          what: 'a certificate',
        })
      : undefined;
    const crt = clientCertFile
      ? await read('TEMPORAL_TLS_CLIENT_CERT_PATH', clientCertFile, {
          re: CERTIFICATE,
          what: 'a certificate',
        })
      : undefined;
    const key = clientKeyFile
      ? await read('TEMPORAL_TLS_CLIENT_KEY_PATH', clientKeyFile, { re: PRIVATE_KEY, what: 'a private key' })
      : undefined;
    tls = {
      ...(serverName ? { serverNameOverride: serverName } : {}),
      ...(ca ? { serverRootCACertificate: ca } : {}),
      ...(crt && key ? { clientCertPair: { crt, key } } : {}),
    };
  }
  let apiKey: string | undefined;
  if (security.apiKey?.variable === 'TEMPORAL_API_KEY') apiKey = security.apiKey.value;
  else if (security.apiKey) {
    const { variable, file } = security.apiKey;
    const text = (await read(variable, file))?.toString('utf8').trim();
    if (text === '') problems.push(`${variable}: ${file} is empty`);
    else if (text !== undefined && /\s/.test(text))
      problems.push(`${variable}: ${file} must hold the key alone (it has spaces or several lines)`);
    else apiKey = text;
  }
  if (problems.length) throw new ConfigError(problems);
  return { tls, ...(apiKey !== undefined ? { apiKey } : {}) };
}

/** For the start-up log: how the connection is secured, naming files and variables, never a secret. */
export function describeTemporalSecurity(security: TemporalSecurity): string {
  const parts: string[] = [];
  if (!security.tls) parts.push('plain gRPC');
  else {
    const { serverCaCertFile, clientCertFile, serverName } = security.tls;
    parts.push(
      `TLS (server CA: ${serverCaCertFile ?? "the system's"}${serverName ? `, server name ${serverName}` : ''}${
        clientCertFile ? `, client certificate ${clientCertFile}` : ''
      })`,
    );
  }
  if (security.apiKey) parts.push(`API key from ${security.apiKey.variable}`);
  return parts.join(', ');
}
