/** System commands: version, info, system df, events. */
import { readFileSync } from "node:fs";
import { arch, platform } from "node:os";
import type { DiskUsage, EventMessage, ImageSummary, SystemInfo, VersionInfo } from "../client/mod.ts";
import { CLIENT_API_VERSION, ConnectError } from "../client/mod.ts";
import { describeError, StatusError } from "./cli.ts";
import type { Command } from "./command.ts";
import { compile, formatTable, markStruct, TabWriter, type Template } from "./format/mod.ts";
import { goTyped } from "./inspect.ts";
import { INSPECT_FORMAT_HELP, filterFlag, formatFlag, parseFilters } from "./opts.ts";
import { apiTimestamp, bytesSize, humanDuration, humanSize, rfc3339NanoFixed } from "./units.ts";

/** berth's own version (package.json). */
export function berthVersion(): string {
  try {
    const pkg = JSON.parse(readFileSync(new URL("../../package.json", import.meta.url), "utf8")) as { version?: string };
    return pkg.version ?? "dev";
  } catch {
    return "dev";
  }
}

const VERSION_TEMPLATE = `{{with .Client -}}
Client:{{if ne .Platform nil}}{{if ne .Platform.Name ""}} {{.Platform.Name}}{{end}}{{end}}
 Version:\t{{.Version}}
 API version:\t{{.APIVersion}}{{if ne .APIVersion .DefaultAPIVersion}} (downgraded from {{.DefaultAPIVersion}}){{end}}
 Go version:\t{{.GoVersion}}
 Git commit:\t{{.GitCommit}}
 Built:\t{{.BuildTime}}
 OS/Arch:\t{{.Os}}/{{.Arch}}
 Context:\t{{.Context}}
{{- end}}

{{- if ne .Server nil}}{{with .Server}}

Server:{{if ne .Platform.Name ""}} {{.Platform.Name}}{{end}}
 {{- range $component := .Components}}
 {{$component.Name}}:
  {{- if eq $component.Name "Engine" }}
  Version:\t{{.Version}}
  API version:\t{{index .Details "ApiVersion"}} (minimum version {{index .Details "MinAPIVersion"}})
  Go version:\t{{index .Details "GoVersion"}}
  Git commit:\t{{index .Details "GitCommit"}}
  Built:\t{{index .Details "BuildTime"}}
  OS/Arch:\t{{index .Details "Os"}}/{{index .Details "Arch"}}
  Experimental:\t{{index .Details "Experimental"}}
  {{- else }}
  Version:\t{{$component.Version}}
  {{- $detailsOrder := getDetailsOrder $component}}
  {{- range $key := $detailsOrder}}
  {{$key}}:\t{{index $component.Details $key}}
   {{- end}}
  {{- end}}
 {{- end}}
 {{- end}}{{- end}}`.replaceAll("\\t", "\t");

function goArch(): string {
  const a = arch();
  return a === "x64" ? "amd64" : a === "ia32" ? "386" : a;
}

/** Go's time.ANSIC layout of an RFC 3339 build time (`Mon Jan  2 15:04:05 2006`), as docker's reformatDate. */
function ansic(s: string | undefined): string {
  if (!s) return "";
  const d = new Date(s);
  if (Number.isNaN(d.getTime())) return s;
  const days = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"];
  const months = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
  const p = (n: number) => String(n).padStart(2, "0");
  return `${days[d.getDay()]} ${months[d.getMonth()]} ${String(d.getDate()).padStart(2, " ")} ${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())} ${d.getFullYear()}`;
}

