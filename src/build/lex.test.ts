// biome-ignore-all lint/suspicious/noTemplateCurlyInString: Dockerfile variable syntax in test inputs
import assert from "node:assert/strict";
import { test } from "node:test";
import { ShellLex } from "./lex.ts";

const env: Record<string, string> = { PWD: "/home", SHELL: "bash", EMPTY: "", X: "a b", FILE: "archive.tar.gz", P: "/usr/local/bin" };
const lookup = (k: string) => env[k];

test("processWord: expansion, quotes and escapes", () => {
  const lex = new ShellLex();
  const cases: [string, string][] = [
    ["hello", "hello"],
    ["$PWD", "/home"],
    ["${PWD}", "/home"],
    ["x${PWD}y", "x/homey"],
    ["$PWD/sub", "/home/sub"],
    ["$UNSET", ""],
    ["${UNSET:-default}", "default"],
    ["${EMPTY:-default}", "default"],
    ["${EMPTY-default}", ""],
    ["${UNSET-default}", "default"],
    ["${PWD:-default}", "/home"],
    ["${PWD:+alt}", "alt"],
    ["${EMPTY:+alt}", ""],
    ["${EMPTY+alt}", "alt"],
    ["${UNSET:+alt}", ""],
    ["${UNSET:-${PWD}/x}", "/home/x"],
    ["${UNSET:-'quoted $PWD'}", "quoted $PWD"],
    ["'$PWD'", "$PWD"],
    ['"$PWD"', "/home"],
    ['"a\\"b"', 'a"b'],
    ['"a\\$b"', "a$b"],
    ['"a\\nb"', "a\\nb"],
    ["a\\ b", "a b"],
    ["\\$PWD", "$PWD"],
    ["$", "$"],
    ["$1", ""],
    ["a$", "a$"],
    ["  spaced  words ", "  spaced  words "],
    ["${FILE%.gz}", "archive.tar"],
    ["${FILE%%.*}", "archive"],
    ["${FILE#*.}", "tar.gz"],
    ["${FILE##*.}", "gz"],
    ["${P/local/opt}", "/usr/opt/bin"],
    ["${P//\\//:}", ":usr:local:bin"],
    ["日本$SHELL", "日本bash"],
  ];
  for (const [input, want] of cases) assert.equal(lex.processWord(input, lookup), want, input);
});

test("processWords splits at unquoted whitespace after expansion", () => {
  const lex = new ShellLex();
  assert.deepEqual(lex.processWords("a b  c", lookup), ["a", "b", "c"]);
  assert.deepEqual(lex.processWords("$X c", lookup), ["a", "b", "c"]);
  assert.deepEqual(lex.processWords('"$X" c', lookup), ["a b", "c"]);
  assert.deepEqual(lex.processWords("'a b' \"\" c", lookup), ["a b", "c"]);
  assert.deepEqual(lex.processWords("80/tcp ${UNSET:-443}", lookup), ["80/tcp", "443"]);
});

test("the escape directive changes the escape character", () => {
  const lex = new ShellLex("`");
  assert.equal(lex.processWord("c:\\dir", lookup), "c:\\dir");
  assert.equal(lex.processWord("a` b", lookup), "a b");
  assert.equal(lex.processWord("`$PWD", lookup), "$PWD");
});

test("errors name the problem", () => {
  const lex = new ShellLex();
  assert.throws(() => lex.processWord("${PWD", lookup), /missing '}'/);
  assert.throws(() => lex.processWord("${}", lookup), /bad substitution/);
  assert.throws(() => lex.processWord("'open", lookup), /matching single-quote/);
  assert.throws(() => lex.processWord('"open', lookup), /matching double-quote/);
  assert.throws(() => lex.processWord("${UNSET:?must be set}", lookup), /UNSET: must be set/);
  assert.throws(() => lex.processWord("${EMPTY:?}", lookup), /EMPTY: is not allowed to be empty/);
  assert.throws(() => lex.processWord("${PWD:%x}", lookup), /unsupported modifier/);
});

test("matched and unmatched variables are reported", () => {
  const r = new ShellLex().process("$PWD ${NOPE:-x}", lookup);
  assert.deepEqual([...r.matched], ["PWD"]);
  assert.deepEqual([...r.unmatched], ["NOPE"]);
});

test("skipUnsetEnv keeps references to unset variables", () => {
  const lex = new ShellLex("\\", { skipUnsetEnv: true });
  assert.equal(lex.processWord("$PWD $NOPE ${NOPE} ${NOPE:-d}", lookup), "/home $NOPE ${NOPE} ${NOPE:-d}");
});
