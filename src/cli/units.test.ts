import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { apiTimestamp, bytesSize, formatG, humanDuration, humanSize, humanSizeWithPrecision } from "./units.ts";

describe("go-units formatting", () => {
  test("%g as Go prints it", () => {
    assert.equal(formatG(4.2623, 3), "4.26");
    assert.equal(formatG(4, 3), "4");
    assert.equal(formatG(999.9, 3), "1e+03");
    assert.equal(formatG(123.456, 4), "123.5");
    assert.equal(formatG(0, 3), "0");
  });
  test("HumanSize and friends", () => {
    assert.equal(humanSizeWithPrecision(4_262_600, 3), "4.26MB");
    assert.equal(humanSizeWithPrecision(2_134_016, 3), "2.13MB");
    assert.equal(humanSizeWithPrecision(0, 3), "0B");
    assert.equal(humanSizeWithPrecision(999_900, 3), "1e+03kB");
    assert.equal(humanSize(1234), "1.234kB");
    assert.equal(humanSize(512), "512B");
    assert.equal(bytesSize(1536 * 1024 * 1024), "1.5GiB");
    assert.equal(bytesSize(0), "0B");
  });
  test("HumanDuration", () => {
    assert.equal(humanDuration(500), "Less than a second");
    assert.equal(humanDuration(1000), "1 second");
    assert.equal(humanDuration(45_000), "45 seconds");
    assert.equal(humanDuration(90_000), "About a minute");
    assert.equal(humanDuration(10 * 60_000), "10 minutes");
    assert.equal(humanDuration(50 * 60_000), "50 minutes");
    assert.equal(humanDuration(60 * 60_000), "About an hour");
    assert.equal(humanDuration(3 * 3_600_000), "3 hours");
    assert.equal(humanDuration(3 * 86_400_000), "3 days");
    assert.equal(humanDuration(20 * 86_400_000), "2 weeks");
    assert.equal(humanDuration(90 * 86_400_000), "3 months");
    assert.equal(humanDuration(800 * 86_400_000), "2 years");
  });
  test("--since/--until values", () => {
    assert.equal(apiTimestamp("1700000000"), "1700000000");
    assert.equal(apiTimestamp("10m", 1_700_000_600_000), "1700000000.000000000");
    assert.equal(apiTimestamp("1.5s", 1_700_000_000_000), "1699999998.500000000");
    assert.equal(apiTimestamp("2024-01-02T03:04:05Z"), "1704164645.000000000");
  });
});
