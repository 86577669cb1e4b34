/**
 * Volumes and mounts through real clients: named, anonymous, bind (rw and :ro), tmpfs,
 * --volumes-from, image VOLUME populated into a new volume, volume ls/inspect/rm/prune.
 */
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, test } from "node:test";
import { clients, ok, run, SOCKET, uniq } from "./_lib.ts";

const skip = !SOCKET || process.getuid?.() !== 0 ? "needs root and BERTH_TEST_SOCKET (scripts/test.sh)" : false;
const FIXTURE_ROOT = "/var/tmp/berth-fixtures/busybox-root";

/** The propagation of the mount holding `path` (findmnt, util-linux). */
function findmntPropagation(path: string): string {
  try {
    return execFileSync("findmnt", ["-n", "-o", "PROPAGATION", "-T", path], { encoding: "utf8" }).trim();
  } catch {
    return "";
  }
}

for (const client of clients()) {
  const name = client.endsWith("berth") ? "berth" : "docker";
  describe(`volumes via ${name}`, { skip }, () => {
    const vols: string[] = [];
    const ctrs: string[] = [];
    const imgs: string[] = [];
    const tmp = mkdtempSync(join(tmpdir(), "berth-e2e-vol-"));
    after(() => {
      if (ctrs.length) run(client, ["rm", "-f", ...ctrs]);
      if (vols.length) run(client, ["volume", "rm", "-f", ...vols]);
      if (imgs.length) run(client, ["rmi", "-f", ...imgs]);
      rmSync(tmp, { recursive: true, force: true });
    });

    test("a named volume keeps data across containers", () => {
      const v = uniq("e2e-vol");
      vols.push(v);
      ok(client, ["volume", "create", v]);
      ok(client, ["run", "--rm", "-v", `${v}:/ws`, "busybox", "touch", "/ws/hello"]);
      assert.equal(ok(client, ["run", "--rm", "-v", `${v}:/ws`, "busybox", "ls", "/ws"]), "hello");
      const mp = ok(client, ["volume", "inspect", "--format", "{{.Mountpoint}}", v]);
      assert.ok(existsSync(join(mp, "hello")));
      assert.ok(ok(client, ["volume", "ls", "-q"]).split("\n").includes(v));
      const c = uniq("e2e-voluser");
      ctrs.push(c);
      ok(client, ["run", "-d", "--name", c, "-v", `${v}:/ws`, "busybox", "sleep", "300"]);
      const busy = run(client, ["volume", "rm", v]);
      assert.notEqual(busy.code, 0);
      assert.match(busy.err, /volume is in use/);
      ok(client, ["rm", "-f", c]);
      ok(client, ["volume", "rm", v]);
      assert.ok(!ok(client, ["volume", "ls", "-q"]).split("\n").includes(v));
    });

    test("bind mounts: read-write, read-only, created when missing", () => {
      const dir = join(tmp, "ws");
      mkdirSync(dir);
      writeFileSync(join(dir, "README.md"), "fromhost\n");
      assert.equal(ok(client, ["run", "--rm", "-v", `${dir}:/ws`, "busybox", "sh", "-c", "cat /ws/README.md; touch /ws/hi"]), "fromhost");
      assert.ok(existsSync(join(dir, "hi")));
      assert.notEqual(run(client, ["run", "--rm", "-v", `${dir}:/ws:ro`, "busybox", "touch", "/ws/nope"]).code, 0);
      const missing = join(tmp, "created", "by", "v");
      ok(client, ["run", "--rm", "-v", `${missing}:/m`, "busybox", "true"]);
      assert.ok(existsSync(missing));
      const bad = run(client, ["run", "--rm", "--mount", `type=bind,source=${join(tmp, "nope")},target=/x`, "busybox", "true"]);
      assert.notEqual(bad.code, 0);
      assert.match(bad.err, /bind source path does not exist/);
    });

    test("tmpfs mounts and --volumes-from", () => {
      assert.match(
        ok(client, ["run", "--rm", "--mount", "type=tmpfs,destination=/t", "busybox", "sh", "-c", "grep ' /t ' /proc/mounts"]),
        /tmpfs/,
      );
      assert.match(ok(client, ["run", "--rm", "--tmpfs", "/t2:size=1m", "busybox", "sh", "-c", "grep ' /t2 ' /proc/mounts"]), /size=1024k/);
      const src = uniq("e2e-vsrc");
      ctrs.push(src);
      ok(client, ["run", "-d", "--name", src, "-v", "/data", "busybox", "sh", "-c", "echo shared > /data/f; sleep 300"]);
      let got = "";
      for (let i = 0; i < 50 && got !== "shared"; i++)
        got = run(client, ["run", "--rm", "--volumes-from", src, "busybox", "cat", "/data/f"]).out.trim();
      assert.equal(got, "shared");
      const anon = JSON.parse(ok(client, ["inspect", "--format", "{{json .Mounts}}", src])) as { Name: string; Type: string }[];
      assert.equal(anon[0]?.Type, "volume");
      ok(client, ["rm", "-f", "-v", src]);
      assert.ok(
        !ok(client, ["volume", "ls", "-q"])
          .split("\n")
          .includes(anon[0]?.Name ?? "x"),
        "rm -v removes anonymous volumes",
      );
    });

    test("an image VOLUME is populated into a new volume with owner and mode", {
      skip: !existsSync(FIXTURE_ROOT) && "no fixture rootfs",
    }, () => {
      const root = join(tmp, "root");
      execFileSync("cp", ["-a", FIXTURE_ROOT, root]);
      mkdirSync(join(root, "uploads"), { mode: 0o750 });
      writeFileSync(join(root, "uploads", "seed"), "seeded\n");
      execFileSync("chown", ["-R", "65534:65534", join(root, "uploads")]);
      const img = `${uniq("e2e-volimg")}:1`;
      imgs.push(img);
      const tarFile = join(tmp, "root.tar");
      execFileSync("tar", ["-C", root, "--numeric-owner", "-cf", tarFile, "."]);
      ok(client, ["import", "-c", "VOLUME /uploads", "-c", 'CMD ["sh"]', tarFile, img]);
      assert.equal(ok(client, ["inspect", "--format", "{{json .Config.Volumes}}", img]), '{"/uploads":{}}');
      const v = uniq("e2e-vol2");
      vols.push(v);
      assert.equal(ok(client, ["run", "--rm", "-v", `${v}:/uploads`, img, "cat", "/uploads/seed"]), "seeded");
      assert.equal(ok(client, ["run", "--rm", "-v", `${v}:/uploads`, img, "stat", "-c", "%u %a", "/uploads"]), "65534 750");
      const nocopy = uniq("e2e-vol3");
      vols.push(nocopy);
      assert.equal(ok(client, ["run", "--rm", "-v", `${nocopy}:/uploads:nocopy`, img, "ls", "/uploads"]), "");
    });

    test("volume prune removes only unused anonymous volumes by default", () => {
      const named = uniq("e2e-keep");
      vols.push(named);
      ok(client, ["volume", "create", named]);
      const c = uniq("e2e-anon");
      ok(client, ["create", "--name", c, "-v", "/anon", "busybox"]);
      const anon = (JSON.parse(ok(client, ["inspect", "--format", "{{json .Mounts}}", c])) as { Name: string }[])[0]?.Name ?? "";
      ok(client, ["rm", c]);
      ok(client, ["volume", "prune", "-f"]);
      const left = ok(client, ["volume", "ls", "-q"]).split("\n");
      assert.ok(left.includes(named));
      assert.ok(!left.includes(anon));
    });

    test("a client on API 1.41 prunes named volumes too, as dockerd 20.10 did", { skip: client !== "docker" }, () => {
      const named = uniq("e2e-old");
      vols.push(named);
      ok(client, ["volume", "create", "--label", `e2e-prune=${named}`, named]);
      ok(client, ["volume", "prune", "-f", "--filter", `label=e2e-prune=${named}`]);
      assert.ok(ok(client, ["volume", "ls", "-q"]).split("\n").includes(named), "kept on the current API");
      ok(client, ["volume", "prune", "-f", "--filter", `label=e2e-prune=${named}`], { env: { DOCKER_API_VERSION: "1.41" } });
      assert.ok(!ok(client, ["volume", "ls", "-q"]).split("\n").includes(named), "pruned on 1.41");
    });

    test("create errors that are not a missing image are not 404s (the CLI would pull)", () => {
      const r = run(client, ["run", "--rm", "--volumes-from", uniq("e2e-nosuch"), "busybox", "true"]);
      assert.equal(r.code, 125);
      assert.doesNotMatch(r.err + r.out, /Pulling|Unable to find image/);
      const v = run(client, ["volume", "create", "--driver", "nosuch", uniq("e2e-drv")]);
      assert.match(v.err, /error looking up volume plugin nosuch: plugin "nosuch" not found/);
      const t = run(client, ["run", "--rm", "--mount", "type=foo,dst=/d", "busybox", "true"]);
      assert.equal(t.code, 125);
      assert.match(t.err, /invalid mount config for type "foo": mount type unknown/);
    });

    test("bad mount specifications fail the create with dockerd's words, leaving no volume behind", () => {
      const cases: [string[], RegExp][] = [
        [
          ["-v", `${tmp}:relative`],
          /invalid volume specification: '.*:relative': invalid mount config for type "bind": invalid mount path: 'relative' mount path must be absolute/,
        ],
        [["-v", `${tmp}:/x:rw,ro`], /invalid mode: rw,ro/],
        [["-v", `${tmp}:/x:nocopy`], /invalid mount config for type "bind": field VolumeOptions must not be specified/],
        [["--mount", "type=bind,target=/x"], /invalid mount config for type "bind": field Source must not be empty/],
        [["--mount", "type=tmpfs,target=/x,source=foo"], /invalid mount config for type "tmpfs": field Source must not be specified/],
      ];
      for (const [args, re] of cases) {
        const r = run(client, ["run", "--rm", ...args, "busybox", "true"]);
        assert.equal(r.code, 125, args.join(" "));
        assert.match(r.err, re);
      }
      assert.match(
        run(client, ["volume", "create", "v"]).err,
        /volume name is too short, names should be at least two alphanumeric characters/,
      );
      const v = uniq("e2e-rollback");
      const r = run(client, ["run", "--rm", "-v", `${v}:/x`, "--mount", "type=foo,target=/y", "busybox", "true"]);
      assert.equal(r.code, 125);
      assert.ok(!ok(client, ["volume", "ls", "-q"]).split("\n").includes(v), "the volume made for the refused create is gone");
    });

    test("bind propagation the source's mount cannot give fails the start, as dockerd checks it", () => {
      // The test's temporary directory is on a private mount (as / is here): shared and slave are refused.
      const shared = findmntPropagation(tmp);
      if (shared !== "private") return;
      const c = uniq("e2e-prop");
      ctrs.push(c);
      const r = run(client, ["run", "--name", c, "--mount", `type=bind,src=${tmp},dst=/h,bind-propagation=rshared`, "busybox", "true"]);
      assert.equal(r.code, 125);
      assert.match(r.err, new RegExp(`path ${tmp} is mounted on .* but it is not a shared mount`));
      assert.equal(ok(client, ["ps", "-a", "--filter", `name=${c}`, "--format", "{{.Status}}"]), "Created");
      const s = run(client, ["run", "--rm", "-v", `${tmp}:/h:slave`, "busybox", "true"]);
      assert.match(s.err, /but it is not a shared or slave mount/);
      ok(client, ["run", "--rm", "-v", `${tmp}:/h:rprivate`, "busybox", "true"]);
    });
  });
}
