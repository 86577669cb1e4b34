import assert from "node:assert/strict";
import { test } from "node:test";
import { parseDockerignore, PatternMatcher } from "./ignore.ts";

test("parseDockerignore: comments, blank lines, leading slash, cleaning, exceptions", () => {
  const text = "\uFEFF# comment\n\n  *.log  \n/abs/path\n./rel/../x/\n!  keep.log\n #not a comment\n";
  assert.deepEqual(parseDockerignore(text), ["*.log", "abs/path", "x", "!keep.log", "#not a comment"]);
});

test("PatternMatcher: Docker's semantics", () => {
  const cases: [string[], string, boolean][] = [
    [["*.log"], "a.log", true],
    [["*.log"], "dir/a.log", false],
    [["**/*.log"], "dir/sub/a.log", true],
    [["**/*.log"], "a.log", true],
    [["dir"], "dir/sub/file", true],
    [["dir/*"], "dir/sub/file", true],
    [["dir/**"], "dir/x", true],
    [["dir/**"], "dir", false],
    [["a?c"], "abc", true],
    [["a?c"], "a/c", false],
    [["[a-c].txt"], "b.txt", true],
    [["[!a-c].txt"], "d.txt", true],
    [["[!a-c].txt"], "a.txt", false],
    [["*", "!keep"], "keep", false],
    [["*", "!keep"], "other", true],
    [["*", "!keep", "keep"], "keep", true],
    [["node_modules"], "node_modules/pkg/index.js", true],
    [["**/node_modules"], "a/b/node_modules/x", true],
    [["file.txt"], "file.txt/", true],
    [["a.b"], "aXb", false],
    [["x+y"], "x+y", true],
    [[".git"], ".git/config", true],
    [["*/temp*"], "somedir/temporary.txt", true],
    [["temp?"], "temp1", true],
  ];
  for (const [patterns, path, want] of cases) {
    assert.equal(new PatternMatcher(patterns).matches(path), want, `${JSON.stringify(patterns)} ${path}`);
  }
});

test("PatternMatcher: exclusions and errors", () => {
  assert.equal(new PatternMatcher(["*.md", "!README.md"]).hasExclusions, true);
  assert.equal(new PatternMatcher(["*.md"]).hasExclusions, false);
  assert.throws(() => new PatternMatcher(["!"]), /illegal exclusion pattern/);
  assert.throws(() => new PatternMatcher(["[abc"]), /syntax error in pattern/);
  assert.equal(new PatternMatcher([]).empty, true);
});
