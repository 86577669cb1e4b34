/**
 * Black-box container lifecycle tests through real clients (the docker CLI and berth) against
 * the berthd that scripts/test.sh started. Resources are named after the test and removed.
 */
import assert from "node:assert/strict";
import { after, describe, test } from "node:test";
import { request } from "node:http";
import { clients, ok, run, SOCKET, uniq, until } from "./_lib.ts";

/** One Engine API call on the test daemon's socket. */
function api(method: string, path: string, body?: unknown): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ socketPath: SOCKET, method, path: `/v1.47${path}`, headers: { "Content-Type": "application/json" } }, (res) => {
      let text = "";
      res.setEncoding("utf8");
      res.on("data", (d: string) => {
        text += d;
      });
      res.on("end", () => resolve({ status: res.statusCode ?? 0, text }));
    });
    req.on("error", reject);
    req.end(body === undefined ? undefined : JSON.stringify(body));
  });
}

const skip = !SOCKET || process.getuid?.() !== 0 ? "needs root and BERTH_TEST_SOCKET (scripts/test.sh)" : false;

for (const client of clients()) {
  const name = client.endsWith("berth") ? "berth" : "docker";
  describe(`containers via ${name}`, { skip }, () => {
    const made: string[] = [];
    const n = (p: string) => {
      const x = uniq(`e2e-${p}`);
      made.push(x);
      return x;
    };
    after(() => {
      if (made.length) run(client, ["rm", "-f", ...made]);
    });

    test("run prints the output and removes with --rm", () => {
      ok(client, ["pull", "-q", "busybox"]);
      assert.equal(ok(client, ["run", "--rm", "busybox", "echo", "hello", "world"]), "hello world");
    });

    test("exit codes follow Docker: code, 128+signal, 127, 126", () => {
      assert.equal(run(client, ["run", "--rm", "busybox", "sh", "-c", "exit 3"]).code, 3);
      // PID 1 cannot be SIGKILLed from inside its namespace: kill a child and pass its status on.
      assert.equal(run(client, ["run", "--rm", "busybox", "sh", "-c", "sleep 100 & kill -9 $!; wait $!"]).code, 137);
      const nf = run(client, ["run", "--rm", "busybox", "no-such-binary"]);
      assert.equal(nf.code, 127);
      assert.match(nf.err, /executable file not found/);
      assert.equal(run(client, ["run", "--rm", "busybox", "/etc/passwd"]).code, 126);
    });

    test("--network none: loopback only, and another container can join it", () => {
      assert.equal(ok(client, ["run", "--rm", "--network", "none", "busybox", "sh", "-c", "ip -o link | cut -d: -f2 | tr -d ' '"]), "lo");
      assert.match(ok(client, ["run", "--rm", "--network", "none", "busybox", "ping", "-c1", "-W2", "127.0.0.1"]), /1 packets received/);
      const owner = n("none-owner");
      ok(client, ["run", "-d", "--name", owner, "--network", "none", "busybox", "sh", "-c", "echo up > /tmp/x; sleep 60"]);
      ok(client, ["run", "-d", "--rm", "--network", `container:${owner}`, "busybox", "nc", "-l", "-p", "7070", "-e", "echo", "joined"]);
      // Same namespace: the owner reaches the joiner's listener on its own loopback.
      let got = "";
      for (let i = 0; i < 50 && got !== "joined"; i++)
        got = run(client, ["exec", owner, "sh", "-c", "nc 127.0.0.1 7070 </dev/null"]).out.trim();
      assert.equal(got, "joined");
      ok(client, ["rm", "-f", owner]);
    });

    test("/.dockerenv and /etc/mtab as in Docker's init layer, left out of diff, commit and a changed file shows", () => {
      assert.equal(
        ok(client, ["run", "--rm", "busybox", "sh", "-c", "stat -c '%F %s %a' /.dockerenv; readlink /etc/mtab"]),
        "regular empty file 0 755\n/proc/mounts",
      );
      assert.equal(ok(client, ["run", "--rm", "--read-only", "busybox", "ls", "/.dockerenv"]), "/.dockerenv");
      const c = n("initfiles");
      ok(client, ["run", "--name", c, "busybox", "sh", "-c", "echo x > /tmp/f"]);
      assert.equal(ok(client, ["diff", c]), "C /tmp\nA /tmp/f");
      const img = n("initimg");
      ok(client, ["commit", c, img]);
      ok(client, ["rm", c]);
      // The committed layer has neither: the new container gets fresh ones, not the image's.
      const layer = ok(client, ["run", "--rm", img, "sh", "-c", "cat /tmp/f; stat -c %s /.dockerenv"]);
      assert.equal(layer, "x\n0");
      ok(client, ["rmi", img]);
      const w = n("initwrite");
      ok(client, ["run", "--name", w, "busybox", "sh", "-c", "echo x > /.dockerenv"]);
      assert.match(ok(client, ["diff", w]), /\/\.dockerenv/);
      ok(client, ["rm", w]);
    });

    test("details as dockerd: groups, tmpfs flags, host network name, log drivers, swap default, signals", async () => {
      // The primary group leads the supplementary list (containerd's way), so `id` lists it.
      assert.equal(ok(client, ["run", "--rm", "busybox", "id"]), "uid=0(root) gid=0(root) groups=0(root)");
      assert.equal(ok(client, ["run", "--rm", "-u", "1000:1000", "busybox", "id"]), "uid=1000 gid=1000 groups=1000");
      // --tmpfs and --mount type=tmpfs default to noexec,nosuid,nodev; exec lifts noexec.
      assert.match(ok(client, ["run", "--rm", "--tmpfs", "/t", "busybox", "grep", " /t ", "/proc/mounts"]), /rw,nosuid,nodev,noexec/);
      assert.match(
        ok(client, ["run", "--rm", "--tmpfs", "/t:exec", "busybox", "grep", " /t ", "/proc/mounts"]),
        /rw,nosuid,nodev,relatime/,
      );
      // On the host's network the container has the host's name and /etc/hosts.
      const hostName = ok("hostname", []);
      assert.equal(ok(client, ["run", "--rm", "--network", "host", "busybox", "hostname"]), hostName);
      // --log-driver none: output still reaches the client, `logs` refuses; unknown drivers fail the create.
      assert.equal(ok(client, ["run", "--rm", "--log-driver", "none", "busybox", "echo", "hi"]), "hi");
      const quiet = n("nolog");
      ok(client, ["run", "-d", "--name", quiet, "--log-driver", "none", "busybox", "echo", "hi"]);
      const lr = run(client, ["logs", quiet]);
      assert.notEqual(lr.code, 0);
      assert.match(lr.err, /configured logging driver does not support reading/);
      const bad = run(client, ["run", "--rm", "--log-driver", "nosuch", "busybox", "true"]);
      assert.equal(bad.code, 125);
      assert.match(bad.err, /error looking up logging plugin nosuch/);
      assert.doesNotMatch(bad.err + bad.out, /Pulling/, "not taken for a missing image");
      // logs --details puts the (empty) attribute set before each line.
      const d = n("details");
      ok(client, ["run", "-d", "--name", d, "busybox", "echo", "one"]);
      assert.ok(await until(() => run(client, ["logs", d]).out.includes("one")));
      assert.equal(run(client, ["logs", "--details", d]).out, " one\n");
      // A memory limit without a swap limit allows as much swap again; bad stop signals fail the create.
      const m = n("swap");
      ok(client, ["create", "--name", m, "--memory", "100m", "busybox", "true"]);
      assert.equal(ok(client, ["inspect", "-f", "{{.HostConfig.MemorySwap}}", m]), String(200 * 1024 * 1024));
      const sig = run(client, ["create", "--stop-signal", "NOPE", "busybox", "true"]);
      assert.notEqual(sig.code, 0);
      assert.match(sig.err, /Invalid signal: NOPE/);
      assert.match(run(client, ["kill", "-s", "NOPE", "no-such-container-x"]).err, /Invalid signal: NOPE/);
    });

    test("events --since 10s --until 0s includes what just happened (the CLI sends whole seconds)", () => {
      const c = n("events");
      ok(client, ["run", "-d", "--name", c, "busybox", "sleep", "30"]);
      ok(client, ["pause", c]);
      ok(client, ["unpause", c]);
      const got = ok(client, ["events", "--since", "10s", "--until", "0s", "--filter", `container=${c}`, "--format", "{{.Action}}"]);
      assert.deepEqual(got.split("\n"), ["create", "start", "pause", "unpause"]);
    });

    test("events as dockerd's: volume mount and unmount, kill by number, attach, image pull and untag names", () => {
      const c = n("evts");
      const v = n("evvol");
      const net = n("evnet");
      const since = ok(client, ["version", "--format", "{{.Server.Version}}"]) ? String(Math.floor(Date.now() / 1000) - 1) : "";
      ok(client, ["network", "create", net]);
      ok(client, ["run", "--name", c, "--network", net, "-v", `${v}:/x:ro`, "-v", "/anon", "busybox", "true"]);
      ok(client, ["run", "-d", "--name", `${c}-k`, "busybox", "sleep", "30"]);
      ok(client, ["kill", "-s", "HUP", `${c}-k`]);
      ok(client, ["rm", "-f", `${c}-k`]);
      ok(client, ["rm", "-v", c]);
      ok(client, ["volume", "rm", v]);
      ok(client, ["network", "rm", net]);
      ok(client, ["pull", "-q", "busybox"]);
      ok(client, ["tag", "busybox", `${c}:t`]);
      ok(client, ["rmi", `${c}:t`]);
      const id = ok(client, ["image", "inspect", "-f", "{{.Id}}", "busybox"]);
      const until = String(Math.floor(Date.now() / 1000) + 1);
      const ev = (filter: string, format: string) =>
        ok(client, ["events", "--since", since, "--until", until, "--filter", filter, "--format", format]).split("\n");
      const vol = ev(`volume=${v}`, "{{.Action}}");
      assert.deepEqual(vol, ["create", "mount", "unmount", "destroy"]);
      const mount = ev(
        `volume=${v}`,
        "{{if .Actor.Attributes.destination}}{{.Actor.Attributes.destination}} {{.Actor.Attributes.driver}}{{end}}",
      );
      assert.deepEqual(mount.filter(Boolean), ["/x local"]);
      const named = ev(`container=${c}`, "{{.Type}} {{.Action}}").filter((l) => l.startsWith("container"));
      assert.deepEqual(named, ["container create", "container attach", "container start", "container die", "container destroy"]);
      // The anonymous volume is mounted and destroyed with the container (rm -v).
      assert.equal(ev("type=volume", "{{.Action}}").filter((a) => a === "mount").length >= 2, true);
      const kills = ev(`container=${c}-k`, "{{.Action}} {{.Actor.Attributes.signal}}").filter((l) => l.startsWith("kill"));
      assert.deepEqual(kills, ["kill 1", "kill 9"]);
      const order = ev(`network=${net}`, "{{.Action}}");
      assert.deepEqual(order, ["create", "connect", "disconnect", "destroy"]);
      const img = ev("type=image", "{{.Action}} {{.Actor.ID}} {{.Actor.Attributes.name}}");
      assert.ok(img.includes("pull busybox:latest busybox"), img.join("; "));
      assert.ok(img.includes(`untag ${id} ${id}`), img.join("; "));
    });

    test("--runtime picks a runtime from daemon.json; unknown names fail the create", () => {
      const runtimes = JSON.parse(ok(client, ["info", "--format", "{{json .Runtimes}}"])) as Record<string, unknown>;
      assert.ok("runc" in runtimes);
      const alt = "runc-alt" in runtimes; // scripts/test.sh configures it
      if (alt) {
        const c = n("rt");
        ok(client, ["run", "-d", "--name", c, "--runtime", "runc-alt", "busybox", "sleep", "30"]);
        assert.equal(ok(client, ["inspect", "-f", "{{.HostConfig.Runtime}}", c]), "runc-alt");
        assert.equal(ok(client, ["exec", c, "echo", "in-alt"]), "in-alt");
        ok(client, ["rm", "-f", c]);
      }
      const d = n("rt-default");
      ok(client, ["create", "--name", d, "busybox", "true"]);
      assert.equal(ok(client, ["inspect", "-f", "{{.HostConfig.Runtime}}", d]), "runc");
      const bad = run(client, ["run", "--rm", "--runtime", "nosuch", "busybox", "true"]);
      assert.equal(bad.code, 125);
      assert.match(bad.err, /unknown or invalid runtime name: nosuch/);
    });

    test("when run --rm returns, its published port and its network are free at once", () => {
      const port = String(20000 + Math.floor(Math.random() * 20000));
      for (let i = 0; i < 3; i++) ok(client, ["run", "--rm", "-p", `127.0.0.1:${port}:80`, "busybox", "true"]);
      const net = n("rmnet");
      ok(client, ["network", "create", net]);
      // Its veth is gone too: the host's interfaces are as before (acceptance 16 counts them).
      const links = () => ok("ip", ["-o", "link"]).split("\n").length;
      const before = links();
      ok(client, ["run", "--rm", "--network", net, "busybox", "true"]);
      assert.equal(links(), before);
      ok(client, ["network", "rm", net]);
    });

    test("--log-opt max-size with max-file keeps rotated files as json-file does", async () => {
      const c = n("rotate");
      ok(client, [
        "run",
        "-d",
        "--name",
        c,
        "--log-opt",
        "max-size=1k",
        "--log-opt",
        "max-file=3",
        "busybox",
        "sh",
        "-c",
        "for i in $(seq 1 80); do echo line-$i-xxxxxxxxxxxxxxxxxxxxxxxxxxxxxx; sleep 0.03; done; sleep 30",
      ]);
      assert.ok(await until(() => run(client, ["logs", c]).out.includes("line-80-"), 15000));
      await new Promise((r) => setTimeout(r, 1500)); // a rotation tick
      const lines = run(client, ["logs", c]).out.trim().split("\n");
      assert.equal(lines.at(-1)?.startsWith("line-80-"), true);
      // One 1 KiB file holds about 11 of these lines; three hold more than one, and not all 80.
      assert.ok(lines.length > 15 && lines.length < 80, `kept ${lines.length} lines`);
      const nums = lines.map((l) => Number(l.split("-")[1]));
      assert.deepEqual(
        nums,
        [...nums].sort((a, b) => a - b),
        "oldest first, in order",
      );
      assert.match(run(client, ["run", "--rm", "--log-opt", "nosuch=1", "busybox", "true"]).err, /unknown log opt 'nosuch'/);
    });

    test("kill (SIGKILL) returns once the exit is recorded", () => {
      for (let i = 0; i < 3; i++) {
        const c = n(`kill${i}`);
        ok(client, ["run", "-d", "--name", c, "busybox", "sleep", "30"]);
        ok(client, ["kill", c]);
        assert.match(ok(client, ["ps", "-a", "--filter", `name=${c}`, "--format", "{{.Status}}"]), /^Exited \(137\)/);
      }
    });

    test("stop and kill return with the published ports free", async () => {
      const port = String(20000 + Math.floor(Math.random() * 20000));
      // Straight through the API, so that no client start-up hides a late release.
      const body = {
        Image: "busybox",
        Cmd: ["sleep", "30"],
        HostConfig: { PortBindings: { "80/tcp": [{ HostIp: "127.0.0.1", HostPort: port }] } },
      };
      for (const how of ["stop?t=0", "kill", "stop?t=0", "kill"]) {
        const c = n("port-free");
        const made = await api("POST", `/containers/create?name=${c}`, body);
        assert.equal(made.status, 201, made.text);
        const started = await api("POST", `/containers/${c}/start`);
        assert.equal(started.status, 204, started.text);
        assert.equal((await api("POST", `/containers/${c}/${how}`)).status, 204);
      }
    });

    test("--platform that the local image does not match fails the create; the matching one runs", () => {
      const bad = run(client, ["run", "--rm", "--platform", "linux/arm64", "busybox", "true"]);
      assert.equal(bad.code, 125);
      assert.match(bad.err, /does not match the specified platform: wanted linux\/arm64, actual: linux\/amd64/);
      assert.equal(ok(client, ["run", "--rm", "--platform", "linux/amd64", "busybox", "echo", "ok"]), "ok");
    });

    test("a TTY starts at the client's terminal size (run -t, exec -t)", () => {
      const c = n("tty-size");
      ok(client, ["run", "-d", "--name", c, "busybox", "sleep", "30"]);
      // script(1) gives the client a terminal of 33x111; the client sends it as ConsoleSize.
      const inTerm = (cmd: string) =>
        run("script", ["-qec", `stty rows 33 cols 111; ${client} ${cmd}`, "/dev/null"])
          .out.replace(/\r/g, "")
          .trim();
      assert.equal(inTerm("run --rm -t busybox stty size"), "33 111");
      assert.equal(inTerm(`exec -t ${c} stty size`), "33 111");
    });

    test("stdin is piped to the container and closed at EOF", () => {
      assert.equal(ok(client, ["run", "--rm", "-i", "busybox", "cat"], { input: "piped in\n" }), "piped in");
      assert.equal(ok(client, ["run", "--rm", "-i", "busybox", "wc", "-l"], { input: "a\nb\nc\n" }), "3");
    });

    test("a tty gives the process a terminal", () => {
      assert.match(ok(client, ["run", "--rm", "-t", "busybox", "tty"]), /^\/dev\/pts\/\d+/);
    });

    test("detached containers: logs, stop, start, restart, inspect", async () => {
      const c = n("detached");
      ok(client, [
        "run",
        "-d",
        "--name",
        c,
        "busybox",
        "sh",
        "-c",
        "echo started; trap 'echo bye; exit 0' TERM; while true; do sleep 0.1; done",
      ]);
      assert.ok(await until(() => run(client, ["logs", c]).out.includes("started")));
      assert.equal(ok(client, ["inspect", "--format", "{{.State.Running}}", c]), "true");
      assert.equal(ok(client, ["inspect", "--format", "{{.State.Status}}", c]), "running");
      ok(client, ["stop", "-t", "5", c]);
      assert.equal(ok(client, ["inspect", "--format", "{{.State.Status}} {{.State.ExitCode}}", c]), "exited 0");
      assert.match(ok(client, ["logs", c]), /bye/);
      ok(client, ["start", c]);
      assert.equal(ok(client, ["inspect", "--format", "{{.State.Running}}", c]), "true");
      ok(client, ["restart", "-t", "1", c]);
      assert.equal(ok(client, ["inspect", "--format", "{{.State.Running}}", c]), "true");
      ok(client, ["kill", c]);
      assert.equal(ok(client, ["wait", c]), "137");
    });

    test("logs with tail, timestamps and both streams", () => {
      const c = n("logs");
      ok(client, ["run", "--name", c, "busybox", "sh", "-c", "echo err >&2; sleep 0.2; echo one; echo two; echo three"]);
      assert.equal(ok(client, ["logs", "--tail", "1", c]), "three");
      const all = run(client, ["logs", c]);
      assert.match(all.out, /one\ntwo\nthree/);
      assert.match(all.err, /err/);
      assert.match(ok(client, ["logs", "-t", "--tail", "1", c]), /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d+Z three$/);
    });

    test("exec runs in the container with its exit code and stdin", () => {
      const c = n("exec");
      ok(client, ["run", "-d", "--name", c, "busybox", "sleep", "300"]);
      assert.equal(ok(client, ["exec", c, "cat", "/etc/hostname"]), ok(client, ["inspect", "--format", "{{.Config.Hostname}}", c]));
      assert.equal(run(client, ["exec", c, "sh", "-c", "exit 7"]).code, 7);
      assert.equal(ok(client, ["exec", "-i", c, "cat"], { input: "via exec\n" }), "via exec");
      assert.equal(ok(client, ["exec", "-u", "nobody", c, "id", "-u"]), "65534");
      assert.equal(ok(client, ["exec", "-w", "/tmp", "-e", "X=1", c, "sh", "-c", "echo $PWD $X"]), "/tmp 1");
    });

    test("names, labels and ps filters", () => {
      const a = n("ps-a");
      const b = n("ps-b");
      ok(client, ["run", "-d", "--name", a, "-l", "tier=web", "busybox", "sleep", "300"]);
      assert.equal(run(client, ["run", "--name", b, "-l", "tier=db", "busybox", "sh", "-c", "exit 2"]).code, 2);
      const running = ok(client, ["ps", "--format", "{{.Names}}"]).split("\n");
      assert.ok(running.includes(a));
      assert.ok(!running.includes(b));
      assert.equal(ok(client, ["ps", "-a", "--filter", "label=tier=db", "--format", "{{.Names}}"]), b);
      assert.equal(ok(client, ["ps", "-a", "--filter", `name=${b}`, "--filter", "exited=2", "--format", "{{.Names}}"]), b);
      assert.equal(ok(client, ["ps", "-a", "--filter", "status=running", "--filter", "label=tier", "--format", "{{.Names}}"]), a);
      assert.ok(ok(client, ["ps", "-a", "--filter", "ancestor=busybox", "--format", "{{.Names}}"]).split("\n").includes(b));
      const dup = run(client, ["create", "--name", a, "busybox"]);
      assert.notEqual(dup.code, 0);
      assert.match(dup.err, /is already in use/);
      const renamed = `${a}-renamed`;
      ok(client, ["rename", a, renamed]);
      made.push(renamed);
      assert.equal(ok(client, ["inspect", "--format", "{{.Name}}", renamed]), `/${renamed}`);
    });

    test("pause and unpause freeze the container", () => {
      const c = n("pause");
      ok(client, ["run", "-d", "--name", c, "busybox", "sleep", "300"]);
      ok(client, ["pause", c]);
      assert.equal(ok(client, ["inspect", "--format", "{{.State.Status}}", c]), "paused");
      ok(client, ["unpause", c]);
      assert.equal(ok(client, ["inspect", "--format", "{{.State.Status}}", c]), "running");
    });

    test("security defaults: Docker's 14 capabilities, masked paths, seccomp", () => {
      const caps = ok(client, ["run", "--rm", "busybox", "grep", "-E", "^Cap(Eff|Inh|Bnd)", "/proc/self/status"]);
      assert.match(caps, /CapInh:\s+0000000000000000/);
      assert.match(caps, /CapEff:\s+00000000a80425fb/);
      assert.match(ok(client, ["run", "--rm", "busybox", "grep", "Seccomp:", "/proc/self/status"]), /Seccomp:\s+2/);
      assert.equal(ok(client, ["run", "--rm", "busybox", "cat", "/proc/timer_list"]), "");
      assert.notEqual(run(client, ["run", "--rm", "busybox", "sh", "-c", "echo 1 > /proc/sys/kernel/panic"]).code, 0);
      assert.match(ok(client, ["run", "--rm", "--cap-drop", "ALL", "busybox", "grep", "CapEff", "/proc/self/status"]), /0000000000000000/);
      assert.match(ok(client, ["run", "--rm", "--privileged", "busybox", "grep", "Seccomp:", "/proc/self/status"]), /Seccomp:\s+0/);
      assert.notEqual(run(client, ["run", "--rm", "--read-only", "busybox", "touch", "/x"]).code, 0);
    });

    test("resource limits reach the cgroup; update changes them", () => {
      const c = n("limits");
      ok(client, ["run", "-d", "--name", c, "-m", "64m", "--pids-limit", "50", "--cpus", "0.5", "busybox", "sleep", "300"]);
      const mem = ok(client, [
        "exec",
        c,
        "sh",
        "-c",
        "cat /sys/fs/cgroup/memory/memory.limit_in_bytes 2>/dev/null || cat /sys/fs/cgroup/memory.max",
      ]);
      assert.equal(mem, String(64 * 1024 * 1024));
      assert.equal(
        ok(client, ["inspect", "--format", "{{.HostConfig.Memory}} {{.HostConfig.PidsLimit}} {{.HostConfig.NanoCpus}}", c]),
        `${64 * 1024 * 1024} 50 500000000`,
      );
      ok(client, ["update", "-m", "128m", "--memory-swap", "256m", c]);
      const mem2 = ok(client, [
        "exec",
        c,
        "sh",
        "-c",
        "cat /sys/fs/cgroup/memory/memory.limit_in_bytes 2>/dev/null || cat /sys/fs/cgroup/memory.max",
      ]);
      assert.equal(mem2, String(128 * 1024 * 1024));
      assert.match(ok(client, ["stats", "--no-stream", "--format", "{{.Name}} {{.MemUsage}}", c]), /B \/ 128MiB/);
      assert.match(ok(client, ["top", c]), /sleep 300/);
    });

    test("restart policy on-failure retries and counts", async () => {
      const c = n("restart");
      ok(client, ["run", "-d", "--name", c, "--restart", "on-failure:2", "busybox", "sh", "-c", "exit 1"]);
      assert.ok(await until(() => ok(client, ["inspect", "--format", "{{.RestartCount}} {{.State.Running}}", c]) === "2 false", 15000));
    });

    test("--init runs a real init as PID 1", () => {
      assert.match(ok(client, ["run", "--rm", "--init", "busybox", "cat", "/proc/1/cmdline"]), /init|catatonit|tini/);
    });

    test("healthchecks report healthy", async () => {
      const c = n("health");
      ok(client, ["run", "-d", "--name", c, "--health-cmd", "true", "--health-interval", "1s", "busybox", "sleep", "300"]);
      assert.ok(await until(() => ok(client, ["inspect", "--format", "{{.State.Health.Status}}", c]) === "healthy", 15000));
      assert.match(ok(client, ["ps", "--filter", `name=${c}`, "--format", "{{.Status}}"]), /\(healthy\)/);
    });

    test("rm refuses a running container without -f; missing names are errors", () => {
      const c = n("rm");
      ok(client, ["run", "-d", "--name", c, "busybox", "sleep", "300"]);
      const r = run(client, ["rm", c]);
      assert.notEqual(r.code, 0);
      assert.match(r.err, /stop the container before removing or force remove/);
      ok(client, ["rm", "-f", c]);
      const missing = run(client, ["inspect", "no-such-container-xyz"]);
      assert.notEqual(missing.code, 0);
      assert.match(missing.err, /No such/);
    });

    test("a stopped container has no address, endpoint or published port any more; a start gives them back", () => {
      const c = n("stopped-net");
      ok(client, ["run", "-d", "--name", c, "-p", "127.0.0.1::80", "busybox", "sleep", "300"]);
      assert.match(ok(client, ["inspect", "-f", "{{.NetworkSettings.IPAddress}}", c]), /^\d+\.\d+\.\d+\.\d+$/);
      ok(client, ["stop", "-t", "0", c]);
      const f =
        "{{json .NetworkSettings.Ports}}|{{.NetworkSettings.IPAddress}}|{{.NetworkSettings.EndpointID}}|{{len .NetworkSettings.Networks}}|{{.NetworkSettings.Networks.bridge.IPAddress}}";
      assert.equal(ok(client, ["inspect", "-f", f, c]), "{}|||1|");
      assert.equal(ok(client, ["ps", "-a", "--filter", `name=${c}`, "--format", "[{{.Ports}}]"]), "[]");
      ok(client, ["start", c]);
      assert.match(ok(client, ["port", c, "80"]), /^127\.0\.0\.1:\d+$/);
      ok(client, ["rm", "-f", c]);
    });

    test("rmi of an image's only name is refused while a container uses it; another name is just untagged", () => {
      const img = n("rmi-img");
      ok(client, ["tag", "busybox", `${img}:one`]);
      // A second name in the same repository: untagging one leaves the image named.
      ok(client, ["tag", "busybox", `${img}:two`]);
      const c = n("rmi-user");
      ok(client, ["create", "--name", c, `${img}:one`, "true"]);
      // busybox keeps its own names, so this image has several repositories: not a single reference.
      assert.equal(ok(client, ["rmi", `${img}:two`]), `Untagged: ${img}:two`);
      const only = n("rmi-only");
      ok(client, ["commit", c, `${only}:x`]);
      const c2 = n("rmi-user2");
      ok(client, ["create", "--name", c2, `${only}:x`, "true"]);
      const r = run(client, ["rmi", `${only}:x`]);
      assert.equal(r.code, 1);
      assert.match(
        r.err,
        new RegExp(
          `conflict: unable to remove repository reference "${only}:x" \\(must force\\) - container [0-9a-f]{12} is using its referenced image [0-9a-f]{12}`,
        ),
      );
      const id = ok(client, ["images", "-q", `${only}:x`]);
      assert.equal(id.length, 12, "still there");
      assert.equal(ok(client, ["rmi", "-f", `${only}:x`]), `Untagged: ${only}:x`);
      assert.equal(run(client, ["rmi", `${img}:one`]).code, 0);
      ok(client, ["rm", c, c2]);
      ok(client, ["rmi", id]);
      const missing = run(client, ["rmi", "no-such-image-xyz"]);
      assert.match(missing.err, /No such image: no-such-image-xyz:latest/);
    });
  });
}