export const versionCommand: Command = {
  name: "version",
  usage: "[OPTIONS]",
  short: "Show the Docker version information",
  args: "none",
  flags: [{ long: "format", short: "f", kind: "string", help: INSPECT_FORMAT_HELP }],
  async run(cli, { flags }) {
    let format = flags.string("format");
    if (format === "") format = VERSION_TEMPLATE;
    else if (format === "json") format = "{{json .}}";
    let tmpl: Template;
    try {
      tmpl = compile(format, {
        funcs: { getDetailsOrder: (c: unknown) => Object.keys((c as { Details?: Record<string, string> }).Details ?? {}).sort() },
      });
    } catch (e) {
      throw new StatusError(64, (e as Error).message);
    }
    let server: VersionInfo | null = null;
    let error: unknown;
    try {
      server = await cli.client.version();
    } catch (e) {
      error = e;
    }
    let apiVersion = CLIENT_API_VERSION;
    if (server) apiVersion = await cli.client.apiVersion();
    const client = {
      Platform: { Name: "berth" },
      Version: berthVersion(),
      ApiVersion: apiVersion,
      DefaultAPIVersion: CLIENT_API_VERSION,
      GitCommit: "",
      GoVersion: process.version,
      Os: platform(),
      Arch: goArch(),
      BuildTime: "",
      Context: "default",
    };
    if (server) {
      server.Components ??= [];
      const engine = server.Components.find((c) => c.Name === "Engine");
      if (engine?.Details?.BuildTime) engine.Details.BuildTime = ansic(engine.Details.BuildTime);
      if (!engine) {
        server.Components.push({
          Name: "Engine",
          Version: server.Version,
          Details: {
            ApiVersion: server.ApiVersion,
            MinAPIVersion: server.MinAPIVersion ?? "",
            GitCommit: server.GitCommit ?? "",
            GoVersion: server.GoVersion ?? "",
            Os: server.Os,
            Arch: server.Arch,
            BuildTime: ansic(server.BuildTime),
            Experimental: String(server.Experimental ?? false),
          },
        });
      }
      server.Platform ??= { Name: "" };
    }
    // Go templates see struct fields; `.Client.APIVersion` is the Go name of the JSON "ApiVersion".
    const data = { Client: { ...client, APIVersion: apiVersion }, Server: server };
    const jsonData = { Client: client, Server: server };
    let text: string;
    try {
      text = format === "{{json .}}" ? tmpl.execute(goTyped(jsonData)) : tmpl.execute(goTyped(data));
    } catch (e) {
      throw new StatusError(1, (e as Error).message);
    }
    const tw = new TabWriter({ minWidth: 20, tabWidth: 1, padding: 1, padChar: " " });
    tw.write(`${text}\n`);
    await cli.write(tw.flush());
    if (error !== undefined) throw error;
    return 0;
  },
};

function decodeSecurityOptions(opts: string[]): { name: string; profile?: string }[] {
  return opts.map((o) => {
    const fields = Object.fromEntries(
      o.split(",").map((kv) => {
        const i = kv.indexOf("=");
        return i < 0 ? [kv, ""] : [kv.slice(0, i), kv.slice(i + 1)];
      }),
    ) as Record<string, string>;
    const r: { name: string; profile?: string } = { name: fields.name ?? o };
    if (fields.profile !== undefined) r.profile = fields.profile;
    return r;
  });
}

