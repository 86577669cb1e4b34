import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { FlagError, type FlagSpec, formatFlagUsages, fromHumanSize, parseFlags, parseGoDuration, parseGoInt, ramInBytes } from "./flags.ts";

const SPECS: FlagSpec[] = [
  { long: "interactive", short: "i", kind: "bool", help: "Keep STDIN open" },
  { long: "tty", short: "t", kind: "bool", help: "Allocate a pseudo-TTY" },
  { long: "detach", short: "d", kind: "bool", help: "Detach" },
  { long: "name", kind: "string", help: "Name" },
  { long: "env", short: "e", kind: "list", help: "Env" },
  { long: "publish", short: "p", kind: "list", help: "Publish" },
  { long: "last", short: "n", kind: "int", help: "Last" },
  { long: "memory", short: "m", kind: "bytes", help: "Memory" },
  { long: "interval", kind: "duration", help: "Interval" },
  { long: "platform", kind: "slice", help: "Platforms" },
  { long: "hostname", short: "h", kind: "string", help: "Host name" },
];

describe("parseFlags (pflag semantics)", () => {
  test("combined shorthands, attached values, = forms, repeated lists", () => {
    const r = parseFlags(["-it", "--name=web", "-e", "A=1", "-eB=2", "-p8080:80", "--env", "C", "-n=3", "-m", "512m", "img"], SPECS);
    assert.equal(r.flags.bool("interactive"), true);
    assert.equal(r.flags.bool("tty"), true);
    assert.equal(r.flags.string("name"), "web");
    assert.deepEqual(r.flags.list("env"), ["A=1", "B=2", "C"]);
    assert.deepEqual(r.flags.list("publish"), ["8080:80"]);
    assert.equal(r.flags.number("last"), 3);
    assert.equal(r.flags.number("memory"), 512 * 1024 * 1024);
    assert.deepEqual(r.args, ["img"]);
  });

  test("interspersed by default, stops at the first positional for run", () => {
    const a = parseFlags(["img", "-d", "x"], SPECS);
    assert.deepEqual(a.args, ["img", "x"]);
    assert.equal(a.flags.bool("detach"), true);
    const b = parseFlags(["-d", "busybox", "ls", "-l", "--name", "x"], SPECS, { stopAtFirstPositional: true });
    assert.deepEqual(b.args, ["busybox", "ls", "-l", "--name", "x"]);
    assert.equal(b.flags.has("name"), false);
  });

  test("-- ends flags; - is an argument; a value may start with a dash", () => {
    const r = parseFlags(["--name", "-x", "-", "--", "-d"], SPECS);
    assert.equal(r.flags.string("name"), "-x");
    assert.deepEqual(r.args, ["-", "-d"]);
  });

  test("bools take =false; help is recognised; -h is free for commands that use it", () => {
    assert.equal(parseFlags(["--detach=false"], SPECS).flags.bool("detach"), false);
    assert.equal(parseFlags(["-d=false"], SPECS).flags.bool("detach"), false);
    assert.equal(parseFlags(["--help"], SPECS).help, true);
    const h = parseFlags(["-h", "myhost"], SPECS);
    assert.equal(h.help, false);
    assert.equal(h.flags.string("hostname"), "myhost");
    assert.equal(parseFlags(["-h"], []).help, true);
  });

  test("slices split at commas", () => {
    assert.deepEqual(parseFlags(["--platform", "linux/amd64,linux/arm64", "--platform=x"], SPECS).flags.list("platform"), [
      "linux/amd64",
      "linux/arm64",
      "x",
    ]);
  });

  test("errors are worded like pflag's", () => {
    assert.throws(() => parseFlags(["--nope"], SPECS), new FlagError("unknown flag: --nope"));
    assert.throws(() => parseFlags(["-itx"], SPECS), new FlagError("unknown shorthand flag: 'x' in -itx"));
    assert.throws(() => parseFlags(["--name"], SPECS), new FlagError("flag needs an argument: --name"));
    assert.throws(() => parseFlags(["-e"], SPECS), new FlagError("flag needs an argument: 'e' in -e"));
    assert.throws(
      () => parseFlags(["-n", "x"], SPECS),
      new FlagError('invalid argument "x" for "-n, --last" flag: strconv.ParseInt: parsing "x": invalid syntax'),
    );
    assert.throws(
      () => parseFlags(["-m", "1x"], SPECS),
      new FlagError(`invalid argument "1x" for "-m, --memory" flag: invalid suffix: 'x'`),
    );
    assert.throws(() => parseFlags(["--interval", "5"], SPECS), /time: invalid duration "5"/);
  });
});

describe("value parsers", () => {
  test("Go ints, durations and sizes", () => {
    assert.equal(parseGoInt("0x10"), 16);
    assert.equal(parseGoInt("-5"), -5);
    assert.equal(parseGoInt("1_000"), 1000);
    assert.equal(parseGoInt("x"), undefined);
    assert.equal(parseGoDuration("1m30s"), 90_000);
    assert.equal(parseGoDuration("500ms"), 500);
    assert.equal(parseGoDuration("1.5h"), 5_400_000);
    assert.equal(parseGoDuration("0"), 0);
    assert.equal(parseGoDuration("10"), undefined);
    assert.equal(ramInBytes("1g"), 1024 ** 3);
    assert.equal(ramInBytes("64MiB"), 64 * 1024 ** 2);
    assert.equal(ramInBytes("100"), 100);
    assert.equal(fromHumanSize("1.5GB"), 1_500_000_000);
    assert.throws(() => ramInBytes("1gb2"), /invalid/);
  });
});

describe("help layout", () => {
  test("pflag columns and wrapping at 80", () => {
    const text = formatFlagUsages([
      { long: "all-tags", short: "a", kind: "bool", help: "Download all tagged images in the repository" },
      { long: "disable-content-trust", kind: "bool", help: "Skip image verification", defaultText: "true" },
      { long: "platform", kind: "string", help: "Set platform if server is multi-platform capable" },
      { long: "quiet", short: "q", kind: "bool", help: "Suppress verbose output" },
    ]);
    assert.equal(
      text,
      [
        "  -a, --all-tags                Download all tagged images in the repository",
        "      --disable-content-trust   Skip image verification (default true)",
        "      --platform string         Set platform if server is multi-platform",
        "                                capable",
        "  -q, --quiet                   Suppress verbose output",
      ].join("\n"),
    );
  });
});
