// biome-ignore-all lint/suspicious/noTemplateCurlyInString: Dockerfile variable syntax in test inputs
import assert from "node:assert/strict";
import { test } from "node:test";
import type { ImageConfig } from "../oci/mod.ts";
import { applyChanges } from "./changes.ts";
import { applyMeta, expandInstruction, exposedPorts, getEnv } from "./config.ts";
import { parseStages } from "./instructions.ts";

function run(dockerfile: string, base: ImageConfig["config"] = {}): { img: ImageConfig; history: string[] } {
  const df = parseStages(`FROM x\n${dockerfile}`);
  const img: ImageConfig = { architecture: "amd64", os: "linux", rootfs: { type: "layers", diff_ids: [] }, config: structuredClone(base) };
  const meta = { cmdSet: false };
  const history: string[] = [];
  for (const inst of df.stages[0]?.instructions ?? []) {
    const e = expandInstruction(inst, (k) => getEnv(img.config?.Env, k), df.escape);
    history.push(applyMeta(img, e, meta) ?? "");
  }
  return { img, history };
}

test("metadata instructions: config changes and Docker's history text", () => {
  const { img, history } = run(
    [
      "ENV A=1 B=two",
      "ENV C=${A}-$B",
      "LABEL x=y",
      "EXPOSE 80 53/udp",
      "VOLUME /data",
      "USER app",
      "WORKDIR /srv",
      "WORKDIR sub",
      'CMD ["run"]',
      "STOPSIGNAL SIGQUIT",
      "ONBUILD RUN make",
      "MAINTAINER me",
    ].join("\n"),
    { Env: ["PATH=/bin"] },
  );
  assert.deepEqual(img.config?.Env, ["PATH=/bin", "A=1", "B=two", "C=1-two"]);
  assert.deepEqual(img.config?.Labels, { x: "y" });
  assert.deepEqual(img.config?.ExposedPorts, { "80/tcp": {}, "53/udp": {} });
  assert.deepEqual(img.config?.Volumes, { "/data": {} });
  assert.equal(img.config?.User, "app");
  assert.equal(img.config?.WorkingDir, "/srv/sub");
  assert.deepEqual(img.config?.Cmd, ["run"]);
  assert.equal(img.config?.StopSignal, "SIGQUIT");
  assert.deepEqual(img.config?.OnBuild, ["RUN make"]);
  assert.equal(img.author, "me");
  assert.deepEqual(history, [
    "ENV A=1 B=two",
    "ENV C=1-two",
    "LABEL x=y",
    "EXPOSE 53/udp 80/tcp",
    "VOLUME [/data]",
    "USER app",
    "WORKDIR /srv",
    "WORKDIR /srv/sub",
    'CMD ["run"]',
    "STOPSIGNAL SIGQUIT",
    "ONBUILD RUN make",
    "MAINTAINER me",
  ]);
});

test("shell forms use SHELL; ENTRYPOINT resets an inherited CMD only", () => {
  const a = run('SHELL ["/bin/bash", "-c"]\nCMD echo $HOME\nENTRYPOINT exec app', { Cmd: ["old"] });
  assert.deepEqual(a.img.config?.Cmd, ["/bin/bash", "-c", "echo $HOME"]);
  assert.deepEqual(a.img.config?.Entrypoint, ["/bin/bash", "-c", "exec app"]);
  assert.deepEqual(a.history[1], 'CMD ["/bin/bash" "-c" "echo $HOME"]');
  const b = run('ENTRYPOINT ["app"]', { Cmd: ["inherited"] });
  assert.equal(b.img.config?.Cmd, null);
});

test("exposedPorts: ranges, protocols, errors", () => {
  assert.deepEqual(exposedPorts(["8000-8002", "53/UDP"]), ["8000/tcp", "8001/tcp", "8002/tcp", "53/udp"]);
  assert.throws(() => exposedPorts(["80/xyz"]), /Invalid proto/);
  assert.throws(() => exposedPorts(["http"]), /Invalid containerPort/);
  assert.throws(() => exposedPorts(["0"]), /Invalid containerPort/);
});

test("applyChanges: import/commit --change", () => {
  const c = applyChanges({ Env: ["A=1"], Cmd: ["sh"] }, ['CMD ["echo", "hi"]', "ENV B=$A-x", "EXPOSE 80", "LABEL k=v\nUSER nobody"]);
  assert.deepEqual(c, { Env: ["A=1", "B=1-x"], Cmd: ["echo", "hi"], ExposedPorts: { "80/tcp": {} }, Labels: { k: "v" }, User: "nobody" });
  assert.throws(() => applyChanges({}, ["RUN rm -rf /"]), /RUN is not a valid change command/);
  assert.throws(() => applyChanges({}, ["FROM scratch"]), /FROM is not a valid change command/);
  assert.throws(() => applyChanges({}, ['ENV A="unterminated']), /matching double-quote/);
  assert.deepEqual(applyChanges({ Cmd: ["a"] }, []), { Cmd: ["a"] });
  assert.deepEqual(applyChanges({}, ["HEALTHCHECK NONE"]), { Healthcheck: { Test: ["NONE"] } });
});