/** The `berth info` text for a daemon's /info answer (docker's prettyPrintServerInfo). */
export function formatServerInfo(info: SystemInfo, options: { debug: boolean; username?: string }): { out: string; warnings: string[] } {
  const lines: string[] = [];
  const p = (...a: unknown[]) => lines.push(a.map((x) => (x === undefined || x === null ? "" : String(x))).join(" "));
  const nonEmpty = (label: string, v: unknown) => {
    if (v !== undefined && v !== null && v !== "") p(label, v);
  };
  p(" Containers:", info.Containers);
  p("  Running:", info.ContainersRunning);
  p("  Paused:", info.ContainersPaused);
  p("  Stopped:", info.ContainersStopped);
  p(" Images:", info.Images);
  nonEmpty(" Server Version:", info.ServerVersion);
  nonEmpty(" Storage Driver:", info.Driver);
  for (const [k, v] of info.DriverStatus ?? []) lines.push(`  ${k}: ${v}`);
  nonEmpty(" Logging Driver:", info.LoggingDriver);
  nonEmpty(" Cgroup Driver:", info.CgroupDriver);
  nonEmpty(" Cgroup Version:", info.CgroupVersion);
  p(" Plugins:");
  p("  Volume:", (info.Plugins?.Volume ?? []).join(" "));
  p("  Network:", (info.Plugins?.Network ?? []).join(" "));
  if ((info.Plugins?.Authorization ?? []).length) p("  Authorization:", (info.Plugins?.Authorization ?? []).join(" "));
  p("  Log:", (info.Plugins?.Log ?? []).join(" "));
  if ((info.CDISpecDirs ?? []).length) {
    p(" CDI spec directories:");
    for (const d of info.CDISpecDirs ?? []) lines.push(`  ${d}`);
  }
  p(" Swarm:", info.Swarm?.LocalNodeState ?? "inactive");
  const runtimes = Object.keys(info.Runtimes ?? {});
  if (runtimes.length) {
    p(" Runtimes:", runtimes.join(" "));
    p(" Default Runtime:", info.DefaultRuntime);
  }
  if (info.OSType === "linux") {
    p(" Init Binary:", info.InitBinary ?? "");
    p(" containerd version:", info.ContainerdCommit?.ID ?? "");
    p(" runc version:", info.RuncCommit?.ID ?? "");
    p(" init version:", info.InitCommit?.ID ?? "");
    if ((info.SecurityOptions ?? []).length) {
      p(" Security Options:");
      for (const so of decodeSecurityOptions(info.SecurityOptions ?? [])) {
        lines.push(`  ${so.name}`);
        if (so.profile !== undefined) p("   Profile:", so.profile);
      }
    }
  }
  nonEmpty(" Kernel Version:", info.KernelVersion);
  nonEmpty(" Operating System:", info.OperatingSystem);
  nonEmpty(" OSType:", info.OSType);
  nonEmpty(" Architecture:", info.Architecture);
  p(" CPUs:", info.NCPU ?? 0);
  p(" Total Memory:", bytesSize(info.MemTotal ?? 0));
  nonEmpty(" Name:", info.Name);
  nonEmpty(" ID:", info.ID);
  p(" Docker Root Dir:", info.DockerRootDir ?? "");
  p(" Debug Mode:", Boolean(info.Debug));
  if (info.Debug || options.debug) {
    p("  File Descriptors:", info.NFd ?? 0);
    p("  Goroutines:", info.NGoroutines ?? 0);
    p("  System Time:", info.SystemTime ?? "");
    p("  EventsListeners:", info.NEventsListener ?? 0);
  }
  nonEmpty(" HTTP Proxy:", info.HttpProxy);
  nonEmpty(" HTTPS Proxy:", info.HttpsProxy);
  nonEmpty(" No Proxy:", info.NoProxy);
  nonEmpty(" Username:", options.username);
  if ((info.Labels ?? []).length) {
    p(" Labels:");
    for (const l of info.Labels ?? []) lines.push(`  ${l}`);
  }
  p(" Experimental:", Boolean(info.ExperimentalBuild));
  const rc = info.RegistryConfig;
  if (rc && ((rc.InsecureRegistryCIDRs ?? []).length || Object.keys(rc.IndexConfigs ?? {}).length)) {
    p(" Insecure Registries:");
    for (const c of Object.values(rc.IndexConfigs ?? {})) if (!c.Secure) lines.push(`  ${c.Name}`);
    for (const c of rc.InsecureRegistryCIDRs ?? []) lines.push(`  ${c}`);
  }
  if (rc && (rc.Mirrors ?? []).length) {
    p(" Registry Mirrors:");
    for (const m of rc.Mirrors ?? []) lines.push(`  ${m}`);
  }
  p(" Live Restore Enabled:", Boolean(info.LiveRestoreEnabled));
  if (info.ProductLicense) p(" Product License:", info.ProductLicense);
  if ((info.DefaultAddressPools ?? []).length) {
    p(" Default Address Pools:");
    for (const pool of info.DefaultAddressPools ?? []) lines.push(`   Base: ${pool.Base}, Size: ${pool.Size}`);
  }
  lines.push("");
  return { out: `${lines.join("\n")}\n`, warnings: info.Warnings ?? [] };
}

