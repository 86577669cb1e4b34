import assert from "node:assert/strict";
import { test } from "node:test";
import { createBody } from "./convert.ts";
import { serviceHash } from "./labels.ts";
import { loadProject } from "./loader.ts";

const testdata = new URL("./testdata/", import.meta.url).pathname;

test("create body of a service with most options", async () => {
  const p = await loadProject({ cwd: `${testdata}service-options`, env: {} });
  const s = p.services.full;
  assert.ok(s);
  const body = createBody(p, "full", s, { number: 1, imageId: "sha256:abc" });
  assert.equal(body.Image, "busybox");
  assert.equal(body.Hostname, "fullhost");
  assert.equal(body.Domainname, "example.com");
  assert.equal(body.User, "1000:1000");
  assert.equal(body.WorkingDir, "/work");
  assert.deepEqual(body.Entrypoint, ["/bin/sh", "-c"]);
  assert.deepEqual(body.Cmd, ["echo", "quoted arg", "single"]);
  assert.equal(body.StopSignal, "SIGINT");
  assert.equal(body.StopTimeout, 60);
  assert.equal(body.Tty, true);
  assert.equal(body.OpenStdin, true);
  assert.deepEqual(body.ExposedPorts, { "3000/tcp": {}, "4000/tcp": {} });
  const h = body.HostConfig ?? {};
  assert.deepEqual(h.RestartPolicy, { Name: "on-failure", MaximumRetryCount: 3 });
  assert.equal(h.Init, true);
  assert.equal(h.ReadonlyRootfs, true);
  assert.deepEqual(h.Tmpfs, { "/run": "" });
  assert.deepEqual(h.CapAdd, ["NET_ADMIN"]);
  assert.deepEqual(h.CapDrop, ["ALL"]);
  assert.deepEqual(h.SecurityOpt, ["no-new-privileges:true"]);
  assert.deepEqual(h.Ulimits, [
    { Name: "nproc", Soft: 65535, Hard: 65535 },
    { Name: "nofile", Soft: 20000, Hard: 40000 },
  ]);
  assert.equal(h.Memory, 512 * 1024 * 1024);
  assert.equal(h.MemoryReservation, 1024 ** 3);
  assert.equal(h.NanoCpus, 5e8);
  assert.equal(h.PidsLimit, 100);
  assert.equal(h.ShmSize, 64 * 1024 * 1024);
  assert.deepEqual(h.ExtraHosts, ["somehost:162.242.195.82", "other:10.0.0.1"]);
  assert.deepEqual(h.Dns, ["8.8.8.8"]);
  assert.deepEqual(h.DnsSearch, ["example.com"]);
  assert.deepEqual(h.LogConfig, { Type: "json-file", Config: { "max-size": "10m", "max-file": "3" } });
  assert.deepEqual(h.Sysctls, { "net.core.somaxconn": "1024" });
  assert.equal(h.NetworkMode, "service-options_default");
  assert.deepEqual(body.NetworkingConfig?.EndpointsConfig?.["service-options_default"]?.Aliases, ["full"]);
  const labels = body.Labels ?? {};
  assert.equal(labels["com.example.description"], "Full");
  assert.equal(labels["com.docker.compose.project"], "service-options");
  assert.equal(labels["com.docker.compose.image"], "sha256:abc");
  assert.equal(labels["com.docker.compose.config-hash"], serviceHash(s));
});

test("create body: ports, mounts, secrets, networks", async () => {
  const ports = await loadProject({ cwd: `${testdata}ports-short`, env: {} });
  const pb = createBody(ports, "app", ports.services.app!, { number: 1 }).HostConfig?.PortBindings ?? {};
  assert.deepEqual(pb["80/tcp"], [
    { HostIp: "", HostPort: "" },
    { HostIp: "", HostPort: "8080" },
  ]);
  assert.deepEqual(pb["82/tcp"], [{ HostIp: "127.0.0.1", HostPort: "" }]);
  assert.deepEqual(pb["53/udp"], [{ HostIp: "", HostPort: "53" }]);
  assert.deepEqual(pb["7000/tcp"], [{ HostIp: "", HostPort: "7000-7001" }]);

  const vols = await loadProject({ cwd: `${testdata}volumes-short`, env: {} });
  const vb = createBody(vols, "app", vols.services.app!, { number: 1 });
  assert.ok(vb.HostConfig?.Binds?.includes(`${testdata}volumes-short/conf:/etc/conf:ro`));
  assert.ok(vb.HostConfig?.Binds?.includes("/var/log:/log:rw,rslave"));
  assert.deepEqual(vb.Volumes, { "/anon": {} });
  assert.deepEqual(
    vb.HostConfig?.Mounts?.find((m) => m.Target === "/data"),
    { Type: "volume", Target: "/data", Source: "volumes-short_data" },
  );
  assert.deepEqual(vb.HostConfig?.Mounts?.find((m) => m.Target === "/cache")?.VolumeOptions, { NoCopy: true });

  const long = await loadProject({ cwd: `${testdata}volumes-long`, env: {} });
  const lm = createBody(long, "app", long.services.app!, { number: 1 }).HostConfig?.Mounts ?? [];
  assert.deepEqual(
    lm.find((m) => m.Target === "/tmp"),
    { Type: "tmpfs", Target: "/tmp", TmpfsOptions: { SizeBytes: 64 * 1024 * 1024, Mode: 1777 } },
  );
  assert.deepEqual(
    lm.find((m) => m.Target === "/site"),
    {
      Type: "bind",
      Target: "/site",
      ReadOnly: true,
      Source: `${testdata}volumes-long/site`,
      BindOptions: { Propagation: "rprivate" },
    },
  );

  const sec = await loadProject({ cwd: `${testdata}secrets-configs`, env: { API_KEY: "k" } });
  const sm = createBody(sec, "app", sec.services.app!, { number: 1 }).HostConfig?.Mounts ?? [];
  assert.deepEqual(
    sm.find((m) => m.Target === "/run/secrets/db_password"),
    {
      Type: "bind",
      Source: `${testdata}secrets-configs/secrets/db_password.txt`,
      Target: "/run/secrets/db_password",
      ReadOnly: true,
    },
  );
  assert.ok(sm.some((m) => m.Target === "/app_config"));

  const nets = await loadProject({ cwd: `${testdata}networks`, env: {} });
  const proxy = createBody(nets, "proxy", nets.services.proxy!, { number: 1 });
  assert.equal(proxy.HostConfig?.NetworkMode, "networks_back");
  const sidecar = createBody(nets, "sidecar", nets.services.sidecar!, { number: 1, containerOf: (x) => `networks-${x}-1` });
  assert.equal(sidecar.HostConfig?.NetworkMode, "container:networks-app-1");
  assert.equal(createBody(nets, "host", nets.services.host!, { number: 1 }).HostConfig?.NetworkMode, "host");
});

test("the config hash ignores scale and build but not the environment", async () => {
  const p = await loadProject({ cwd: `${testdata}simple`, env: {} });
  const s = p.services.web!;
  const h = serviceHash(s);
  assert.equal(serviceHash({ ...s, scale: 3, pull_policy: "always" }), h);
  assert.notEqual(serviceHash({ ...s, environment: { A: "1" } }), h);
});
