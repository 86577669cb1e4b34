import assert from "node:assert/strict";
import { describe, test } from "node:test";
import type { ContainerSummary, ImageSummary } from "../client/mod.ts";
import { IMAGE_HEADERS, imageFormat, imageRows } from "./cmd_images.ts";
import { CONTAINER_HEADERS, ContainerRow, containerFormat, displayablePorts } from "./cmd_ps.ts";
import { ellipsis, goQuote } from "./display.ts";
import { indentJson, compactJson } from "./inspect.ts";
import { formatList } from "./listing.ts";
import { SearchRow } from "./cmd_search.ts";

const now = Math.floor(Date.now() / 1000);

function image(over: Partial<ImageSummary>): ImageSummary {
  return {
    Id: `sha256:${"a".repeat(64)}`,
    ParentId: "",
    RepoTags: [],
    RepoDigests: [],
    Created: now - 7200,
    Size: 4_262_600,
    SharedSize: -1,
    Labels: null,
    Containers: -1,
    ...over,
  };
}

function container(over: Partial<ContainerSummary>): ContainerSummary {
  return {
    Id: "b".repeat(64),
    Names: ["/c1"],
    Image: "busybox:latest",
    ImageID: `sha256:${"c".repeat(64)}`,
    Command: "top",
    Created: now - 90,
    Ports: [],
    Labels: {},
    State: "running",
    Status: "Up 1 minute",
    Mounts: [],
    ...over,
  };
}