export const infoCommand: Command = {
  name: "info",
  usage: "[OPTIONS]",
  short: "Display system-wide information",
  aliasPaths: ["system info", "info"],
  args: "none",
  flags: [{ long: "format", short: "f", kind: "string", help: INSPECT_FORMAT_HELP }],
  async run(cli, { flags }) {
    const format = flags.string("format");
    const clientInfo = { Version: berthVersion(), Context: "default", Debug: Boolean(cli.options.debug), Plugins: [], Warnings: null };
    let info: SystemInfo | undefined;
    let connErr: unknown;
    try {
      info = await cli.client.info();
    } catch (e) {
      if (e instanceof ConnectError) connErr = e;
      else {
        if (format !== "") await cli.eprintln(describeError(e));
        else connErr = e;
      }
    }
    if (format === "") {
      await cli.println("Client: berth");
      await cli.println(` Version:    ${clientInfo.Version}`);
      await cli.println(` Context:    ${clientInfo.Context}`);
      await cli.println(` Debug Mode: ${clientInfo.Debug}`);
      await cli.println();
      await cli.println("Server:");
      if (info) {
        let username: string | undefined;
        try {
          username = (await cli.configFile().get("https://index.docker.io/v1/")).username;
        } catch {
          username = undefined;
        }
        const r = formatServerInfo(
          info,
          username ? { debug: Boolean(cli.options.debug), username } : { debug: Boolean(cli.options.debug) },
        );
        await cli.write(r.out);
        for (const w of r.warnings) await cli.eprintln(w);
      }
      if (connErr !== undefined) {
        await cli.eprintln(`ERROR: ${describeError(connErr)}`);
        throw new StatusError(1, "errors pretty printing info");
      }
      return 0;
    }
    const data = { ...(info ?? {}), ClientInfo: clientInfo, ServerErrors: connErr ? [describeError(connErr)] : undefined };
    const tmpl = format === "json" ? "{{json .}}" : format;
    let text: string;
    try {
      text = compile(tmpl).execute(goTyped(data));
    } catch (e) {
      throw new StatusError(64, (e as Error).message);
    }
    await cli.println(text);
    if (connErr !== undefined) throw connErr;
    return 0;
  },
};

/** A row of the `system df` summary table. */
class DfRow {
  readonly Type: string;
  readonly TotalCount: string;
  readonly Active: string;
  readonly Size: string;
  readonly Reclaimable: string;
  constructor(type: string, total: number, active: number, size: number, reclaimable: number, totalForPercent: number | undefined) {
    this.Type = type;
    this.TotalCount = String(total);
    this.Active = String(active);
    this.Size = humanSize(size);
    this.Reclaimable =
      totalForPercent !== undefined && totalForPercent > 0
        ? `${humanSize(reclaimable)} (${Math.trunc((reclaimable * 100) / totalForPercent)}%)`
        : humanSize(reclaimable);
  }
}

/** The four summary rows of `docker system df`. */
export function diskUsageRows(du: DiskUsage): DfRow[] {
  const images: ImageSummary[] = du.Images ?? [];
  let usedImages = 0;
  for (const i of images) if (i.Containers !== 0 && i.Size !== -1 && i.SharedSize !== -1) usedImages += i.Size - i.SharedSize;
  const total = du.LayersSize ?? 0;
  const rows = [new DfRow("Images", images.length, images.filter((i) => i.Containers > 0).length, total, total - usedImages, total)];
  const containers = du.Containers ?? [];
  const active = (s: string) => s === "running" || s === "paused" || s === "restarting";
  const cSize = containers.reduce((a, c) => a + (c.SizeRw ?? 0), 0);
  const cRecl = containers.filter((c) => !active(c.State)).reduce((a, c) => a + (c.SizeRw ?? 0), 0);
  rows.push(new DfRow("Containers", containers.length, containers.filter((c) => active(c.State)).length, cSize, cRecl, cSize));
  const vols = du.Volumes ?? [];
  let vSize = 0;
  let vRecl = 0;
  for (const v of vols) {
    const u = v.UsageData ?? { Size: -1, RefCount: 0 };
    if (u.Size !== -1) {
      vSize += u.Size;
      if (u.RefCount === 0) vRecl += u.Size;
    }
  }
  rows.push(new DfRow("Local Volumes", vols.length, vols.filter((v) => (v.UsageData?.RefCount ?? 0) > 0).length, vSize, vRecl, vSize));
  const bc = du.BuildCache ?? [];
  const bSize = bc.filter((b) => !b.Shared).reduce((a, b) => a + b.Size, 0);
  const inUse = bc.filter((b) => b.InUse && !b.Shared).reduce((a, b) => a + b.Size, 0);
  rows.push(new DfRow("Build Cache", bc.length, bc.filter((b) => b.InUse).length, bSize, bSize - inUse, undefined));
  return rows;
}

