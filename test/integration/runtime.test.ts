/**
 * The runtime with the real parts: runc, conmon, a busybox root. Needs root.
 */
import assert from "node:assert/strict";
import { existsSync, readFileSync } from "node:fs";
import { chmod, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { ContainerRuntime, closeInheritedDescriptors, readLogs } from "../../src/runtime/mod.ts";
import {
  busyboxRoot,
  CGROUP_PARENT,
  canRun,
  cleanup,
  destroy,
  host,
  hostInfo,
  newContainer,
  Output,
  scratchDir,
  specFor,
  within,
} from "./runtime_helpers.ts";

const skip = canRun();
let scratch = "";
let rt: ContainerRuntime;
let stateRoot = "";

before(async () => {
  if (skip) return;
  // Descriptors inherited by this process must not end up in long-lived monitors.
  closeInheritedDescriptors();
  scratch = scratchDir();
  stateRoot = join(scratch, "state");
  rt = new ContainerRuntime(host, { stateRoot });
  await busyboxRoot(scratch);
});

after(async () => {
  if (skip) return;
  await cleanup(scratch);
});

/** Creates, attaches, starts, waits; returns output and exit code. */
async function run(
  name: string,
  args: string[],
  opts: { stdinData?: string; spec?: Parameters<typeof specFor>[1]; keep?: boolean } = {},
): Promise<{ id: string; dir: string; out: Output; exitCode: number }> {
  const c = await newContainer(scratch, name);
  try {
    const spec = await specFor(c, { ...opts.spec, args });
    await rt.create(c.id, {
      bundleDir: c.dir,
      spec,
      logPath: join(c.dir, "ctr.log"),
      stdin: opts.stdinData !== undefined,
      stdinOnce: true,
    });
    const out = new Output();
    const session = await rt.attach(c.id, { onData: out.onData });
    await rt.start(c.id);
    if (opts.stdinData !== undefined) {
      await session.write(Buffer.from(opts.stdinData));
      session.end();
    }
    const exit = await within(rt.waitExit(c.id), 20000, `${name} to exit`);
    await within(session.done, 5000, "attach stream to end");
    return { id: c.id, dir: c.dir, out, exitCode: exit.exitCode };
  } finally {
    if (!opts.keep) await destroy(rt, c.id);
  }
}

test("echo hello world: output, exit 0, log", { skip }, async () => {
  const r = await run("echo", ["echo", "hello world"], { keep: true });
  try {
    assert.equal(r.out.stdout, "hello world\n");
    assert.equal(r.exitCode, 0);
    const entries = [];
    for await (const e of readLogs(join(r.dir, "ctr.log"))) entries.push(e);
    assert.equal(entries.length, 1);
    assert.equal(entries[0]?.stream, "stdout");
    assert.equal(entries[0]?.data.toString(), "hello world\n");
    assert.match(entries[0]!.time, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$/);
  } finally {
    await destroy(rt, r.id);
  }
});

test("exit codes: 3, 137 after SIGKILL, 127 not found, 126 not executable", { skip }, async () => {
  assert.equal((await run("exit3", ["sh", "-c", "exit 3"])).exitCode, 3);

  const c = await newContainer(scratch, "kill");
  try {
    await rt.create(c.id, { bundleDir: c.dir, spec: await specFor(c, { args: ["sleep", "1000"] }), logPath: join(c.dir, "ctr.log") });
    await rt.start(c.id);
    assert.equal((await rt.state(c.id)).status, "running");
    await rt.kill(c.id, "KILL");
    const exit = await within(rt.waitExit(c.id), 10000, "killed container to exit");
    assert.equal(exit.exitCode, 137);
    assert.equal(exit.oomKilled, false);
    assert.equal((await rt.state(c.id)).status, "stopped");
  } finally {
    await destroy(rt, c.id);
  }

  const nf = await newContainer(scratch, "notfound");
  await assert.rejects(
    rt.create(nf.id, { bundleDir: nf.dir, spec: await specFor(nf, { args: ["/no/such/binary"] }), logPath: join(nf.dir, "ctr.log") }),
    (e: { detail?: { exitCode?: number } }) => e.detail?.exitCode === 127,
  );
  const nx = await newContainer(scratch, "noexec");
  await writeFile(join(nx.rootfs, "script"), "#!/bin/sh\necho hi\n");
  await chmod(join(nx.rootfs, "script"), 0o644);
  await assert.rejects(
    rt.create(nx.id, { bundleDir: nx.dir, spec: await specFor(nx, { args: ["/script"] }), logPath: join(nx.dir, "ctr.log") }),
    (e: { detail?: { exitCode?: number } }) => e.detail?.exitCode === 126,
  );
});

test("stdin piped to cat, EOF ends it", { skip }, async () => {
  const r = await run("cat", ["cat"], { stdinData: "hi\nthere\n" });
  assert.equal(r.out.stdout, "hi\nthere\n");
  assert.equal(r.exitCode, 0);
});

test("TTY sh with input and resize", { skip }, async () => {
  const c = await newContainer(scratch, "tty");
  try {
    await rt.create(c.id, {
      bundleDir: c.dir,
      spec: await specFor(c, { args: ["sh"], tty: true }),
      logPath: join(c.dir, "ctr.log"),
      tty: true,
      stdin: true,
    });
    const out = new Output();
    const s = await rt.attach(c.id, { onData: out.onData });
    await rt.start(c.id);
    await rt.resize(c.id, 40, 100);
    await s.write(Buffer.from("stty size; echo TERM=$TERM; tty\n"));
    await out.waitFor("40 100");
    await out.waitFor("TERM=xterm");
    await out.waitFor("/dev/pts/0");
    await rt.resize(c.id, 50, 120);
    await s.write(Buffer.from("stty size\n"));
    await out.waitFor("50 120");
    await s.write(Buffer.from("exit 5\n"));
    assert.equal((await within(rt.waitExit(c.id), 10000, "tty exit")).exitCode, 5);
    assert.equal(out.stderr, "", "a TTY has only one stream");
  } finally {
    await destroy(rt, c.id);
  }
});

test("logs: streams, partial lines, tail, since, until", { skip }, async () => {
  const r = await run(
    "logs",
    ["sh", "-c", "echo one; sleep 0.1; echo two >&2; sleep 0.1; echo three; sleep 1.1; echo four; printf 'no newline'"],
    { keep: true },
  );
  try {
    const path = join(r.dir, "ctr.log");
    const all = [];
    for await (const e of readLogs(path)) all.push(e);
    assert.deepEqual(
      all.map((e) => [e.stream, e.data.toString()]),
      [
        ["stdout", "one\n"],
        ["stderr", "two\n"],
        ["stdout", "three\n"],
        ["stdout", "four\n"],
        ["stdout", "no newline"],
      ],
    );
    const tail = [];
    for await (const e of readLogs(path, { tail: 2 })) tail.push(e.data.toString());
    assert.deepEqual(tail, ["four\n", "no newline"]);
    const errOnly = [];
    for await (const e of readLogs(path, { stdout: false })) errOnly.push(e.data.toString());
    assert.deepEqual(errOnly, ["two\n"]);
    const since = [];
    for await (const e of readLogs(path, { sinceNanos: all[3]!.timeNanos })) since.push(e.data.toString());
    assert.deepEqual(since, ["four\n", "no newline"]);
    const until = [];
    for await (const e of readLogs(path, { untilNanos: all[3]!.timeNanos })) until.push(e.data.toString());
    assert.deepEqual(until, ["one\n", "two\n", "three\n"]);
  } finally {
    await destroy(rt, r.id);
  }
});

test("logs follow until the container exits", { skip }, async () => {
  const c = await newContainer(scratch, "follow");
  try {
    await rt.create(c.id, {
      bundleDir: c.dir,
      spec: await specFor(c, { args: ["sh", "-c", "for i in 1 2 3; do echo line$i; sleep 0.3; done"] }),
      logPath: join(c.dir, "ctr.log"),
    });
    await rt.start(c.id);
    const got: string[] = [];
    const reading = (async () => {
      for await (const e of readLogs(join(c.dir, "ctr.log"), { follow: true, stopWhen: rt.waitExit(c.id) })) got.push(e.data.toString());
    })();
    await within(reading, 15000, "follow to end");
    assert.deepEqual(got, ["line1\n", "line2\n", "line3\n"]);
  } finally {
    await destroy(rt, c.id);
  }
});

test("exec: output, exit code, stdin, tty, not found", { skip }, async () => {
  const c = await newContainer(scratch, "exec");
  try {
    const spec = await specFor(c, { args: ["sleep", "1000"] });
    await rt.create(c.id, { bundleDir: c.dir, spec, logPath: join(c.dir, "ctr.log") });
    await rt.start(c.id);
    const base = spec.process!;

    const out = new Output();
    const e1 = await rt.exec(c.id, {
      process: { ...base, args: ["sh", "-c", "echo out; echo err >&2; exit 7"], terminal: false },
      onData: out.onData,
    });
    assert.ok(e1.pid > 0);
    assert.equal((await within(e1.exit, 10000, "exec exit")).exitCode, 7);
    assert.equal(out.stdout, "out\n");
    assert.equal(out.stderr, "err\n");

    const out2 = new Output();
    const e2 = await rt.exec(c.id, { process: { ...base, args: ["cat"], terminal: false }, stdin: true, onData: out2.onData });
    await e2.write(Buffer.from("piped\n"));
    e2.end();
    assert.equal((await within(e2.exit, 10000, "exec cat exit")).exitCode, 0);
    assert.equal(out2.stdout, "piped\n");

    const out3 = new Output();
    const e3 = await rt.exec(c.id, { process: { ...base, args: ["sh"], terminal: true }, stdin: true, onData: out3.onData });
    await e3.resize(30, 90);
    await e3.write(Buffer.from("stty size; exit 2\n"));
    assert.equal((await within(e3.exit, 10000, "exec tty exit")).exitCode, 2);
    assert.match(out3.stdout, /30 90/);

    await assert.rejects(
      rt.exec(c.id, { process: { ...base, args: ["nope-not-here"], terminal: false } }),
      (e: { detail?: { exitCode?: number } }) => e.detail?.exitCode === 127,
    );
  } finally {
    await destroy(rt, c.id);
  }
});

test("pause and resume", { skip }, async () => {
  const c = await newContainer(scratch, "pause");
  try {
    await rt.create(c.id, { bundleDir: c.dir, spec: await specFor(c, { args: ["sleep", "1000"] }), logPath: join(c.dir, "ctr.log") });
    await rt.start(c.id);
    await rt.pause(c.id);
    assert.equal((await rt.state(c.id)).status, "paused");
    await rt.resume(c.id);
    assert.equal((await rt.state(c.id)).status, "running");
  } finally {
    await destroy(rt, c.id);
  }
});

test("security defaults: Docker's capabilities, masked /proc paths, read-only /proc/sys, seccomp", { skip }, async () => {
  // /proc/kcore is masked like the others; this kernel may not have it, so check one that exists.
  const masked =
    ["/proc/kcore", "/proc/timer_list", "/proc/keys"].find((p) => existsSync(p) && readFileSync(p).length > 0) ?? "/proc/kcore";
  const r = await run("sec", [
    "sh",
    "-c",
    `grep -E '^Cap(Inh|Eff|Bnd)' /proc/self/status; grep Seccomp: /proc/self/status; wc -c < ${masked}; echo 1 > /proc/sys/kernel/panic 2>/dev/null || echo ro-sys; unshare -U true 2>/dev/null || echo no-unshare`,
  ]);
  assert.match(r.out.stdout, /CapInh:\s+0000000000000000/);
  assert.match(r.out.stdout, /CapEff:\s+00000000a80425fb/);
  assert.match(r.out.stdout, /CapBnd:\s+00000000a80425fb/);
  assert.match(r.out.stdout, /Seccomp:\s+2/);
  assert.match(r.out.stdout, /^0$/m);
  assert.match(r.out.stdout, /ro-sys/);
  assert.match(r.out.stdout, /no-unshare/);
});

test("privileged: the host's bounding set, no seccomp", { skip }, async () => {
  const r = await run("priv", ["sh", "-c", "grep -E '^Cap(Eff|Bnd)|Seccomp:' /proc/self/status"], { spec: { args: [], privileged: true } });
  const bnd = /^CapBnd:\s*([0-9a-f]+)/m.exec(readFileSync("/proc/self/status", "utf8"))?.[1];
  assert.match(r.out.stdout, new RegExp(`CapEff:\\s+${bnd}`));
  assert.match(r.out.stdout, /Seccomp:\s+0/);
});

test("only stdio reaches the container", { skip }, async () => {
  // sh stays PID 1 (two commands: it forks ls instead of exec'ing it).
  const r = await run("fds", ["sh", "-c", "ls /proc/1/fd; true"]);
  assert.deepEqual(r.out.stdout.trim().split(/\s+/), ["0", "1", "2"], r.out.stderr);
});

test("user and working directory from the image", { skip }, async () => {
  const c = await newContainer(scratch, "user");
  try {
    await writeFile(join(c.rootfs, "etc/passwd"), "root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000:app:/home/app:/bin/sh\n");
    await writeFile(join(c.rootfs, "etc/group"), "root:x:0:\napp:x:1000:\nextra:x:2000:app\n");
    const spec = await specFor(c, { args: ["sh", "-c", "id; pwd; echo $HOME"], user: "app", cwd: "/work/here" });
    await rt.create(c.id, { bundleDir: c.dir, spec, logPath: join(c.dir, "ctr.log") });
    const out = new Output();
    const s = await rt.attach(c.id, { onData: out.onData });
    await rt.start(c.id);
    assert.equal((await within(rt.waitExit(c.id), 10000, "exit")).exitCode, 0);
    await s.done;
    assert.match(out.stdout, /uid=1000\(app\) gid=1000\(app\) groups=1000\(app\),2000\(extra\)/);
    assert.match(out.stdout, /\/work\/here\n\/home\/app\n/);
  } finally {
    await destroy(rt, c.id);
  }
});

test("--init runs an init as PID 1", { skip }, async () => {
  const r = await run("init", ["sh", "-c", "tr '\\0' ' ' < /proc/1/cmdline"], { spec: { args: [], init: true } });
  assert.match(r.out.stdout, /^\/sbin\/docker-init -- sh -c/);
});

test("resource limits: memory and pids in the cgroup, update, stats", { skip }, async () => {
  const c = await newContainer(scratch, "limits");
  try {
    const spec = await specFor(c, { args: ["sleep", "1000"], resources: { memory: 64 * 1024 * 1024, pidsLimit: 20 } });
    await rt.create(c.id, { bundleDir: c.dir, spec, logPath: join(c.dir, "ctr.log") });
    await rt.start(c.id);
    const cg = (ctl: string, file: string) =>
      hostInfo.cgroupVersion === 2
        ? join("/sys/fs/cgroup", CGROUP_PARENT, c.id, file)
        : join("/sys/fs/cgroup", ctl, CGROUP_PARENT, c.id, file);
    const memFile = hostInfo.cgroupVersion === 2 ? "memory.max" : "memory.limit_in_bytes";
    assert.equal(readFileSync(cg("memory", memFile), "utf8").trim(), String(64 * 1024 * 1024));
    assert.equal(readFileSync(cg("pids", "pids.max"), "utf8").trim(), "20");
    await rt.update(c.id, { memory: { limit: 128 * 1024 * 1024, swap: 256 * 1024 * 1024 }, pids: { limit: 30 } });
    assert.equal(readFileSync(cg("memory", memFile), "utf8").trim(), String(128 * 1024 * 1024));
    assert.equal(readFileSync(cg("pids", "pids.max"), "utf8").trim(), "30");
    const stats = await rt.stats(c.id);
    assert.ok((stats.memory_stats.usage ?? 0) > 0);
    assert.equal(stats.memory_stats.limit, 128 * 1024 * 1024);
    assert.ok((stats.pids_stats.current ?? 0) >= 1);
    assert.equal(stats.pids_stats.limit, 30);
    assert.ok(stats.cpu_stats.cpu_usage.total_usage > 0);
    assert.ok(stats.cpu_stats.system_cpu_usage > 0);
  } finally {
    await destroy(rt, c.id);
  }
});

test("containers outlive the runtime instance: restore, attach, exec, stop; exit while away", { skip }, async () => {
  const c = await newContainer(scratch, "survive");
  const d = await newContainer(scratch, "away");
  const rt2 = new ContainerRuntime(host, { stateRoot });
  try {
    await rt.create(c.id, {
      bundleDir: c.dir,
      spec: await specFor(c, { args: ["sh", "-c", 'trap "exit 143" TERM; echo started; while read l; do echo got:$l; done'] }),
      logPath: join(c.dir, "ctr.log"),
      stdin: true,
    });
    await rt.start(c.id);
    await rt.create(d.id, {
      bundleDir: d.dir,
      spec: await specFor(d, { args: ["sh", "-c", "sleep 0.3; exit 4"] }),
      logPath: join(d.dir, "ctr.log"),
    });
    await rt.start(d.id);
    const listed = await rt2.list();
    assert.ok(listed.some((x) => x.id === c.id && x.status === "running"));
    const monitorPid = (await rt.state(c.id)).monitorPid;
    assert.ok(monitorPid > 0);

    // A new instance knows nothing; it finds both again from their directories.
    await new Promise((r) => setTimeout(r, 800));
    const st = await rt2.restore(c.id, c.dir);
    assert.equal(st.status, "running");
    assert.equal(st.monitorPid, monitorPid);
    const away = await rt2.restore(d.id, d.dir);
    assert.equal(away.status, "stopped");
    assert.equal(away.exit?.exitCode, 4);

    const out = new Output();
    const s = await rt2.attach(c.id, { onData: out.onData });
    await s.write(Buffer.from("ping\n"));
    await out.waitFor("got:ping");
    s.close(); // leave-stdin-open: detaching keeps stdin for the next client
    const out2 = new Output();
    const s2 = await rt2.attach(c.id, { onData: out2.onData });
    await s2.write(Buffer.from("again\n"));
    await out2.waitFor("got:again");

    const eo = new Output();
    const e = await rt2.exec(c.id, {
      process: { ...(await specFor(c, { args: ["true"] })).process!, args: ["echo", "exec-ok"] },
      onData: eo.onData,
    });
    assert.equal((await e.exit).exitCode, 0);
    assert.equal(eo.stdout, "exec-ok\n");

    await rt2.kill(c.id, "TERM");
    assert.equal((await within(rt2.waitExit(c.id), 10000, "stop")).exitCode, 143);
    const lines = [];
    for await (const l of readLogs(join(c.dir, "ctr.log"))) lines.push(l.data.toString());
    assert.deepEqual(lines, ["started\n", "got:ping\n", "got:again\n"]);
  } finally {
    await destroy(rt2, c.id);
    await destroy(rt2, d.id);
    await destroy(rt, c.id);
    await destroy(rt, d.id);
  }
});

test("the monitor outlives a SIGKILLed creator; the log stays complete", { skip }, async () => {
  const c = await newContainer(scratch, "crash");
  const fixture = new URL("./runtime_child_fixture.ts", import.meta.url).pathname;
  const child = host.spawn(process.execPath, [fixture, stateRoot, c.id, c.dir, c.rootfs], { stdio: ["ignore", "pipe", "inherit"] });
  const rt2 = new ContainerRuntime(host, { stateRoot });
  try {
    await within(
      new Promise<void>((resolve, reject) => {
        child.stdout?.on("data", (d: Buffer) => d.toString().includes("ready") && resolve());
        child.on("exit", (code) => reject(new Error(`fixture exited with ${code}`)));
      }),
      20000,
      "fixture to start the container",
    );
    child.kill("SIGKILL");
    await new Promise((r) => setTimeout(r, 500));
    const st = await rt2.restore(c.id, c.dir);
    assert.equal(st.status, "running");
    assert.ok(st.monitorPid > 0);
    await rt2.kill(c.id, "KILL");
    assert.equal((await within(rt2.waitExit(c.id), 10000, "exit")).exitCode, 137);
    const ticks: number[] = [];
    for await (const e of readLogs(join(c.dir, "ctr.log"))) ticks.push(Number(/tick(\d+)/.exec(e.data.toString())?.[1]));
    assert.ok(ticks.length >= 5, `ticks: ${ticks.length}`);
    assert.deepEqual(
      ticks,
      ticks.map((_, i) => i + 1),
      "no line lost while the creator died",
    );
  } finally {
    child.kill("SIGKILL");
    await destroy(rt2, c.id);
  }
});

test("OOM kill is recorded", { skip }, async () => {
  const r = await run("oom", ["sh", "-c", "tail /dev/zero"], {
    spec: { args: [], resources: { memory: 8 * 1024 * 1024, memorySwap: 8 * 1024 * 1024 } },
    keep: true,
  });
  try {
    assert.equal(r.exitCode, 137);
    const st = await rt.state(r.id);
    assert.equal(st.exit?.oomKilled, true);
  } finally {
    await destroy(rt, r.id);
  }
});

test("options: read-only rootfs, device, sysctl defaults, ulimits, shm size, tmpfs, bind", { skip }, async () => {
  const c = await newContainer(scratch, "opts");
  try {
    const data = join(c.dir, "data");
    await writeFile(join(c.dir, "hosts"), "127.0.0.1 localhost opts-test\n");
    const spec = await specFor(c, {
      args: [
        "sh",
        "-c",
        [
          "touch /rootfile 2>/dev/null && echo rw-root || echo ro-root",
          "echo x > /dev/mynull && echo dev-ok",
          "cat /proc/sys/net/ipv4/ip_unprivileged_port_start",
          "echo nofile=$(ulimit -n)",
          "df -k /dev/shm | tail -1 | awk '{print \"shm=\" $2}'",
          "touch /scratch/x && echo tmpfs-ok",
          "grep opts-test /etc/hosts",
          "ls /proc/1/ns/net >/dev/null && hostname",
        ].join("; "),
      ],
      readonlyRootfs: true,
      devices: ["/dev/null:/dev/mynull:rw"],
      ulimits: [{ name: "nofile", soft: 512, hard: 1024 }],
      shmSize: 8 * 1024 * 1024,
      mounts: [
        { type: "tmpfs", destination: "/scratch" },
        { type: "bind", source: join(c.dir, "hosts"), destination: "/etc/hosts", readonly: true },
      ],
    });
    void data;
    await rt.create(c.id, { bundleDir: c.dir, spec, logPath: join(c.dir, "ctr.log") });
    const out = new Output();
    const s = await rt.attach(c.id, { onData: out.onData });
    await rt.start(c.id);
    assert.equal((await within(rt.waitExit(c.id), 10000, "exit")).exitCode, 0, out.stderr);
    await s.done;
    assert.match(out.stdout, /^ro-root$/m);
    assert.match(out.stdout, /^dev-ok$/m);
    assert.match(out.stdout, /^0$/m);
    assert.match(out.stdout, /^nofile=512$/m);
    assert.match(out.stdout, /^shm=8192$/m);
    assert.match(out.stdout, /^tmpfs-ok$/m);
    assert.match(out.stdout, /opts-test/);
    assert.match(out.stdout, new RegExp(`^${c.id.slice(0, 12)}$`, "m"));
  } finally {
    await destroy(rt, c.id);
  }
});

test("namespaces: host network and PID, a joined network namespace", { skip }, async () => {
  const hostIfaces = readFileSync("/proc/net/dev", "utf8").split("\n").length;
  const r = await run("hostns", ["sh", "-c", "wc -l < /proc/net/dev; ls /proc | grep -c '^[0-9]'"], {
    spec: { args: [], network: "host", pid: "host" },
  });
  const [ifaces, procs] = r.out.stdout.trim().split("\n").map(Number);
  assert.equal(ifaces, hostIfaces - 1);
  assert.ok((procs ?? 0) > 5, "sees the host's processes");

  const ns = `berth-rt-${process.pid}`;
  await host.run("ip", ["netns", "add", ns]);
  try {
    await host.run("ip", ["-n", ns, "link", "add", "berthdummy0", "type", "veth", "peer", "name", "berthdummy1"]);
    const j = await run("joinns", ["cat", "/proc/net/dev"], { spec: { args: [], network: { path: `/run/netns/${ns}` } } });
    assert.match(j.out.stdout, /berthdummy0/);
    const p = await run("privns", ["cat", "/proc/net/dev"]);
    assert.doesNotMatch(p.out.stdout, /berthdummy0|eth0/);
  } finally {
    await host.run("ip", ["netns", "delete", ns], { allowFailure: true });
  }
});
