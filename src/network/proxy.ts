import dgram from "node:dgram";
import { readFileSync } from "node:fs";
import net from "node:net";

/**
 * berthd's userland proxy for IPv6 published ports. Published ports reach IPv4 containers by
 * DNAT, which cannot cross address families; dockerd runs docker-proxy on `[::]:P` for that,
 * berthd does the same job in process: a v6-only listener whose connections (TCP) or client
 * flows (UDP) are relayed to the container's IPv4 address. IPv4 traffic never goes through it.
 */

/** Where a proxy sends what it receives. */

/**
 * Binds or listens (`start`, calling back once done) and resolves then, or rejects with the
 * socket's first error. From then on errors are ignored (a held port has nothing to report)
 * and the socket does not keep berthd alive.
 */
export async function holdPort(sock: NodeJS.EventEmitter & { unref(): unknown }, start: (done: () => void) => void): Promise<void> {
  await new Promise<void>((resolve, reject) => {
    sock.once("error", reject);
    start(() => {
      sock.off("error", reject);
      resolve();
    });
  });
  sock.on("error", () => {});
  sock.unref();
}

export interface ProxyTarget {
  ip: string;
  port: number;
}

/** An open proxy listener; `close` also drops every relayed connection or flow. */
export interface ProxyHandle {
  close(): void;
}

/** How long a UDP client flow lives without traffic (docker-proxy's conntrack timeout). */
export const UDP_IDLE_MS = 90_000;

let v6Cache: Promise<boolean> | undefined;

/** The host has IPv6: an address in /proc/net/if_inet6 and `::1` can be bound. Asked once per process. */
export function hostHasIpv6(): Promise<boolean> {
  v6Cache ??= (async () => {
    try {
      if (!readFileSync("/proc/net/if_inet6", "utf8").trim()) return false;
    } catch {
      return false;
    }
    const srv = net.createServer();
    return await new Promise<boolean>((resolve) => {
      srv.once("error", () => resolve(false));
      srv.listen({ host: "::1", port: 0, ipv6Only: true }, () => srv.close(() => resolve(true)));
    });
  })();
  return v6Cache;
}

/**
 * Listens on `host:port` (an IPv6 address, v6 only) and relays each TCP connection to the
 * target. Each direction is piped on its own, so a half-close (shutdown of writes) on one side
 * reaches the other; an error or reset on either side, or a failed connect to the target,
 * closes the pair.
 */
export async function listenTcpProxy(host: string, port: number, target: ProxyTarget): Promise<ProxyHandle> {
  const conns = new Set<net.Socket>();
  const srv = net.createServer({ allowHalfOpen: true, pauseOnConnect: true }, (client) => {
    const upstream = net.connect({ host: target.ip, port: target.port, allowHalfOpen: true });
    conns.add(client);
    conns.add(upstream);
    let done = false;
    const kill = () => {
      if (done) return;
      done = true;
      client.destroy();
      upstream.destroy();
    };
    client.on("error", kill);
    upstream.on("error", kill);
    client.on("close", () => {
      conns.delete(client);
      // A side gone for good (both directions finished, or reset): the other has nothing left to do.
      if (!upstream.destroyed && !upstream.writableEnded) kill();
    });
    upstream.on("close", () => {
      conns.delete(upstream);
      if (!client.destroyed && !client.writableEnded) kill();
    });
    client.setNoDelay(true);
    upstream.setNoDelay(true);
    upstream.once("connect", () => {
      client.pipe(upstream);
      upstream.pipe(client);
      client.resume();
    });
  });
  await holdPort(srv, (done) => srv.listen({ host, port, exclusive: true, ipv6Only: true }, done));
  return {
    close: () => {
      srv.close();
      for (const c of conns) c.destroy();
      conns.clear();
    },
  };
}

/**
 * Listens on `host:port` (an IPv6 address, v6 only) and relays UDP: each client address gets a
 * socket of its own toward the target, whose replies go back to that client from the
 * listening address. A flow idle for `idleMs` is closed.
 */
export async function listenUdpProxy(host: string, port: number, target: ProxyTarget, idleMs = UDP_IDLE_MS): Promise<ProxyHandle> {
  const front = dgram.createSocket({ type: "udp6", ipv6Only: true });
  const flows = new Map<string, { sock: dgram.Socket; timer: NodeJS.Timeout; queue: Buffer[] | undefined }>();
  let closed = false;
  const drop = (key: string) => {
    const f = flows.get(key);
    if (!f) return;
    flows.delete(key);
    clearTimeout(f.timer);
    try {
      f.sock.close();
    } catch {
      // already closed
    }
  };
  const touch = (key: string) => {
    const f = flows.get(key);
    if (!f) return;
    clearTimeout(f.timer);
    f.timer = setTimeout(() => drop(key), idleMs);
    f.timer.unref();
  };
  front.on("message", (msg, rinfo) => {
    if (closed) return;
    const key = `[${rinfo.address}]:${rinfo.port}`;
    let f = flows.get(key);
    if (!f) {
      const sock = dgram.createSocket({ type: "udp4" });
      const flow = { sock, timer: setTimeout(() => drop(key), idleMs), queue: [] as Buffer[] | undefined };
      flow.timer.unref();
      flows.set(key, flow);
      sock.on("error", () => drop(key));
      sock.on("message", (reply) => {
        if (closed) return;
        touch(key);
        front.send(reply, rinfo.port, rinfo.address);
      });
      // The connect is asynchronous: datagrams that arrive before it completes wait for it.
      sock.connect(target.port, target.ip, () => {
        const q = flow.queue ?? [];
        flow.queue = undefined;
        for (const m of q) sock.send(m, (e) => e && drop(key));
      });
      sock.unref();
      f = flow;
    } else touch(key);
    if (f.queue) {
      if (f.queue.length < 64) f.queue.push(msg);
      return;
    }
    f.sock.send(msg, (e) => e && drop(key));
  });
  await holdPort(front, (done) => front.bind({ address: host, port, exclusive: true }, done));
  return {
    close: () => {
      closed = true;
      for (const k of [...flows.keys()]) drop(k);
      front.close();
    },
  };
}
