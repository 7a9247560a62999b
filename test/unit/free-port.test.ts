import net from 'node:net';
import { freePort, freePorts } from '../../src/temporal/free-port';

describe('freePort', () => {
  it('gives a port a server can bind at once, and the kernel does not hand it out again meanwhile', async () => {
    const port = await freePort();
    // Many bind(:0) calls right after: none gets the reserved port.
    const others = await Promise.all(
      Array.from({ length: 200 }, async () => {
        const s = net.createServer().listen(0, '127.0.0.1');
        await new Promise((r) => s.once('listening', r));
        const p = (s.address() as net.AddressInfo).port;
        return { s, p };
      }),
    );
    try {
      expect(others.map((o) => o.p)).not.toContain(port);
    } finally {
      await Promise.all(others.map((o) => new Promise((r) => o.s.close(r))));
    }
    const server = net.createServer().listen(port, '127.0.0.1');
    await new Promise((resolve, reject) => {
      server.once('listening', resolve);
      server.once('error', reject);
    });
    await new Promise((r) => server.close(r));
  });

  it('gives distinct ports', async () => {
    const ports = await freePorts(5);
    expect(new Set(ports).size).toBe(5);
  });
});