export const dfCommand: Command = {
  name: "df",
  usage: "[OPTIONS]",
  short: "Show docker disk usage",
  args: "none",
  flags: [formatFlag(), { long: "verbose", short: "v", kind: "bool", help: "Show detailed information on space usage" }],
  async run(cli, { flags }) {
    const du = await cli.client.diskUsage();
    let format = flags.string("format") || "table";
    if (flags.bool("verbose") && format === "table") {
      await cli.write(verboseDiskUsage(du));
      return 0;
    }
    if (format === "table") format = "table {{.Type}}\t{{.TotalCount}}\t{{.Active}}\t{{.Size}}\t{{.Reclaimable}}";
    await cli.write(
      formatTable(format, diskUsageRows(du), {
        Type: "TYPE",
        TotalCount: "TOTAL",
        Active: "ACTIVE",
        Size: "SIZE",
        Reclaimable: "RECLAIMABLE",
      }),
    );
    return 0;
  },
};

function verboseDiskUsage(du: DiskUsage): string {
  let out = `Images space usage:\n\n`;
  const imgRows = (du.Images ?? []).map((i) => {
    const tag = (i.RepoTags ?? [])[0] ?? "<none>:<none>";
    const c = tag.lastIndexOf(":");
    return {
      Repository: c > 0 ? tag.slice(0, c) : tag,
      Tag: c > 0 ? tag.slice(c + 1) : "<none>",
      ID: i.Id.replace(/^sha256:/, "").slice(0, 12),
      CreatedSince: `${humanDurationSince(i.Created)} ago`,
      Size: humanSize(i.Size),
      SharedSize: i.SharedSize === -1 ? "N/A" : humanSize(i.SharedSize),
      UniqueSize: i.Size === -1 || i.SharedSize === -1 ? "N/A" : humanSize(i.Size - i.SharedSize),
      Containers: i.Containers === -1 ? "N/A" : String(i.Containers),
    };
  });
  out += formatTable(
    "table {{.Repository}}\t{{.Tag}}\t{{.ID}}\t{{.CreatedSince}}\t{{.Size}}\t{{.SharedSize}}\t{{.UniqueSize}}\t{{.Containers}}",
    imgRows,
    {
      Repository: "REPOSITORY",
      Tag: "TAG",
      ID: "IMAGE ID",
      CreatedSince: "CREATED",
      Size: "SIZE",
      SharedSize: "SHARED SIZE",
      UniqueSize: "UNIQUE SIZE",
      Containers: "CONTAINERS",
    },
  );
  out += `\nContainers space usage:\n\n`;
  const cRows = (du.Containers ?? []).map((c) => ({
    ID: c.Id.slice(0, 12),
    Image: c.Image,
    Command: JSON.stringify(c.Command.length > 20 ? `${c.Command.slice(0, 19)}…` : c.Command),
    LocalVolumes: String((c.Mounts ?? []).filter((m) => m.Driver === "local").length),
    Size: humanSize(c.SizeRw ?? 0),
    RunningFor: `${humanDurationSince(c.Created)} ago`,
    Status: c.Status,
    Names: (c.Names ?? []).map((n) => n.replace(/^\//, "")).join(","),
  }));
  out += formatTable(
    "table {{.ID}}\t{{.Image}}\t{{.Command}}\t{{.LocalVolumes}}\t{{.Size}}\t{{.RunningFor}}\t{{.Status}}\t{{.Names}}",
    cRows,
    {
      ID: "CONTAINER ID",
      Image: "IMAGE",
      Command: "COMMAND",
      LocalVolumes: "LOCAL VOLUMES",
      Size: "SIZE",
      RunningFor: "CREATED",
      Status: "STATUS",
      Names: "NAMES",
    },
  );
  out += `\nLocal Volumes space usage:\n\n`;
  const vRows = (du.Volumes ?? []).map((v) => ({
    Name: v.Name,
    Links: String(v.UsageData?.RefCount ?? 0),
    Size: (v.UsageData?.Size ?? -1) === -1 ? "N/A" : humanSize(v.UsageData?.Size ?? 0),
  }));
  out += formatTable("table {{.Name}}\t{{.Links}}\t{{.Size}}", vRows, { Name: "VOLUME NAME", Links: "LINKS", Size: "SIZE" });
  out += `\nBuild cache usage: ${humanSize((du.BuildCache ?? []).filter((b) => !b.Shared).reduce((a, b) => a + b.Size, 0))}\n\n`;
  const bRows = (du.BuildCache ?? []).map((b) => ({
    ID: b.ID.slice(0, 12),
    CacheType: b.Type,
    Size: humanSize(b.Size),
    CreatedSince: `${humanDurationSince(Date.parse(b.CreatedAt) / 1000)} ago`,
    LastUsedSince: b.LastUsedAt ? `${humanDurationSince(Date.parse(b.LastUsedAt) / 1000)} ago` : "",
    UsageCount: String(b.UsageCount),
    Shared: String(b.Shared),
  }));
  out += formatTable(
    "table {{.ID}}\t{{.CacheType}}\t{{.Size}}\t{{.CreatedSince}}\t{{.LastUsedSince}}\t{{.UsageCount}}\t{{.Shared}}",
    bRows,
    {
      ID: "CACHE ID",
      CacheType: "CACHE TYPE",
      Size: "SIZE",
      CreatedSince: "CREATED",
      LastUsedSince: "LAST USED",
      UsageCount: "USAGE",
      Shared: "SHARED",
    },
  );
  return out;
}

function humanDurationSince(unixSeconds: number): string {
  return humanDuration(Date.now() - unixSeconds * 1000);
}

/**
 * An event as docker's templates see it: Go field names (`.Status`, `.ID`, `.Actor.Attributes`),
 * and JSON in the struct's order with its json names (`{{json .}}`).
 */
export function goEvent(e: EventMessage): object {
  const actor = markStruct({ ID: e.Actor?.ID ?? "", Attributes: e.Actor?.Attributes ?? null }, "events.Actor");
  const o = markStruct(
    {
      Status: e.status ?? "",
      ID: e.id ?? "",
      From: e.from ?? "",
      Type: e.Type,
      Action: e.Action,
      Actor: actor,
      Scope: e.scope ?? "",
      Time: e.time,
      TimeNano: e.timeNano,
    },
    "events.Message",
  );
  const json: Record<string, unknown> = {};
  if (e.status) json.status = e.status;
  if (e.id) json.id = e.id;
  if (e.from) json.from = e.from;
  Object.assign(json, {
    Type: e.Type,
    Action: e.Action,
    Actor: markStruct({ ID: actor.ID, Attributes: actor.Attributes }),
    scope: e.scope ?? "",
    time: e.time,
    timeNano: e.timeNano,
  });
  // Struct order, not sorted map keys.
  Object.defineProperty(o, "toJSON", { value: () => markStruct(json), enumerable: false });
  return o;
}

/** The line docker prints for an event without --format. */
export function formatEvent(e: EventMessage): string {
  const nanos = e.timeNano ? BigInt(e.timeNano) : BigInt(e.time ?? 0) * 1_000_000_000n;
  let line = `${rfc3339NanoFixed(nanos)} ${e.Type} ${e.Action} ${e.Actor?.ID ?? ""}`;
  const attrs = e.Actor?.Attributes ?? {};
  const keys = Object.keys(attrs).sort();
  if (keys.length > 0) line += ` (${keys.map((k) => `${k}=${attrs[k]}`).join(", ")})`;
  return line;
}

export const eventsCommand: Command = {
  name: "events",
  usage: "[OPTIONS]",
  short: "Get real time events from the server",
  aliasPaths: ["system events", "events"],
  args: "none",
  flags: [
    filterFlag(),
    { long: "format", kind: "string", help: INSPECT_FORMAT_HELP },
    { long: "since", kind: "string", help: "Show all events created since timestamp" },
    { long: "until", kind: "string", help: "Stream events until this timestamp" },
  ],
  async run(cli, { flags }) {
    let tmpl: Template | undefined;
    const format = flags.string("format");
    if (format) {
      try {
        tmpl = compile(format === "json" ? "{{json .}}" : format);
      } catch (e) {
        throw new StatusError(64, (e as Error).message);
      }
    }
    const o: { since?: string; until?: string; filters?: Record<string, Record<string, boolean>> } = {
      filters: parseFilters(flags.list("filter")),
    };
    if (flags.string("since")) o.since = apiTimestamp(flags.string("since"));
    if (flags.string("until")) o.until = apiTimestamp(flags.string("until"));
    const events = await cli.client.events(o);
    for await (const e of events) {
      await cli.println(tmpl ? tmpl.execute(goEvent(e)) : formatEvent(e));
    }
    return 0;
  },
};
