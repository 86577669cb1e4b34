/**
 * 30 containers on two user-defined networks: every pair reaches each other by name inside a
 * network, nothing crosses networks (by name or by IP); after removing them all no veth, netns,
 * iptables rule, mount or port reservation of theirs remains.
 */
import assert from "node:assert/strict";
import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { existsSync, mkdirSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { after, before, test } from "node:test";
import { waitFor } from "./_wait.ts";

const root = `/var/tmp/berth-netscale-${process.pid}`;
const exec = `/run/berth-netscale-${process.pid}`;
const sock = `${exec}/berth.sock`;
const berthd = new URL("../../bin/berthd", import.meta.url).pathname;
const registryUp = spawnSync("curl", ["-sf", "http://127.0.0.1:5000/v2/"]).status === 0;
const skip = process.getuid?.() !== 0 ? "needs root" : !registryUp ? "needs the registry fixture on 127.0.0.1:5000" : false;
const PER_NET = 15;
const nets = [`ns-a-${process.pid}`, `ns-b-${process.pid}`];
const names = (n: number) => Array.from({ length: PER_NET }, (_, i) => `nsc-${n}-${i}-${process.pid}`);

let daemon: ChildProcess | undefined;

function d(...args: string[]): { code: number; out: string; err: string } {
  const r = spawnSync("docker", args, {
    env: { ...process.env, DOCKER_HOST: `unix://${sock}` },
    encoding: "utf8",
    timeout: 120000,
    killSignal: "SIGKILL",
  });
  return { code: r.status ?? -1, out: (r.stdout ?? "").trim(), err: (r.stderr ?? "").trim() };
}

function portFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = createServer();
    s.once("error", () => resolve(false));
    s.listen(port, "0.0.0.0", () => s.close(() => resolve(true)));
  });
}

before(async () => {
  if (skip) return;
  mkdirSync(root, { recursive: true });
  writeFileSync(`${root}/daemon.json`, JSON.stringify({ "registry-mirrors": ["http://127.0.0.1:5000"] }));
  daemon = spawn(
    berthd,
    ["--config-file", `${root}/daemon.json`, "--data-root", `${root}/data`, "--exec-root", exec, "-H", `unix://${sock}`],
    {
      stdio: ["ignore", "ignore", "inherit"],
      detached: true,
    },
  );
  assert.ok(await waitFor(() => d("version").code === 0, 20000), "berthd did not start");
  assert.equal(d("pull", "-q", "busybox").code, 0);
});

after(async () => {
  if (skip) return;
  const ids = d("ps", "-aq").out;
  if (ids) d("rm", "-f", ...ids.split("\n"));
  for (const n of nets) d("network", "rm", n);
  if (daemon?.pid) {
    try {
      process.kill(daemon.pid, "SIGTERM");
    } catch {
      // gone already
    }
    await waitFor(() => !existsSync(sock), 15000);
  }
  spawnSync("sh", ["-c", `grep -o ' ${root}[^ ]*' /proc/mounts | sort -r | xargs -r -n1 umount -l`]);
  rmSync(root, { recursive: true, force: true });
  rmSync(exec, { recursive: true, force: true });
});

test("30 containers on two networks: reachability by name inside, isolation across, nothing left after", {
  skip,
  timeout: 600000,
}, async () => {
  for (const n of nets) assert.equal(d("network", "create", n).code, 0);
  const bridges = nets.map((n) => `br-${d("network", "inspect", "--format", "{{.Id}}", n).out.slice(0, 12)}`);
  const ports = [38101, 38102];
  for (const [k, n] of nets.entries()) {
    for (const [i, c] of names(k).entries()) {
      const args = ["run", "-d", "--name", c, "--network", n];
      if (i < ports.length) args.push("-p", `${(ports[i] ?? 0) + k * 10}:80`);
      args.push("busybox", "sleep", "600");
      const r = d(...args);
      assert.equal(r.code, 0, r.err);
    }
  }
  const ipOf = (c: string) => d("inspect", "--format", "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}", c).out;
  const ips = nets.map((_, k) => names(k).map(ipOf));
  for (const [k] of nets.entries()) {
    const own = names(k);
    const other = names(1 - k);
    const otherIps = ips[1 - k] ?? [];
    for (const c of own) {
      const peers = own.filter((x) => x !== c).join(" ");
      const script = [
        `for n in ${peers}; do ping -c1 -W2 $n >/dev/null 2>&1 && echo ok || echo FAIL $n; done`,
        `for n in ${other.slice(0, 5).join(" ")}; do nslookup $n >/dev/null 2>&1 && echo LEAK-NAME $n; ping -c1 -W1 $n >/dev/null 2>&1 && echo LEAK $n; done`,
        `for ip in ${otherIps.join(" ")}; do (ping -c1 -W1 $ip >/dev/null 2>&1 && echo LEAK-IP $ip) & done; wait`,
      ].join("; ");
      const r = d("exec", c, "sh", "-c", script);
      const lines = r.out.split("\n").filter(Boolean);
      assert.equal(lines.filter((l) => l === "ok").length, PER_NET - 1, `${c}: ${r.out} ${r.err}`);
      assert.deepEqual(
        lines.filter((l) => l !== "ok"),
        [],
        `${c} must reach every peer by name and nothing on the other network`,
      );
    }
  }
  // Remove everything, then nothing of theirs may remain.
  const all = [...names(0), ...names(1)];
  const pins = all.map((c) => d("inspect", "-f", "{{.NetworkSettings.SandboxKey}}", c).out);
  assert.ok(
    pins.every((p) => p.startsWith(`${exec}/netns/`) && existsSync(p)),
    pins.join(" "),
  );
  assert.equal(d("rm", "-f", ...all).code, 0);
  for (const n of nets) assert.equal(d("network", "rm", n).code, 0);
  const links = spawnSync("ip", ["-o", "link"], { encoding: "utf8" }).stdout;
  for (const b of bridges) {
    assert.ok(!links.includes(`master ${b}`), `a veth is still attached to ${b}`);
    assert.ok(!links.includes(` ${b}:`), `bridge ${b} is still there`);
  }
  const netnsDir = `${exec}/netns`;
  for (const p of pins) assert.equal(existsSync(p), false, `${p} is still pinned`);
  // What is left is at most berthd's spare namespace for the next start (removed at its stop).
  const left = existsSync(netnsDir) ? readdirSync(netnsDir) : [];
  assert.ok(left.length <= 1 && left.every((f) => f.startsWith("spare-")), `pinned: ${left.join(" ")}`);
  const rules = spawnSync("sh", ["-c", "iptables-save; iptables-save -t nat; iptables-save -t raw"], { encoding: "utf8" }).stdout;
  for (const ipList of ips)
    for (const ip of ipList) assert.ok(!new RegExp(`${ip.replace(/\./g, "\\.")}(/32)?\\b`).test(rules), `a rule still names ${ip}`);
  for (const b of bridges) assert.ok(!rules.includes(b), `a rule still names ${b}`);
  const mounts = spawnSync("sh", ["-c", `grep -c ' ${root}' /proc/mounts || true`], { encoding: "utf8" }).stdout.trim();
  assert.equal(mounts, "0", "no container mount remains");
  for (const p of [...ports, ...ports.map((x) => x + 10)]) assert.ok(await portFree(p), `port ${p} is free again`);
});
