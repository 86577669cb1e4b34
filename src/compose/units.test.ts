// biome-ignore-all lint/suspicious/noTemplateCurlyInString: the tests are about Compose's ${VAR} syntax in plain strings.
import assert from "node:assert/strict";
import { test } from "node:test";
import { parseEnvFile } from "./envfile.ts";
import { Flags, FlagError, parseFlags } from "./flags.ts";
import { interpolateString } from "./interpolate.ts";
import { formatDuration, normalizeDuration, parseBytes, parseDuration, splitCommand } from "./units.ts";

const env: Record<string, string> = { SET: "value", EMPTY: "" };
const look = (n: string) => env[n];

test("interpolation: every form of the Compose syntax", () => {
  const cases: [string, string][] = [
    ["plain", "plain"],
    ["$SET", "value"],
    ["${SET}", "value"],
    ["a${SET}b", "avalueb"],
    ["${UNSET}", ""],
    ["${UNSET:-def}", "def"],
    ["${EMPTY:-def}", "def"],
    ["${EMPTY-def}", ""],
    ["${UNSET-def}", "def"],
    ["${SET:+alt}", "alt"],
    ["${EMPTY:+alt}", ""],
    ["${EMPTY+alt}", "alt"],
    ["${UNSET:-${SET}}", "value"],
    ["${UNSET:-a ${UNSET2:-b} c}", "a b c"],
    ["$$SET", "$SET"],
    ["$${SET}", "${SET}"],
    ["cost: 5$", "cost: 5$"],
    ["${UNSET:-}", ""],
  ];
  for (const [input, want] of cases) assert.equal(interpolateString(input, look), want, input);
});

test("interpolation: errors", () => {
  assert.throws(() => interpolateString("${UNSET:?must be set}", look), /Required variable "UNSET" is missing a value: must be set/);
  assert.throws(() => interpolateString("${EMPTY:?}", look), /Required variable "EMPTY"/);
  assert.equal(interpolateString("${EMPTY?}", look), "");
  assert.throws(() => interpolateString("${SET", look), /missing closing brace/);
  assert.throws(() => interpolateString("${}", look), /not a valid variable name/);
  assert.throws(() => interpolateString("${SET!x}", look), /unexpected "!"/);
  assert.throws(() => interpolateString("${UNSET:-${OTHER}", look), /missing closing brace/);
});

test("env files: quotes, comments, export, references, multi-line values", () => {
  const text = [
    "# comment",
    "",
    "A=1",
    "export B=two",
    "C = spaced ",
    "D='single $A'",
    'E="double $A\\n"',
    "F=inline # comment",
    "G=${A}-${B}",
    'H="multi',
    'line"',
    "I=",
    "FROM_ENV",
    "NOT_IN_ENV",
    "J=a#b",
  ].join("\n");
  const out = parseEnvFile(text, "x.env", (n) => (n === "FROM_ENV" ? "env" : undefined));
  assert.deepEqual(out, {
    A: "1",
    B: "two",
    C: "spaced",
    D: "single $A",
    E: "double 1\n",
    F: "inline",
    G: "1-two",
    H: "multi\nline",
    I: "",
    FROM_ENV: "env",
    J: "a#b",
  });
  assert.throws(() => parseEnvFile("1BAD=x", "x.env"), /x\.env:1: Invalid variable name "1BAD"/);
  assert.throws(() => parseEnvFile('A="open', "x.env"), /Unterminated quoted value/);
  assert.deepEqual(parseEnvFile("A=1\r\nB=2\r\n", "x.env"), { A: "1", B: "2" });
});

test("durations and sizes", () => {
  assert.equal(parseDuration("1m30s"), 90e9);
  assert.equal(parseDuration("1.5s"), 1.5e9);
  assert.equal(parseDuration("300ms"), 300e6);
  assert.equal(formatDuration(90e9), "1m30s");
  assert.equal(formatDuration(3600e9), "1h0m0s");
  assert.equal(formatDuration(500e6), "500ms");
  assert.equal(formatDuration(0), "0s");
  assert.equal(normalizeDuration("90s"), "1m30s");
  assert.throws(() => parseDuration("10 seconds"), /Invalid duration/);
  assert.equal(parseBytes("512m"), 512 * 1024 * 1024);
  assert.equal(parseBytes("1g"), 1024 ** 3);
  assert.equal(parseBytes("1.5GiB"), 1.5 * 1024 ** 3);
  assert.equal(parseBytes("100"), 100);
  assert.equal(parseBytes(2048), 2048);
  assert.throws(() => parseBytes("lots"), /Invalid size/);
});

test("command splitting follows the shell's quoting", () => {
  assert.deepEqual(splitCommand(`sh -c "echo 'a b' && echo \\"q\\""`), ["sh", "-c", `echo 'a b' && echo "q"`]);
  assert.deepEqual(splitCommand("a  b\tc"), ["a", "b", "c"]);
  assert.deepEqual(splitCommand("a\\ b ''"), ["a b", ""]);
  assert.throws(() => splitCommand("'open"), /unterminated/);
});

test("flags: long, short, grouped, lists, stop at first positional", () => {
  const defs = [
    { long: "detach", short: "d", kind: "bool" as const, help: "" },
    { long: "no-TTY", short: "T", kind: "bool" as const, help: "" },
    { long: "env", short: "e", kind: "list" as const, help: "" },
    { long: "timeout", short: "t", kind: "int" as const, help: "" },
  ];
  const r = parseFlags(["-dT", "-e", "A=1", "--env=B=2", "-t5", "svc", "cmd", "-x"], defs, { stopAtFirstPositional: true });
  assert.ok(r.flags instanceof Flags);
  assert.equal(r.flags.bool("detach"), true);
  assert.equal(r.flags.bool("no-TTY"), true);
  assert.deepEqual(r.flags.list("env"), ["A=1", "B=2"]);
  assert.equal(r.flags.int("timeout"), 5);
  assert.deepEqual(r.args, ["svc", "cmd", "-x"]);
  assert.throws(() => parseFlags(["--nope"], defs), FlagError);
  assert.throws(() => parseFlags(["-t", "x"], defs), /invalid argument "x"/);
  assert.deepEqual(parseFlags(["a", "--", "-d"], defs).args, ["a", "-d"]);
});
