import assert from "node:assert/strict";
import { test } from "node:test";
import { naturalLess } from "./cmd_container_misc.ts";

test("docker port order: numbers by value, the rest byte by byte (0.0.0.0 before [::1] before [::])", () => {
  const lines = [
    "80/tcp -> [::]:18100",
    "8080/tcp -> 0.0.0.0:1",
    "80/tcp -> [::1]:18101",
    "443/tcp -> 0.0.0.0:9",
    "80/tcp -> 0.0.0.0:18100",
  ];
  assert.deepEqual(lines.sort(naturalLess), [
    "80/tcp -> 0.0.0.0:18100",
    "80/tcp -> [::1]:18101",
    "80/tcp -> [::]:18100",
    "443/tcp -> 0.0.0.0:9",
    "8080/tcp -> 0.0.0.0:1",
  ]);
});
