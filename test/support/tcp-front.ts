import net, { type AddressInfo } from 'node:net';

/**
 * A TCP pass-through on loopback in front of a server (a load balancer, a network path): while `down` it refuses
 * connections and cuts the open ones; `up` again listens on the same port. Fault tests put it between a client
 * and a server they want to take away and give back without restarting either.
 */
export class TcpFront {
  private server?: net.Server;
  private readonly sockets = new Set<net.Socket>();
  port = 0;

  constructor(private readonly targetPort: number) {}

  async up(): Promise<void> {
    const server = net.createServer((client) => {
      const upstream = net.connect(this.targetPort, '127.0.0.1');
      for (const sock of [client, upstream]) {
        this.sockets.add(sock);
        sock.once('close', () => this.sockets.delete(sock));
        sock.on('error', () => {
          client.destroy();
          upstream.destroy();
        });
      }
      client.pipe(upstream).pipe(client);
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.port, '127.0.0.1', () => resolve());
    });
    this.port = (server.address() as AddressInfo).port;
    this.server = server;
  }

  async down(): Promise<void> {
    const server = this.server;
    this.server = undefined;
    if (!server) return;
    const closed = new Promise<void>((r) => server.close(() => r()));
    for (const sock of this.sockets) sock.destroy();
    await closed;
  }
}
