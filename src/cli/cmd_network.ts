/** `berth network` commands. */
import { isNotFound } from "../base/mod.ts";
import type { EndpointSettings, NetworkCreateBody, NetworkResource } from "../client/mod.ts";
import { describeError, StatusError } from "./cli.ts";
import type { Command } from "./command.ts";
import { inspectAndPrint } from "./inspect.ts";
import { formatList } from "./listing.ts";
import { filterFlag, formatFlag, INSPECT_FORMAT_HELP, kvToMap, parseFilters, shortId } from "./opts.ts";
import { confirm } from "./prompt.ts";
import { goTimeString } from "./units.ts";

/** One row of `berth network ls`. */
class NetworkRow {
  readonly #n: NetworkResource;
  readonly #trunc: boolean;
  constructor(n: NetworkResource, trunc: boolean) {
    this.#n = n;
    this.#trunc = trunc;
  }
  get ID(): string {
    return this.#trunc ? shortId(this.#n.Id) : this.#n.Id;
  }
  get Name(): string {
    return this.#n.Name;
  }
  get Driver(): string {
    return this.#n.Driver;
  }
  get Scope(): string {
    return this.#n.Scope;
  }
  get IPv6(): string {
    return String(this.#n.EnableIPv6);
  }
  get IPv4(): string {
    return String(this.#n.EnableIPv4 ?? true);
  }
  get Internal(): string {
    return String(this.#n.Internal);
  }
  get Labels(): string {
    return Object.entries(this.#n.Labels ?? {})
      .map(([k, v]) => `${k}=${v}`)
      .join(",");
  }
  Label(name: string): string {
    return this.#n.Labels?.[name] ?? "";
  }
  get CreatedAt(): string {
    return goTimeString(new Date(this.#n.Created));
  }
}

const HEADERS = {
  ID: "NETWORK ID",
  Name: "NAME",
  Driver: "DRIVER",
  Scope: "SCOPE",
  IPv6: "IPV6",
  IPv4: "IPV4",
  Internal: "INTERNAL",
  Labels: "LABELS",
  CreatedAt: "CREATED AT",
};

const create: Command = {
  name: "create",
  usage: "[OPTIONS] NETWORK",
  short: "Create a network",
  args: { exact: 1 },
  flags: [
    { long: "attachable", kind: "bool", help: "Enable manual container attachment" },
    {
      long: "aux-address",
      kind: "list",
      typeName: "map",
      help: "Auxiliary IPv4 or IPv6 addresses used by Network driver",
      defaultText: "map[]",
    },
    { long: "config-from", kind: "string", help: "The network from which to copy the configuration" },
    { long: "config-only", kind: "bool", help: "Create a configuration only network" },
    { long: "driver", short: "d", kind: "string", help: "Driver to manage the Network", defaultText: '"bridge"' },
    { long: "gateway", kind: "slice", help: "IPv4 or IPv6 Gateway for the master subnet" },
    { long: "ingress", kind: "bool", help: "Create swarm routing-mesh network" },
    { long: "internal", kind: "bool", help: "Restrict external access to the network" },
    { long: "ip-range", kind: "slice", help: "Allocate container ip from a sub-range" },
    { long: "ipam-driver", kind: "string", help: "IP Address Management Driver", defaultText: '"default"' },
    { long: "ipam-opt", kind: "list", typeName: "map", help: "Set IPAM driver specific options", defaultText: "map[]" },
    { long: "ipv4", kind: "bool", help: "Enable or disable IPv4 address assignment", defaultText: "true" },
    { long: "ipv6", kind: "bool", help: "Enable or disable IPv6 address assignment" },
    { long: "label", kind: "list", help: "Set metadata on a network" },
    { long: "opt", short: "o", kind: "list", typeName: "map", help: "Set driver specific options", defaultText: "map[]" },
    { long: "scope", kind: "string", help: "Control the network's scope" },
    { long: "subnet", kind: "slice", help: "Subnet in CIDR format that represents a network segment" },
  ],
  async run(cli, { flags, args }) {
    const subnets = flags.list("subnet");
    const gateways = flags.list("gateway");
    const ranges = flags.list("ip-range");
    if (gateways.length > subnets.length) throw new StatusError(1, "every ip-range or gateway must have a corresponding subnet");
    if (ranges.length > subnets.length) throw new StatusError(1, "every ip-range or gateway must have a corresponding subnet");
    const aux = kvToMap(flags.list("aux-address"));
    const config = subnets.map((s, i) => {
      const c: { Subnet: string; Gateway?: string; IPRange?: string; AuxiliaryAddresses?: Record<string, string> } = { Subnet: s };
      if (gateways[i]) c.Gateway = gateways[i];
      if (ranges[i]) c.IPRange = ranges[i];
      if (Object.keys(aux).length && i === 0) c.AuxiliaryAddresses = aux;
      return c;
    });
    const body: NetworkCreateBody = {
      Name: args[0] as string,
      Driver: flags.string("driver") || "bridge",
      Internal: flags.bool("internal"),
      Attachable: flags.bool("attachable"),
      Ingress: flags.bool("ingress"),
      EnableIPv6: flags.bool("ipv6"),
      IPAM: { Driver: flags.string("ipam-driver") || "default", Config: config, Options: kvToMap(flags.list("ipam-opt")) },
      Options: kvToMap(flags.list("opt")),
      Labels: kvToMap(flags.list("label")),
    };
    if (flags.has("ipv4")) body.EnableIPv4 = flags.bool("ipv4");
    if (flags.string("scope")) body.Scope = flags.string("scope");
    if (flags.bool("config-only")) body.ConfigOnly = true;
    if (flags.string("config-from")) body.ConfigFrom = { Network: flags.string("config-from") };
    const r = await cli.client.networkCreate(body);
    if (r.Warning) await cli.eprintln(`WARNING: ${r.Warning}`);
    await cli.println(r.Id);
    return 0;
  },
};

const ls: Command = {
  name: "ls",
  aliases: ["list"],
  usage: "[OPTIONS]",
  short: "List networks",
  aliasPaths: ["network ls", "network list"],
  args: "none",
  flags: [
    filterFlag('Provide filter values (e.g. "driver=bridge")'),
    formatFlag(),
    { long: "no-trunc", kind: "bool", help: "Do not truncate the output" },
    { long: "quiet", short: "q", kind: "bool", help: "Only display network IDs" },
  ],
  async run(cli, { flags }) {
    const list = await cli.client.networkList({ filters: parseFilters(flags.list("filter")) });
    list.sort((a, b) => (a.Name < b.Name ? -1 : a.Name > b.Name ? 1 : 0));
    let format = flags.string("format") || cli.configFile().data.networksFormat?.toString() || "table";
    if (format === "table") format = flags.bool("quiet") ? "{{.ID}}" : "table {{.ID}}\t{{.Name}}\t{{.Driver}}\t{{.Scope}}";
    else if (flags.bool("quiet")) format = "{{.ID}}";
    await cli.write(
      formatList(
        format,
        list.map((n) => new NetworkRow(n, !flags.bool("no-trunc"))),
        HEADERS,
      ),
    );
    return 0;
  },
};

const rm: Command = {
  name: "rm",
  aliases: ["remove"],
  usage: "NETWORK [NETWORK...]",
  short: "Remove one or more networks",
  aliasPaths: ["network rm", "network remove"],
  args: { min: 1 },
  flags: [{ long: "force", short: "f", kind: "bool", help: "Do not error if the network does not exist" }],
  async run(cli, { flags, args }) {
    let failed = false;
    for (const n of args) {
      try {
        await cli.client.networkRemove(n);
        await cli.println(n);
      } catch (e) {
        if (flags.bool("force") && isNotFound(e)) continue;
        await cli.eprintln(describeError(e));
        failed = true;
      }
    }
    if (failed) throw new StatusError(1, "");
    return 0;
  },
};

const inspect: Command = {
  name: "inspect",
  usage: "[OPTIONS] NETWORK [NETWORK...]",
  short: "Display detailed information on one or more networks",
  args: { min: 1 },
  flags: [
    { long: "format", short: "f", kind: "string", help: INSPECT_FORMAT_HELP },
    { long: "verbose", short: "v", kind: "bool", help: "Verbose output for diagnostics" },
  ],
  async run(cli, { flags, args }) {
    await inspectAndPrint(cli, args, flags.string("format"), (ref) => cli.client.inspectRaw("network", ref));
    return 0;
  },
};

const connect: Command = {
  name: "connect",
  usage: "[OPTIONS] NETWORK CONTAINER",
  short: "Connect a container to a network",
  args: { exact: 2 },
  flags: [
    { long: "alias", kind: "slice", help: "Add network-scoped alias for the container" },
    { long: "driver-opt", kind: "slice", help: "driver options for the network" },
    { long: "gw-priority", kind: "int", help: "Highest gw-priority provides the default gateway. Accepts positive and negative values." },
    { long: "ip", kind: "string", help: 'IPv4 address (e.g., "172.30.100.104")' },
    { long: "ip6", kind: "string", help: 'IPv6 address (e.g., "2001:db8::33")' },
    { long: "link", kind: "list", help: "Add link to another container" },
    { long: "link-local-ip", kind: "slice", help: "Add a link-local address for the container" },
  ],
  async run(cli, { flags, args }) {
    const ep: EndpointSettings = {
      IPAMConfig: { IPv4Address: flags.string("ip"), IPv6Address: flags.string("ip6"), LinkLocalIPs: flags.list("link-local-ip") },
      Links: flags.list("link"),
      Aliases: flags.list("alias"),
      DriverOpts: kvToMap(flags.list("driver-opt")),
    };
    await cli.client.networkConnect(args[0] as string, args[1] as string, ep);
    return 0;
  },
};

const disconnect: Command = {
  name: "disconnect",
  usage: "[OPTIONS] NETWORK CONTAINER",
  short: "Disconnect a container from a network",
  args: { exact: 2 },
  flags: [{ long: "force", short: "f", kind: "bool", help: "Force the container to disconnect from a network" }],
  async run(cli, { flags, args }) {
    await cli.client.networkDisconnect(args[0] as string, args[1] as string, flags.bool("force"));
    return 0;
  },
};

const prune: Command = {
  name: "prune",
  usage: "[OPTIONS]",
  short: "Remove all unused networks",
  args: "none",
  flags: [
    filterFlag('Provide filter values (e.g. "until=<timestamp>")', null),
    { long: "force", short: "f", kind: "bool", help: "Do not prompt for confirmation" },
  ],
  async run(cli, { flags }) {
    if (
      !flags.bool("force") &&
      !(await confirm(
        cli,
        "WARNING! This will remove all custom networks not used by at least one container.\nAre you sure you want to continue?",
      ))
    ) {
      throw new StatusError(1, "");
    }
    const r = await cli.client.networksPrune(parseFilters(flags.list("filter")));
    if ((r.NetworksDeleted ?? []).length > 0) await cli.println(`Deleted Networks:\n${(r.NetworksDeleted ?? []).join("\n")}\n`);
    return 0;
  },
};

/** `berth network`. */
export const networkGroup: Command = {
  name: "network",
  usage: "COMMAND",
  short: "Manage networks",
  subcommands: [connect, create, disconnect, inspect, ls, prune, rm],
};
