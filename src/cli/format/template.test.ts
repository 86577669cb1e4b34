import assert from "node:assert/strict";
import { test } from "node:test";
import { isInvalidArgument } from "../../base/mod.ts";
import { compile, markStruct, render, sprintf, toJson } from "./mod.ts";

function throwsMessage(fn: () => unknown, message: string): void {
  assert.throws(fn, (err: Error) => {
    assert.ok(isInvalidArgument(err), "an InvalidArgument error");
    assert.equal(err.message, message);
    return true;
  });
}

test("docker docs examples", () => {
  const c = {
    ID: "4fa6e0f0c678",
    Image: "nginx",
    Config: { Cmd: ["nginx", "-g", "daemon off;"] },
    Mounts: [{ Source: "/a" }, { Source: "/b" }],
    NetworkSettings: { Networks: { bridge: { IPAddress: "172.17.0.2" } } },
    State: { Running: true, Status: "running" },
    Args: ["-g", "daemon off;"],
    Labels: { b: "2", a: "1" },
  };
  assert.equal(render("{{.ID}}\t{{.Image}}", c), "4fa6e0f0c678\tnginx");
  assert.equal(render("{{json .Config.Cmd}}", c), '["nginx","-g","daemon off;"]');
  assert.equal(render("{{range .Mounts}}{{.Source}}{{end}}", c), "/a/b");
  assert.equal(render('{{index .NetworkSettings.Networks "bridge"}}', c), "map[IPAddress:172.17.0.2]");
  assert.equal(render('{{(index .NetworkSettings.Networks "bridge").IPAddress}}', c), "172.17.0.2");
  assert.equal(render("{{.State.Running}}", c), "true");
  assert.equal(render('{{if eq .State.Status "running"}}yes{{else}}no{{end}}', c), "yes");
  assert.equal(render('{{join .Args " "}}', c), "-g daemon off;");
  assert.equal(render("{{range $k, $v := .Labels}}{{$k}}={{$v}} {{end}}", c), "a=1 b=2 ");
});

test("methods and getters on class instances act like Go methods", () => {
  class ContainerContext {
    #names = ["/web", "/alias"];
    get ID(): string {
      return "abc";
    }
    Names(): string {
      return this.#names.map((n) => n.slice(1)).join(",");
    }
    Label(name: string): string {
      return name === "a" ? "1" : "";
    }
    helper(): string {
      return "not exported";
    }
  }
  const ctx = new ContainerContext();
  assert.equal(render('{{.ID}} {{.Names}} {{.Label "a"}} {{"a" | .Label}}', ctx), "abc web,alias 1 1");
  // Structs: unknown fields are errors naming the type.
  throwsMessage(
    () => render("{{.Foo}}", ctx),
    'template parsing error: template: :1:2: executing "" at <.Foo>: can\'t evaluate field Foo in type *ContainerContext',
  );
  // Methods that throw are reported like Go's "error calling".
  const bad = {
    Fail: () => {
      throw new Error("nope");
    },
  };
  throwsMessage(
    () => render("{{.Fail}}", bad),
    'template parsing error: template: :1:2: executing "" at <.Fail>: error calling Fail: nope',
  );
  // JSON of a class instance: upper-case getters and zero-argument methods, sorted (docker's MarshalJSON).
  assert.equal(toJson(ctx), '{"ID":"abc","Names":"web,alias"}');
  assert.equal(render("{{json .}}", ctx), '{"ID":"abc","Names":"web,alias"}');
});

test("functions as values of plain objects are called", () => {
  assert.equal(render("{{.Names}}|{{.Upper .Name}}", { Name: "x", Names: () => "a,b", Upper: (s: string) => s.toUpperCase() }), "a,b|X");
});

test("maps versus structs", () => {
  const data = { A: 1, B: { C: "x" } };
  assert.equal(render("{{.Missing}}|{{.B.Missing}}|{{.}}", data), "<no value>|<no value>|map[A:1 B:map[C:x]]");
  assert.equal(render("{{.}}", data, { structs: true }), "{1 {x}}");
  throwsMessage(
    () => render("{{.B.Missing}}", data, { structs: true }),
    'template parsing error: template: :1:4: executing "" at <.B.Missing>: can\'t evaluate field Missing in type struct',
  );
  const s = markStruct({ Name: "n", Size: 2 }, "types.Image");
  assert.equal(render('{{.}} {{printf "%+v" .}}', s), "{n 2} {Name:n Size:2}");
  throwsMessage(
    () => render("{{.Nope}}", s),
    'template parsing error: template: :1:2: executing "" at <.Nope>: can\'t evaluate field Nope in type types.Image',
  );
  // JSON: maps sorted like Go maps, structs in declaration order.
  assert.equal(toJson({ b: 1, a: 2 }), '{"a":2,"b":1}');
  assert.equal(toJson(markStruct({ b: 1, a: 2 })), '{"b":1,"a":2}');
  assert.equal(render("{{json .}}", { b: 1, a: 2 }, { structs: true }), '{"b":1,"a":2}');
  assert.equal(
    toJson(
      new Map([
        ["z", 1],
        ["y", 2],
      ]),
    ),
    '{"y":2,"z":1}',
  );
});

test("missingkey=error as docker inspect's raw fallback uses it", () => {
  throwsMessage(
    () => render("{{.Nope}}", { A: 1 }, { missingKey: "error" }),
    'template parsing error: template: :1:2: executing "" at <.Nope>: map has no entry for key "Nope"',
  );
  assert.equal(render("{{.A}}", { A: 1 }, { missingKey: "error" }), "1");
});

