import { once } from 'node:events';
import net from 'node:net';

/**
 * A port nothing listens on, kept from being handed out again for a minute. A port that was merely bound and
 * closed goes straight back to the kernel's pool, so the next `bind(:0)` anywhere on the machine (another
 * server picking ports for its own services at the same moment) may get it before our server binds it. Leaving
 * one connection to it in TIME_WAIT, closed from the listening side first, keeps the kernel from choosing it for
 * `bind(:0)` while an explicit bind (with SO_REUSEADDR, which libuv and Go set) still succeeds: the trick the
 * Temporal CLI uses for its own ports.
 */
export async function freePort(ip = '127.0.0.1'): Promise<number> {
  const server = net.createServer();
  server.unref();
  server.listen(0, ip);
  await once(server, 'listening');
  const { port } = server.address() as net.AddressInfo;
  try {
    const accepted = once(server, 'connection') as Promise<[net.Socket]>;
    const client = net.connect(port, ip);
    await once(client, 'connect');
    const [serverSide] = await accepted;
    const closed = Promise.all([once(serverSide, 'close'), once(client, 'close')]);
    client.on('end', () => client.end()); // answer the server side's FIN with ours
    serverSide.end(); // the listening side closes first: it is the one left in TIME_WAIT
    await closed;
  } finally {
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }
  return port;
}

/** `n` distinct free ports (see {@link freePort}). */
export async function freePorts(n: number, ip = '127.0.0.1'): Promise<number[]> {
  const ports = new Set<number>();
  while (ports.size < n) ports.add(await freePort(ip));
  return [...ports];
}
