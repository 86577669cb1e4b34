import assert from "node:assert/strict";
import { test } from "node:test";
import { legacyLinkName, linkEnv, linkHostsLine, parseLink, parseLinkPath } from "./links.ts";

test("links in every form they are stored in", () => {
  assert.deepEqual(parseLink("db"), { target: "db", alias: "db" });
  assert.deepEqual(parseLink("db:data"), { target: "db", alias: "data" });
  assert.deepEqual(parseLink("/db:/data"), { target: "db", alias: "data" });
  assert.deepEqual(parseLink("/db:/web/data"), { target: "db", alias: "data" });
  assert.equal(legacyLinkName({ target: "db", alias: "data" }, "/web"), "/db:/web/data");
  assert.equal(linkHostsLine({ target: "db", alias: "db" }, "10.80.0.2", "0123456789abcdef", "/db"), "10.80.0.2\tdb 0123456789ab");
});

test("rm -l paths", () => {
  assert.deepEqual(parseLinkPath("web/data"), { me: "web", alias: "data" });
  assert.deepEqual(parseLinkPath("/web/data"), { me: "web", alias: "data" });
  assert.equal(parseLinkPath("web"), "own");
  assert.equal(parseLinkPath("web/data/x"), undefined);
  assert.equal(parseLinkPath("web/"), undefined);
});

// The variables dockerd 20.10 gave `--link lkd:my-db.x` for a target with these ports and env.
test("link variables as dockerd names them", () => {
  const env = linkEnv({ target: "lkd", alias: "my-db.x" }, "/web", {
    ip: "172.17.0.4",
    exposedPorts: ["8000-8002/tcp", "8001/udp", "7000/udp", "7000/tcp"],
    env: ["PATH=/bin", "HOME=/x", "A=1", "B=x=y", "HOSTNAME=zz", "BARE"],
  });
  const a = "172.17.0.4";
  assert.deepEqual(
    [...env].sort(),
    [
      "MY_DB.X_ENV_A=1",
      "MY_DB.X_ENV_B=x=y",
      "MY_DB.X_ENV_HOSTNAME=zz",
      "MY_DB.X_NAME=/web/my-db.x",
      `MY_DB.X_PORT=tcp://${a}:7000`,
      ...["7000_TCP", "7000_UDP", "8000_TCP", "8001_TCP", "8001_UDP", "8002_TCP"].flatMap((k) => {
        const [port, proto = ""] = k.split("_");
        const p = proto.toLowerCase();
        return [
          `MY_DB.X_PORT_${k}=${p}://${a}:${port}`,
          `MY_DB.X_PORT_${k}_ADDR=${a}`,
          `MY_DB.X_PORT_${k}_PORT=${port}`,
          `MY_DB.X_PORT_${k}_PROTO=${p}`,
        ];
      }),
      `MY_DB.X_PORT_8000_TCP_END=tcp://${a}:8002`,
      "MY_DB.X_PORT_8000_TCP_PORT_END=8002",
      "MY_DB.X_PORT_8000_TCP_PORT_START=8000",
      `MY_DB.X_PORT_8000_TCP_START=tcp://${a}:8000`,
    ].sort(),
  );
  assert.deepEqual(linkEnv({ target: "c", alias: "c-1" }, "w", { ip: "10.0.0.2", exposedPorts: [], env: [] }), ["C_1_NAME=/w/c-1"]);
});