test("nil and missing values", () => {
  assert.equal(render("{{.A}}|{{.B}}|{{print .A .B}}|{{json .A}}|{{json .B}}", { A: null }), "<nil>|<no value>|<nil> <nil>|null|null");
  throwsMessage(
    () => render("{{.A.B}}", { A: null }),
    'template parsing error: template: :1:4: executing "" at <.A.B>: nil pointer evaluating interface {}.B',
  );
});

test("range over ints and else with (newer Go)", () => {
  assert.equal(render("{{range 3}}{{.}}{{end}}|{{range $i := 2}}{{$i}}{{end}}|{{range 0}}x{{else}}none{{end}}", null), "012|01|none");
  assert.equal(render("{{with .A}}a{{else with .B}}b{{.}}{{else}}c{{end}}", { B: "!" }), "b!");
  assert.equal(render("{{with .A}}a{{else with .B}}b{{else}}c{{end}}", {}), "c");
});

test("break and continue only stop the innermost range", () => {
  const t = "{{range .}}{{range .}}{{if eq . 2}}{{break}}{{end}}{{.}}{{end}};{{end}}";
  assert.equal(
    render(t, [
      [1, 2, 3],
      [4, 2],
    ]),
    "1;4;",
  );
});

test("variables are scoped to control structures", () => {
  assert.equal(render("{{$x := 1}}{{range .}}{{$x := .}}{{$x}}{{end}}{{$x}}", [7, 8]), "781");
  throwsMessage(() => render("{{if 1}}{{$y := 2}}{{end}}{{$y}}", {}), 'template parsing error: template: :1: undefined variable "$y"');
});

test("template and block", () => {
  const t = compile('{{define "row"}}{{.Name}}={{.Value}}{{end}}{{range .}}{{template "row" .}};{{end}}');
  assert.deepEqual(t.definedTemplates(), ["row"]);
  assert.equal(t.execute([{ Name: "a", Value: 1 }]), "a=1;");
  // Recursion is bounded.
  assert.throws(() => render('{{define "r"}}{{template "r" .}}{{end}}{{template "r" .}}', 1), /exceeded maximum template depth/);
});

test("custom functions", () => {
  const t = compile('{{shout .}} {{. | shout | printf "%q"}}', { funcs: { shout: (s) => `${String(s)}!` } });
  assert.equal(t.execute("hi"), 'hi! "hi!"');
  throwsMessage(() => render("{{fail}}", null), 'template parsing error: template: :1: function "fail" not defined');
  const failing = compile("{{fail 1}}", {
    funcs: {
      fail: () => {
        throw new Error("bad");
      },
    },
  });
  throwsMessage(() => failing.execute(null), 'template parsing error: template: :1:2: executing "" at <fail 1>: error calling fail: bad');
});

test("hostile field names never reach Object.prototype", () => {
  assert.equal(
    render("{{.constructor}}|{{.__proto__}}|{{.toString}}|{{.hasOwnProperty}}", {}),
    "<no value>|<no value>|<no value>|<no value>",
  );
  class K {
    X = 1;
  }
  assert.throws(() => render("{{.constructor}}", new K()), /can't evaluate field constructor/);
  assert.throws(() => render("{{.toString}}", new K()), /can't evaluate field toString/);
});

test("parse errors are InvalidArgument with Go's wording", () => {
  throwsMessage(() => compile("{{.Foo }"), 'template parsing error: template: :1: unexpected "}" in operand');
  throwsMessage(() => compile("{{if .A}}"), "template parsing error: template: :1: unexpected EOF");
  throwsMessage(() => compile("a\n{{end}}"), "template parsing error: template: :2: unexpected {{end}}");
});

test("error detail carries the position", () => {
  try {
    render("x\n  {{.A.B}}", { A: 1 });
    assert.fail("expected an error");
  } catch (err) {
    const e = err as { detail?: Record<string, unknown>; message: string };
    assert.equal(e.detail?.line, 2);
    // Like Go, a field chain is located at its last element.
    assert.equal(e.detail?.column, 6);
    assert.match(e.message, /^template parsing error: template: :2:6: executing "" at <.A.B>: can't evaluate field B in type int$/);
  }
});

test("numbers print as Go ints and float64s", () => {
  // Integral values are ints (JavaScript cannot tell 1e6 from 1000000); others use Go's %v for float64.
  assert.equal(
    render("{{.}}", [1, -2, 1.5, 1e6, 1234567.5, 1e-5, 0.1, 2 ** 60]),
    "[1 -2 1.5 1000000 1.2345675e+06 1e-05 0.1 1152921504606846976]",
  );
  assert.equal(render("{{.}}", 10n), "10");
});

test("dates print like time.Time", () => {
  const d = new Date("2024-01-02T03:04:05.120Z");
  assert.equal(render("{{.}}", d), "2024-01-02 03:04:05.12 +0000 UTC");
  assert.equal(render("{{json .}}", d), '"2024-01-02T03:04:05.12Z"');
});

test("json keeps HTML characters and escapes line separators like Go", () => {
  assert.equal(render("{{json .}}", "<a>&\u2028"), '"<a>&\\u2028"');
  assert.equal(render("{{json .}}", Number.NaN), "");
});

test("sprintf is exported", () => {
  assert.equal(sprintf("%-6s|%6.2f|%03d|%v", "ab", 1.23456, 7, ["x", 1]), "ab    |  1.23|007|[x 1]");
  assert.equal(sprintf("%d %s", 1), "1 %!s(MISSING)");
});
