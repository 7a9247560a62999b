/**
 * Starting and stopping the test servers that listen on 127.0.0.1: on a port the OS picks, and stopped at once,
 * hung and keep-alive connections included, rather than waiting for clients to go away.
 */
import type * as http from 'node:http';
import type * as https from 'node:https';
import type { AddressInfo, Socket } from 'node:net';

export type LoopbackServer = http.Server | https.Server;

const socketsOf = new WeakMap<LoopbackServer, Set<Socket>>();

/** Tracks the server's sockets (for {@link closeNow}) and listens on 127.0.0.1, random port; answers the port. */
export async function listenOnLoopback(server: LoopbackServer): Promise<number> {
  const sockets = new Set<Socket>();
  socketsOf.set(server, sockets);
  server.on('connection', (socket: Socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      server.off('error', reject);
      resolve();
    });
  });
  return (server.address() as AddressInfo).port;
}

/** Closes the server and destroys every connection it has, idle or not; resolves once it is closed. */
export async function closeNow(server: LoopbackServer): Promise<void> {
  const closed = new Promise<void>((resolve) => server.close(() => resolve()));
  server.closeAllConnections();
  const sockets = socketsOf.get(server);
  for (const s of sockets ?? []) s.destroy();
  sockets?.clear();
  await closed;
}
