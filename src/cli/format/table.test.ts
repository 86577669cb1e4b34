import assert from "node:assert/strict";
import { test } from "node:test";
import { isInvalidArgument } from "../../base/mod.ts";
import { displayWidth, formatRows, formatTable, TabWriter, tabulate, templateText } from "./mod.ts";

const rows = [
  { ID: "4fa6e0f0c678", Image: "nginx:latest", Status: "Up 2 minutes", Names: "web" },
  { ID: "1b2", Image: "registry.example.com/app:1.2.3", Status: "Exited (0) 3 hours ago", Names: "app_1" },
];
const headers = { ID: "CONTAINER ID", Image: "IMAGE", Status: "STATUS", Names: "NAMES" };

test("tabwriter: docker's settings align columns, the last cell is not padded", () => {
  assert.equal(
    tabulate("NAME\tDRIVER\tSCOPE\nbridge\tbridge\tlocal\nmy-long-network-name\tmacvlan\tswarm\n"),
    ["NAME                   DRIVER    SCOPE", "bridge                 bridge    local", "my-long-network-name   macvlan   swarm", ""].join(
      "\n",
    ),
  );
});

test("tabwriter: a line without tabs ends the column block", () => {
  assert.equal(tabulate("a\tb\nplain\nlonger-cell\tc\n"), "a         b\nplain\nlonger-cell   c\n");
});

test("tabwriter: incremental writes and flush", () => {
  const tw = new TabWriter();
  tw.write("A\tB\n");
  tw.write("aaaaaaaaaaaa\t");
  tw.write("b\n");
  assert.equal(tw.flush(), "A              B\naaaaaaaaaaaa   b\n");
  assert.equal(tw.flush(), "");
});

test("tabwriter: options", () => {
  // Outputs checked against Go's text/tabwriter.
  assert.equal(tabulate("a\tbb\tc\naaa\tb\tc\n", { minWidth: 0, padding: 1, alignRight: true }), "   a bbc\n aaa  bc\n");
  assert.equal(tabulate("a\tb\n", { minWidth: 0, padding: 1, debug: true }), "a |b\n");
  assert.equal(tabulate("a\tb\nccccc\td\n", { minWidth: 0, padding: 0, padChar: "\t", tabWidth: 8 }), "a\tb\nccccc\td\n");
  assert.equal(tabulate("\va\tb\n\vc\td\n", { minWidth: 0, padding: 1, discardEmptyColumns: true }), "a b\nc d\n");
});

test("tabwriter: wide characters count two columns, like docker's runewidth", () => {
  assert.equal(displayWidth("日本"), 4);
  assert.equal(displayWidth("é"), 1);
  assert.equal(tabulate("日本語\tx\nab\ty\n", { minWidth: 0, padding: 1 }), "日本語 x\nab     y\n");
});

test("templateText: table prefix, json keyword, literal \\t and \\n", () => {
  assert.equal(templateText("table {{.ID}}\\t{{.Names}}"), "{{.ID}}\t{{.Names}}");
  assert.equal(templateText("json"), "{{json .}}");
  assert.equal(templateText("  {{.ID}}\\n "), "{{.ID}}\n");
});

test("formatTable renders the header from the column titles and aligns rows", () => {
  assert.equal(
    formatTable("table {{.ID}}\\t{{.Image}}\\t{{.Names}}", rows, headers),
    [
      "CONTAINER ID   IMAGE                            NAMES",
      "4fa6e0f0c678   nginx:latest                     web",
      "1b2            registry.example.com/app:1.2.3   app_1",
      "",
    ].join("\n"),
  );
  // Header functions are identities, so {{upper .Names}} shows "NAMES" and truncate leaves titles intact.
  assert.equal(
    formatTable("table {{lower .Names}}\\t{{truncate .ID 3}}", rows, headers),
    "NAMES     CONTAINER ID\nweb       4fa\napp_1     1b2\n",
  );
  // A header with no rows is still printed.
  assert.equal(formatTable("table {{.ID}}", [], headers), "CONTAINER ID\n");
});

test("formatRows: keywords, quiet and custom formats", () => {
  const base = { rows, headers, defaultFormat: "table {{.ID}}\\t{{.Names}}" };
  const table = "CONTAINER ID   NAMES\n4fa6e0f0c678   web\n1b2            app_1\n";
  assert.equal(formatRows({ ...base }), table);
  assert.equal(formatRows({ ...base, format: "" }), table);
  assert.equal(formatRows({ ...base, format: "table" }), table);
  assert.equal(formatRows({ ...base, quiet: true }), "4fa6e0f0c678\n1b2\n");
  assert.equal(formatRows({ ...base, quiet: true, quietFormat: "{{.Names}}" }), "web\napp_1\n");
  // A custom format wins over --quiet, as in docker.
  assert.equal(formatRows({ ...base, quiet: true, format: "{{.Names}}" }), "web\napp_1\n");
  assert.equal(formatRows({ ...base, format: "{{.Names}}: {{.Status}}" }), "web: Up 2 minutes\napp_1: Exited (0) 3 hours ago\n");
  assert.equal(
    formatRows({ ...base, format: "json" }),
    '{"ID":"4fa6e0f0c678","Image":"nginx:latest","Names":"web","Status":"Up 2 minutes"}\n' +
      '{"ID":"1b2","Image":"registry.example.com/app:1.2.3","Names":"app_1","Status":"Exited (0) 3 hours ago"}\n',
  );
  assert.equal(formatRows({ ...base, format: "{{json .Names}}" }), '"web"\n"app_1"\n');
});

test("formatRows: errors are InvalidArgument and print nothing", () => {
  assert.throws(
    () => formatRows({ rows, format: "table {{.ID}}\\t{{.Nope.X}}", structs: true }),
    (err: Error) => isInvalidArgument(err) && /can't evaluate field Nope in type struct/.test(err.message),
  );
  assert.throws(
    () => formatRows({ rows, format: "{{.ID" }),
    (err: Error) => isInvalidArgument(err) && /unclosed action/.test(err.message),
  );
  assert.throws(
    () => formatRows({ rows }),
    (err: Error) => isInvalidArgument(err),
  );
});

test("formatRows works with class-based row contexts", () => {
  class Row {
    #c: { id: string; names: string[] };
    constructor(c: { id: string; names: string[] }) {
      this.#c = c;
    }
    get ID(): string {
      return this.#c.id.slice(0, 12);
    }
    Names(): string {
      return this.#c.names.join(",");
    }
  }
  const out = formatRows({
    rows: [new Row({ id: "0123456789abcdef", names: ["a", "b"] })],
    headers: { ID: "CONTAINER ID", Names: "NAMES" },
    defaultFormat: "table {{.ID}}\\t{{.Names}}",
  });
  assert.equal(out, "CONTAINER ID   NAMES\n0123456789ab   a,b\n");
  assert.equal(formatRows({ rows: [new Row({ id: "x", names: [] })], format: "json" }), '{"ID":"x","Names":""}\n');
});