describe("images table", () => {
  test("docker's columns, human sizes and times, dangling rows", () => {
    const imgs = [
      image({ RepoTags: ["busybox:latest", "busybox:1.36", "localhost:5000/x/y:v1"], RepoDigests: [`busybox@sha256:${"d".repeat(64)}`] }),
      image({ Id: `sha256:${"e".repeat(64)}`, RepoTags: null, RepoDigests: null, Created: now - 3 * 86400, Size: 999 }),
    ];
    const out = formatList(
      imageFormat("table", false, false),
      imageRows(imgs, { trunc: true, digest: false, formatHasDigest: false }),
      IMAGE_HEADERS,
    );
    assert.equal(
      out,
      [
        "REPOSITORY           TAG       IMAGE ID       CREATED       SIZE",
        "busybox              latest    aaaaaaaaaaaa   2 hours ago   4.26MB",
        "busybox              1.36      aaaaaaaaaaaa   2 hours ago   4.26MB",
        "localhost:5000/x/y   v1        aaaaaaaaaaaa   2 hours ago   4.26MB",
        "<none>               <none>    eeeeeeeeeeee   3 days ago    999B",
        "",
      ].join("\n"),
    );
  });

  test("--digests adds the column; a digest-only repository shows <none> tag", () => {
    const imgs = [image({ RepoTags: [], RepoDigests: [`busybox@sha256:${"d".repeat(64)}`] })];
    const rows = imageRows(imgs, { trunc: true, digest: true, formatHasDigest: true });
    assert.equal(rows.length, 1);
    assert.equal(rows[0]?.Tag, "<none>");
    assert.equal(rows[0]?.Digest, `sha256:${"d".repeat(64)}`);
    assert.equal(imageFormat("table {{.ID}}", false, true), "table {{.ID}}\t{{.Digest}}");
  });

  test("--format json: sorted fields, HTML escaped like docker", () => {
    const out = formatList(
      "json",
      imageRows([image({ RepoTags: null, RepoDigests: null })], { trunc: true, digest: false, formatHasDigest: false }),
      IMAGE_HEADERS,
    );
    const line = out.trim();
    assert.match(
      line,
      /^\{"Containers":"N\/A","CreatedAt":".*","CreatedSince":"2 hours ago","Digest":"\\u003cnone\\u003e","ID":"aaaaaaaaaaaa",/,
    );
    assert.ok(line.endsWith('"VirtualSize":"4.263MB"}'));
  });
});

describe("ps table", () => {
  test("docker's layout (compare cli/command/container/testdata/container-list-without-format.golden)", () => {
    const rows = [
      container({ Names: ["/c1"] }),
      container({
        Names: ["/c3"],
        Ports: [
          { PrivatePort: 80, Type: "tcp" },
          { PrivatePort: 81, Type: "tcp" },
          { PrivatePort: 82, Type: "tcp" },
        ],
      }),
      container({ Names: ["/c5"], Ports: [{ IP: "8.8.8.8", PrivatePort: 82, PublicPort: 82, Type: "tcp" }] }),
    ].map((c) => new ContainerRow(c, true));
    const out = formatList(containerFormat("table", false, false), rows, CONTAINER_HEADERS);
    assert.equal(
      out,
      [
        "CONTAINER ID   IMAGE            COMMAND   CREATED              STATUS        PORTS                NAMES",
        'bbbbbbbbbbbb   busybox:latest   "top"     About a minute ago   Up 1 minute                        c1',
        'bbbbbbbbbbbb   busybox:latest   "top"     About a minute ago   Up 1 minute   80-82/tcp            c3',
        'bbbbbbbbbbbb   busybox:latest   "top"     About a minute ago   Up 1 minute   8.8.8.8:82->82/tcp   c5',
        "",
      ].join("\n"),
    );
  });

  test("command truncation and quoting, names, labels, image short forms", () => {
    const r = new ContainerRow(
      container({ Command: 'sh -c "while true; do echo tick; done"', Names: ["/a/b", "/web"], Labels: { z: "1", a: "2" } }),
      true,
    );
    assert.equal(r.Command, '"sh -c \\"while true; …"');
    assert.equal(r.Names, "web");
    assert.equal(r.Labels, "a=2,z=1");
    assert.equal(r.Label("z"), "1");
    assert.equal(new ContainerRow(container({ Image: "docker.io/library/busybox:latest" }), true).Image, "busybox:latest");
    assert.equal(new ContainerRow(container({ Image: `busybox@sha256:${"f".repeat(64)}` }), true).Image, "busybox");
    assert.equal(new ContainerRow(container({ Image: "" }), true).Image, "<no image>");
  });

  test("ports as docker's DisplayablePorts", () => {
    assert.equal(displayablePorts([{ IP: "0.0.0.0", PrivatePort: 9988, PublicPort: 0, Type: "tcp" }]), "0.0.0.0:0->9988/tcp");
    assert.equal(displayablePorts([{ IP: "::1", PrivatePort: 9988, PublicPort: 8899, Type: "tcp" }]), "[::1]:8899->9988/tcp");
    assert.equal(
      displayablePorts([
        { IP: "1.2.3.4", PrivatePort: 9998, PublicPort: 9998, Type: "udp" },
        { IP: "1.2.3.4", PrivatePort: 9999, PublicPort: 9999, Type: "udp" },
      ]),
      "1.2.3.4:9998-9999->9998-9999/udp",
    );
    assert.equal(
      displayablePorts([
        { PrivatePort: 9988, Type: "udp" },
        { PrivatePort: 9988, Type: "udp" },
      ]),
      "9988/udp, 9988/udp",
    );
    assert.equal(displayablePorts([{ IP: "127.0.0.1", PrivatePort: 80, PublicPort: 8080, Type: "tcp" }]), "127.0.0.1:8080->80/tcp");
  });

  test("quiet and size formats", () => {
    assert.equal(containerFormat("table", true, false), "{{.ID}}");
    assert.ok(containerFormat("table", false, true).endsWith("\t{{.Size}}"));
    assert.equal(containerFormat("{{.Names}}", true, false), "{{.ID}}");
  });
});

describe("text helpers", () => {
  test("ellipsis and Go quoting", () => {
    assert.equal(ellipsis("abcdefghijklmnopqrstuvwxyz", 20), "abcdefghijklmnopqrs…");
    assert.equal(ellipsis("short", 20), "short");
    assert.equal(ellipsis("日本語日本語日本語日本語", 10), "日本語日…");
    assert.equal(goQuote('a"b\\c\n'), '"a\\"b\\\\c\\n"');
  });
  test("inspect indentation as Go's json.Indent", () => {
    assert.equal(
      indentJson('[{"a":1,"b":[],"c":{},"d":[1,2],"e":"x\\"y, z"}]'),
      '[\n    {\n        "a": 1,\n        "b": [],\n        "c": {},\n        "d": [\n            1,\n            2\n        ],\n        "e": "x\\"y, z"\n    }\n]',
    );
    assert.equal(compactJson('[ {"a" : 1 , "s": "a b"} ]'), '[{"a":1,"s":"a b"}]');
  });
});

describe("search table", () => {
  test("docker's golden layout; booleans as [OK] in tables and true/false in JSON", () => {
    const results = [
      { name: "result1", description: "Official build", star_count: 5000, is_official: true },
      { name: "result2", description: "Not official", star_count: 5, is_official: false },
    ];
    const headers = { Name: "NAME", Description: "DESCRIPTION", StarCount: "STARS", IsOfficial: "OFFICIAL" };
    const table = formatList(
      "table {{.Name}}\t{{.Description}}\t{{.StarCount}}\t{{.IsOfficial}}",
      results.map((r) => new SearchRow(r, true, false)),
      headers,
    );
    assert.equal(
      table,
      "NAME      DESCRIPTION      STARS     OFFICIAL\nresult1   Official build   5000      [OK]\nresult2   Not official     5         \n",
    );
    const json = formatList("json", [new SearchRow(results[0] as (typeof results)[0], true, true)], headers);
    assert.equal(json, '{"Description":"Official build","IsAutomated":"false","IsOfficial":"true","Name":"result1","StarCount":"5000"}\n');
  });
});
