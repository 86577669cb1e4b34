/**
 * The compose subcommands: flags to options, then the engine operations. Output follows
 * Compose v2 (tables, ` Container x  Started` progress on stderr, prefixed attached output).
 */
import { isNotFound, messageOf } from "../base/mod.ts";
import type { ContainerSummary } from "../client/mod.ts";
import { buildService } from "./build.ts";
import type { ComposeCommand, Context } from "./cli.ts";
import { renderConfig } from "./config.ts";
import { createBody, serviceImage } from "./convert.ts";
import {
  checkExternals,
  ComposeError,
  connectExtraNetworks,
  converge,
  dependencyLevels,
  ensureImages,
  ensureNetworks,
  ensureVolumes,
  injectFileObjects,
  nameOf,
  newSlug,
  numberOf,
  projectContainers,
  pullImage,
  removeContainer,
  removeStopped,
  stopContainer,
  type Session,
  serviceOf,
  startOrder,
  startServices,
  waitCondition,
  withDependencies,
} from "./engine.ts";
import type { FlagDef, Flags } from "./flags.ts";
import { pumpStreams } from "./interactive.ts";
import { COMPOSE_VERSION, CONFIG_FILES_LABEL, NETWORK_LABEL, PROJECT_LABEL, serviceHash, VOLUME_LABEL } from "./labels.ts";
import { LogPrinter, pipeLogs } from "./logs.ts";
import type { Project, Service } from "./model.ts";
import { ellipsis, formatPorts, humanDuration, table } from "./table.ts";

const b = (long: string, help: string, short?: string): FlagDef =>
  short ? { long, short, kind: "bool", help } : { long, kind: "bool", help };
const s = (long: string, help: string, short?: string): FlagDef =>
  short ? { long, short, kind: "string", help } : { long, kind: "string", help };
const l = (long: string, help: string, short?: string): FlagDef =>
  short ? { long, short, kind: "list", help } : { long, kind: "list", help };
const n = (long: string, help: string, short?: string): FlagDef =>
  short ? { long, short, kind: "int", help } : { long, kind: "int", help };

function timeoutOf(flags: Flags): number | undefined {
  return flags.int("timeout");
}

function scaleOf(flags: Flags): Record<string, number> {
  const out: Record<string, number> = {};
  for (const v of flags.list("scale")) {
    const m = /^([^=]+)=(\d+)$/.exec(v);
    if (!m) throw new ComposeError(`invalid --scale value "${v}": expected SERVICE=NUM`);
    out[m[1] as string] = Number(m[2]);
  }
  return out;
}

/** Orphans: containers of the project whose service is not in the model. */
async function handleOrphans(ctx: Context, session: Session, project: Project, remove: boolean, timeout?: number): Promise<void> {
  const all = await projectContainers(ctx.client, project.name, { all: true });
  const known = new Set([...Object.keys(project.services), ...Object.keys(project.disabledServices)]);
  const orphans = all.filter((c) => !known.has(serviceOf(c)));
  if (orphans.length === 0) return;
  if (remove) {
    for (const c of orphans) await removeContainer(session, c, { timeout });
  } else {
    ctx.err(
      `WARN[0000] Found orphan containers ([${orphans.map(nameOf).join(" ")}]) for this project. If you removed or renamed this service in your compose file, you can run this command with the --remove-orphans flag to clean it up.\n`,
    );
  }
}

function builderFor(session: Session, project: Project, flags?: Flags) {
  return (svc: string) => buildService(session, project, svc, { noCache: flags?.bool("no-cache") ?? false, pull: false });
}

// --- up / create -------------------------------------------------------------------------

const upFlags: FlagDef[] = [
  b("detach", "Detached mode: Run containers in the background", "d"),
  b("build", "Build images before starting containers"),
  b("no-build", "Don't build an image, even if it's policy"),
  b("force-recreate", "Recreate containers even if their configuration and image haven't changed"),
  b("no-recreate", "If containers already exist, don't recreate them. Incompatible with --force-recreate."),
  b("remove-orphans", "Remove containers for services not defined in the Compose file"),
  l("scale", "Scale SERVICE to NUM instances. Overrides the `scale` setting in the Compose file if present."),
  b("wait", "Wait for services to be running|healthy. Implies detached mode."),
  n("wait-timeout", "Maximum duration in seconds to wait for the project to be running|healthy"),
  b("abort-on-container-exit", "Stops all containers if any container was stopped. Incompatible with -d"),
  b("abort-on-container-failure", "Stops all containers if any container exited with failure. Incompatible with -d"),
  s("exit-code-from", "Return the exit code of the selected service container. Implies --abort-on-container-exit"),
  b("no-deps", "Don't start linked services"),
  b("no-start", "Don't start the services after creating them"),
  s("pull", 'Pull image before running ("always"|"missing"|"never")'),
  b("quiet-pull", "Pull without printing progress information"),
  n("timeout", "Use this timeout in seconds for container shutdown when attached or when containers are already running", "t"),
  b("no-color", "Produce monochrome output"),
  b("no-log-prefix", "Don't print prefix in logs"),
  b("timestamps", "Show timestamps"),
  l("attach", "Restrict attaching to the specified services. Incompatible with --attach-dependencies."),
  l("no-attach", "Do not attach (stream logs) to the specified services"),
  b("attach-dependencies", "Automatically attach to log output of dependent services"),
  b("always-recreate-deps", "Recreate dependent containers. Incompatible with --no-recreate."),
  b("renew-anon-volumes", "Recreate anonymous volumes instead of retrieving data from the previous containers", "V"),
  b("menu", "Enable interactive shortcuts when running attached.", undefined),
  b("yes", 'Assume "yes" as answer to all prompts and run non-interactively', "y"),
];

async function prepare(ctx: Context, flags: Flags, args: string[], options: { noDeps?: boolean } = {}) {
  const project = await ctx.project(args);
  const selected = withDependencies(project, args, options.noDeps ?? flags.bool("no-deps"));
  const session = ctx.session();
  // Everything that can be checked is checked before anything is created.
  await checkExternals(session, project, selected);
  for (const [svc, count] of Object.entries(scaleOf(flags))) {
    if (!project.services[svc]) throw new ComposeError(`no such service: ${svc}`);
    const sv = project.services[svc] as Service;
    if (count > 1 && sv.container_name) throw new ComposeError(`service "${svc}" has container_name set and cannot be scaled to ${count}`);
  }
  return { project, selected, session };
}

async function createProject(ctx: Context, flags: Flags, args: string[]) {
  if (flags.bool("force-recreate") && flags.bool("no-recreate"))
    throw new ComposeError("--force-recreate and --no-recreate are incompatible");
  if (flags.bool("build") && flags.bool("no-build")) throw new ComposeError("--build and --no-build are incompatible");
  const { project, selected, session } = await prepare(ctx, flags, args);
  await handleOrphans(ctx, session, project, flags.bool("remove-orphans"), timeoutOf(flags));
  await ensureNetworks(session, project, selected);
  await ensureVolumes(session, project, selected);
  const imgOpts: Parameters<typeof ensureImages>[3] = {
    build: flags.bool("build"),
    noBuild: flags.bool("no-build"),
    builder: builderFor(session, project),
    quietPull: flags.bool("quiet-pull"),
  };
  const pull = flags.string("pull");
  if (pull) imgOpts.pull = pull;
  const images = await ensureImages(session, project, selected, imgOpts);
  const convergeOpts: Parameters<typeof converge>[3] = {
    forceRecreate: flags.bool("force-recreate"),
    noRecreate: flags.bool("no-recreate"),
    scale: scaleOf(flags),
    images,
  };
  const t = timeoutOf(flags);
  if (t !== undefined) convergeOpts.timeout = t;
  const result = await converge(session, project, selected, convergeOpts);
  return { project, selected, session, result };
}

const upCommand: ComposeCommand = {
  name: "up",
  usage: "[OPTIONS] [SERVICE...]",
  short: "Create and start containers",
  flags: upFlags,
  async run(ctx, flags, args) {
    const exitFrom = flags.string("exit-code-from");
    const abortOnExit = flags.bool("abort-on-container-exit") || exitFrom !== undefined;
    const abortOnFailure = flags.bool("abort-on-container-failure");
    const detach = flags.bool("detach") || flags.bool("wait");
    if (detach && (abortOnExit || abortOnFailure)) throw new ComposeError("--abort-on-container-exit and --detach are incompatible");
    const { project, selected, session, result } = await createProject(ctx, flags, args);
    if (exitFrom !== undefined && !project.services[exitFrom]) throw new ComposeError(`no such service: ${exitFrom}`);
    if (flags.bool("no-start")) return 0;
    const containersOf = async (svc: string) =>
      result.get(svc)?.containers.map((c) => c.id) ??
      (await projectContainers(ctx.client, project.name, { services: [svc] })).map((c) => c.Id);

    if (detach) {
      await startServices(session, project, selected, containersOf);
      if (flags.bool("wait")) {
        const timeout = flags.int("wait-timeout");
        const waitOpts: { timeoutMs?: number } = {};
        if (timeout !== undefined && timeout > 0) waitOpts.timeoutMs = timeout * 1000;
        for (const svc of startOrder(project, selected)) {
          const ids = await containersOf(svc);
          // One-shot services that depend-on conditions wait for are allowed to have exited.
          const completes = Object.values(project.services).some(
            (x) => x.depends_on?.[svc]?.condition === "service_completed_successfully",
          );
          await waitCondition(session, svc, completes ? "service_completed_successfully" : "running", ids, waitOpts);
        }
      }
      return 0;
    }

    // Attached: follow the output of the selected services until they all exit.
    const printer = new LogPrinter(ctx.io.stdout, { color: ctx.color && !flags.bool("no-color"), prefix: !flags.bool("no-log-prefix") });
    const attachTo = new Set(
      flags.list("attach").length ? flags.list("attach") : flags.bool("attach-dependencies") || args.length === 0 ? selected : args,
    );
    for (const x of flags.list("no-attach")) attachTo.delete(x);
    for (const svc of selected) for (const c of result.get(svc)?.containers ?? []) if (attachTo.has(svc)) printer.register(c.name);
    const followers: Promise<{ name: string; service: string; code: number }>[] = [];
    // `halt` asks for the containers to be stopped; `stopAll` ends the following of their output.
    const halt = new AbortController();
    const stopAll = new AbortController();
    const follow = (id: string, svc: string, since?: string) => {
      followers.push(
        (async () => {
          const info = await ctx.client.containerInspect(id);
          const name = info.Name.replace(/^\//, "");
          const o: Parameters<typeof pipeLogs>[3] = { follow: true, timestamps: flags.bool("timestamps"), signal: stopAll.signal };
          if (since !== undefined) o.since = since;
          await pipeLogs(ctx.client, { id, name, tty: info.Config.Tty === true }, printer, o);
          if (stopAll.signal.aborted) return { name, service: svc, code: 0 };
          // The log stream ends when the container stops; wait for its final state.
          let code = 0;
          try {
            const w = await ctx.client.containerWait(id, "not-running");
            code = (await w.result).StatusCode;
          } catch {
            code = (await ctx.client.containerInspect(id).catch(() => undefined))?.State.ExitCode ?? 0;
          }
          if (!stopAll.signal.aborted) printer.event(name, `${name} exited with code ${code}`);
          return { name, service: svc, code };
        })(),
      );
    };
    const startedHere = new Set<string>();
    let interrupted = false;
    const onSigint = () => {
      if (interrupted) {
        stopAll.abort();
        return;
      }
      interrupted = true;
      ctx.err("Gracefully stopping... (press Ctrl+C again to force)\n");
      halt.abort();
    };
    process.on("SIGINT", onSigint);
    try {
      await startServices(session, project, selected, containersOf, {
        onStarted: (id, svc) => {
          startedHere.add(id);
          if (attachTo.has(svc)) follow(id, svc);
        },
      });
      // Containers that were running already: their new output only.
      const now = String(Math.floor(Date.now() / 1000));
      for (const svc of selected) {
        if (!attachTo.has(svc)) continue;
        for (const id of await containersOf(svc)) if (!startedHere.has(id)) follow(id, svc, now);
      }
      let exitCode = 0;
      const pending = new Set(followers.map((_, i) => i));
      const wrapped = followers.map((p, i) => p.then((r) => ({ r, i })));
      const halted = new Promise<undefined>((resolve) => halt.signal.addEventListener("abort", () => resolve(undefined), { once: true }));
      while (pending.size > 0 && !halt.signal.aborted) {
        const next = await Promise.race([halted, ...wrapped.filter((_, j) => pending.has(j))]);
        if (next === undefined) break;
        const { r, i } = next;
        pending.delete(i);
        if (exitFrom !== undefined && r.service === exitFrom) exitCode = r.code;
        if ((abortOnExit || (abortOnFailure && r.code !== 0)) && !halt.signal.aborted) {
          if (exitFrom === undefined) exitCode = r.code;
          ctx.err("Aborting on container exit...\n");
          halt.abort();
        }
      }
      if (halt.signal.aborted) {
        const t = timeoutOf(flags);
        const running = (await projectContainers(ctx.client, project.name, { services: selected })).filter((c) => c.State === "running");
        await Promise.all(
          running.map(async (c) => {
            session.progress("Container", nameOf(c), "Stopping");
            await ctx.client.containerStop(c.Id, t !== undefined ? { timeout: t } : {}).catch(() => undefined);
            session.progress("Container", nameOf(c), "Stopped");
          }),
        );
        // Let the followers print the last lines and exit statuses, then stop following.
        await Promise.race([Promise.allSettled(followers), new Promise((r) => setTimeout(r, 2000))]);
        stopAll.abort();
        if (exitFrom !== undefined) {
          const c = (await projectContainers(ctx.client, project.name, { services: [exitFrom] }))[0];
          if (c) exitCode = (await ctx.client.containerInspect(c.Id)).State.ExitCode;
        }
        if (interrupted) return 130;
      }
      return exitCode;
    } finally {
      process.off("SIGINT", onSigint);
    }
  },
};

const createCommand: ComposeCommand = {
  name: "create",
  usage: "[OPTIONS] [SERVICE...]",
  short: "Creates containers for a service",
  flags: upFlags.filter((f) =>
    ["build", "no-build", "force-recreate", "no-recreate", "remove-orphans", "scale", "pull", "quiet-pull", "yes"].includes(f.long),
  ),
  async run(ctx, flags, args) {
    await createProject(ctx, flags, args);
    return 0;
  },
};

// --- down ----------------------------------------------------------------------------------

const downCommand: ComposeCommand = {
  name: "down",
  usage: "[OPTIONS] [SERVICES]",
  short: "Stop and remove containers, networks",
  flags: [
    b(
      "volumes",
      'Remove named volumes declared in the "volumes" section of the Compose file and anonymous volumes attached to containers',
      "v",
    ),
    s("rmi", 'Remove images used by services. "local" remove only images that don\'t have a custom tag ("local"|"all")'),
    b("remove-orphans", "Remove containers for services not defined in the Compose file"),
    n("timeout", "Specify a shutdown timeout in seconds", "t"),
  ],
  async run(ctx, flags, args) {
    const rmi = flags.string("rmi");
    if (rmi !== undefined && rmi !== "local" && rmi !== "all") throw new ComposeError(`invalid --rmi option "${rmi}"`);
    const { project, name } = await ctx.projectOrName();
    const session = ctx.session();
    const t = timeoutOf(flags);
    const all = await projectContainers(ctx.client, name, { all: true, oneoff: true });
    const known = project ? new Set([...Object.keys(project.services), ...Object.keys(project.disabledServices)]) : undefined;
    const targets = all.filter((c) => {
      if (args.length && !args.includes(serviceOf(c))) return false;
      if (!known || known.has(serviceOf(c))) return true;
      return flags.bool("remove-orphans");
    });
    if (known && !flags.bool("remove-orphans")) {
      const orphans = all.filter((c) => !known.has(serviceOf(c)));
      if (orphans.length) {
        ctx.err(
          `WARN[0000] Found orphan containers ([${orphans.map(nameOf).join(" ")}]) for this project. If you removed or renamed this service in your compose file, you can run this command with the --remove-orphans flag to clean it up.\n`,
        );
      }
    }
    // Anonymous volumes, including those carried over from replaced containers: removed with -v.
    const anonymous = new Set<string>();
    if (flags.bool("volumes")) {
      for (const c of targets) {
        for (const m of c.Mounts ?? []) if (m.Type === "volume" && m.Name && /^[0-9a-f]{64}$/.test(m.Name)) anonymous.add(m.Name);
      }
    }
    // Stop and remove in reverse dependency order, each level in parallel.
    const levels = project ? dependencyLevels(project, Object.keys(project.services)).reverse() : [];
    const rank = (c: ContainerSummary) => {
      const i = levels.findIndex((g) => g.includes(serviceOf(c)));
      return i < 0 ? -1 : i;
    };
    // Only stopping must follow the dependency order: each removal starts as soon as its container
    // stopped, without holding up the next level.
    const removals: Promise<void>[] = [];
    for (const k of [...new Set(targets.map(rank))].sort((a, z) => a - z)) {
      await Promise.all(
        targets
          .filter((c) => rank(c) === k)
          .map(async (c) => {
            await stopContainer(session, c, { timeout: t });
            removals.push(removeStopped(session, c, { volumes: flags.bool("volumes") }));
          }),
      );
    }
    await Promise.all(removals);
    for (const v of anonymous) await ctx.client.volumeRemove(v).catch(() => undefined);
    if (args.length > 0) return 0;
    // Networks of the model (or labelled with the project when there is no model).
    const networkNames = new Set<string>();
    if (project) for (const nw of Object.values(project.networks)) if (!nw.external) networkNames.add(nw.name);
    try {
      for (const nw of await ctx.client.networkList({ filters: { label: { [`${PROJECT_LABEL}=${name}`]: true } } })) {
        if (nw.Labels?.[PROJECT_LABEL] === name && nw.Labels?.[NETWORK_LABEL] !== undefined) networkNames.add(nw.Name);
      }
    } catch (e) {
      if (!isNotFound(e)) throw e;
    }
    for (const nw of [...networkNames].sort()) {
      try {
        const info = await ctx.client.networkInspect(nw);
        if (info.Labels?.[PROJECT_LABEL] !== undefined && info.Labels[PROJECT_LABEL] !== name) continue;
      } catch (e) {
        if (isNotFound(e)) continue;
        throw e;
      }
      session.progress("Network", nw, "Removing");
      try {
        await ctx.client.networkRemove(nw);
        session.progress("Network", nw, "Removed");
      } catch (e) {
        if (!isNotFound(e)) ctx.err(`Network ${nw}  Error: ${messageOf(e)}\n`);
      }
    }
    if (flags.bool("volumes")) {
      const volumeNames = new Set<string>();
      if (project) {
        for (const v of Object.values(project.volumes)) if (!v.external) volumeNames.add(v.name);
      } else {
        const list = await ctx.client.volumeList({ filters: { label: { [`${PROJECT_LABEL}=${name}`]: true } } });
        for (const v of list.Volumes ?? []) {
          if (v.Labels?.[PROJECT_LABEL] === name && v.Labels?.[VOLUME_LABEL] !== undefined) volumeNames.add(v.Name);
        }
      }
      for (const v of [...volumeNames].sort()) {
        try {
          const info = await ctx.client.volumeInspect(v);
          if (info.Labels?.[PROJECT_LABEL] !== undefined && info.Labels[PROJECT_LABEL] !== name) continue;
        } catch (e) {
          if (isNotFound(e)) continue;
          throw e;
        }
        session.progress("Volume", v, "Removing");
        try {
          await ctx.client.volumeRemove(v);
          session.progress("Volume", v, "Removed");
        } catch (e) {
          if (!isNotFound(e)) ctx.err(`Volume ${v}  Error: ${messageOf(e)}\n`);
        }
      }
    }
    if (rmi !== undefined && project) {
      const images = new Set<string>();
      for (const [svc, sv] of Object.entries(project.services)) {
        if (rmi === "all" || (rmi === "local" && sv.image === undefined)) images.add(serviceImage(project, svc, sv));
      }
      for (const img of [...images].sort()) {
        session.progress("Image", img, "Removing");
        try {
          await ctx.client.imageRemove(img);
          session.progress("Image", img, "Removed");
        } catch (e) {
          if (!isNotFound(e)) ctx.err(`Image ${img}  Error: ${messageOf(e)}\n`);
        }
      }
    }
    return 0;
  },
};

// --- ps / ls / images / top / port ---------------------------------------------------------

function commandText(c: ContainerSummary): string {
  return `"${ellipsis(c.Command ?? "", 20)}"`;
}

function psRow(c: ContainerSummary, project: string) {
  const labels = c.Labels ?? {};
  const health = /\((healthy|unhealthy|health: starting)\)/.exec(c.Status ?? "")?.[1]?.replace("health: ", "") ?? "";
  const exit = /^Exited \((\d+)\)/.exec(c.Status ?? "");
  return {
    ID: c.Id,
    Name: nameOf(c),
    Names: nameOf(c),
    Image: c.Image,
    Command: `"${c.Command}"`,
    Project: project,
    Service: serviceOf(c),
    Created: c.Created,
    State: c.State,
    Status: c.Status,
    Health: health,
    ExitCode: exit ? Number(exit[1]) : 0,
    Publishers: (c.Ports ?? []).map((p) => ({
      URL: p.IP ?? "",
      TargetPort: p.PrivatePort,
      PublishedPort: p.PublicPort ?? 0,
      Protocol: p.Type,
    })),
    Labels: Object.entries(labels)
      .map(([k, v]) => `${k}=${v}`)
      .sort()
      .join(","),
    LocalVolumes: String((c.Mounts ?? []).filter((m) => m.Type === "volume").length),
    Mounts: (c.Mounts ?? []).map((m) => m.Name ?? m.Source).join(","),
    Networks: Object.keys(c.NetworkSettings?.Networks ?? {}).join(","),
    Ports: formatPorts(c.Ports),
    RunningFor: `${humanDuration(Date.now() - c.Created * 1000)} ago`,
    Size: "0B",
  };
}

const psCommand: ComposeCommand = {
  name: "ps",
  usage: "[OPTIONS] [SERVICE...]",
  short: "List containers",
  flags: [
    b("all", "Show all stopped containers (including those created by the run command)", "a"),
    b("quiet", "Only display IDs", "q"),
    s("format", "Format output using a custom template: 'table' (default), 'table TEMPLATE', 'json', 'TEMPLATE'"),
    b("services", "Display services"),
    l("status", "Filter services by status. Values: [paused | restarting | removing | running | dead | created | exited]"),
    l("filter", "Filter services by a property (supported filters: status)"),
    b("no-trunc", "Don't truncate output"),
    b("orphans", "Include orphaned services (not declared by project)"),
  ],
  async run(ctx, flags, args) {
    const { project, name } = await ctx.projectOrName();
    if (project)
      for (const a of args) if (!project.services[a] && !project.disabledServices[a]) throw new ComposeError(`no such service: ${a}`);
    const statuses = [
      ...flags.list("status"),
      ...flags
        .list("filter")
        .filter((f) => f.startsWith("status="))
        .map((f) => f.slice(7)),
    ];
    let list = await ctx.containers(name, { all: flags.bool("all") || statuses.length > 0, oneoff: flags.bool("all"), services: args });
    if (statuses.length) list = list.filter((c) => statuses.includes(c.State));
    if (flags.bool("services")) {
      const names =
        project && args.length === 0 && !flags.bool("all") ? [...new Set(list.map(serviceOf))] : [...new Set(list.map(serviceOf))];
      for (const x of names.sort()) ctx.out(`${x}\n`);
      return 0;
    }
    if (flags.bool("quiet")) {
      for (const c of list) ctx.out(`${c.Id}\n`);
      return 0;
    }
    const format = flags.string("format") ?? "table";
    const rows = list.map((c) => psRow(c, name));
    if (format === "json") {
      for (const r of rows) ctx.out(`${JSON.stringify(r)}\n`);
      return 0;
    }
    if (format === "table") {
      const noTrunc = flags.bool("no-trunc");
      ctx.out(
        table([
          ["NAME", "IMAGE", "COMMAND", "SERVICE", "CREATED", "STATUS", "PORTS"],
          ...list.map((c) => [
            nameOf(c),
            c.Image,
            noTrunc ? `"${c.Command}"` : commandText(c),
            serviceOf(c),
            `${humanDuration(Date.now() - c.Created * 1000)} ago`,
            c.Status,
            formatPorts(c.Ports),
          ]),
        ]),
      );
      return 0;
    }
    if (format.startsWith("table ")) {
      const tmpl = format.slice(6);
      const header = tmpl.replace(/\{\{\s*\.(\w+)\s*\}\}/g, (_m, f: string) => f.replace(/([a-z])([A-Z])/g, "$1 $2").toUpperCase());
      const lines = [header, ...rows.map((r) => ctx.format(tmpl, r))];
      ctx.out(table(lines.map((x) => x.replace(/\\t/g, "\t").split("\t"))));
      return 0;
    }
    for (const r of rows) ctx.out(`${ctx.format(format, r)}\n`);
    return 0;
  },
};

const lsCommand: ComposeCommand = {
  name: "ls",
  usage: "[OPTIONS]",
  short: "List running compose projects",
  flags: [
    b("all", "Show all stopped Compose projects", "a"),
    b("quiet", "Only display project names", "q"),
    s("format", "Format the output. Values: [table | json]"),
    l("filter", "Filter output based on conditions provided"),
  ],
  async run(ctx, flags) {
    const list = await ctx.client.containerList({ all: true, filters: { label: { [PROJECT_LABEL]: true } } });
    const projects = new Map<string, { states: Map<string, number>; files: Set<string> }>();
    for (const c of list) {
      const p = c.Labels?.[PROJECT_LABEL];
      if (!p) continue;
      const e = projects.get(p) ?? { states: new Map(), files: new Set() };
      e.states.set(c.State, (e.states.get(c.State) ?? 0) + 1);
      const f = c.Labels?.[CONFIG_FILES_LABEL];
      if (f) e.files.add(f);
      projects.set(p, e);
    }
    const nameFilter = flags
      .list("filter")
      .filter((f) => f.startsWith("name="))
      .map((f) => f.slice(5));
    const rows = [...projects.entries()]
      .filter(
        ([p, e]) => (flags.bool("all") || e.states.has("running")) && (nameFilter.length === 0 || nameFilter.some((x) => p.includes(x))),
      )
      .sort(([a], [z]) => a.localeCompare(z))
      .map(([p, e]) => ({
        Name: p,
        Status: [...e.states.entries()]
          .sort(([a], [z]) => a.localeCompare(z))
          .map(([st, k]) => `${st}(${k})`)
          .join(", "),
        ConfigFiles: [...e.files].join(","),
      }));
    if (flags.bool("quiet")) {
      for (const r of rows) ctx.out(`${r.Name}\n`);
      return 0;
    }
    const format = flags.string("format") ?? "table";
    if (format === "json") {
      ctx.out(`${JSON.stringify(rows)}\n`);
      return 0;
    }
    if (format !== "table") {
      for (const r of rows) ctx.out(`${ctx.format(format, r)}\n`);
      return 0;
    }
    ctx.out(table([["NAME", "STATUS", "CONFIG FILES"], ...rows.map((r) => [r.Name, r.Status, r.ConfigFiles])]));
    return 0;
  },
};

function formatSize(bytes: number): string {
  // docker's HumanSizeWithPrecision(size, 3) with decimal units.
  const units = ["B", "kB", "MB", "GB", "TB", "PB"];
  let i = 0;
  let v = bytes;
  while (v >= 1000 && i < units.length - 1) {
    v /= 1000;
    i++;
  }
  return `${Number(v.toPrecision(3))}${units[i]}`;
}

const imagesCommand: ComposeCommand = {
  name: "images",
  usage: "[OPTIONS] [SERVICE...]",
  short: "List images used by the created containers",
  flags: [b("quiet", "Only display IDs", "q"), s("format", "Format the output. Values: [table | json]")],
  async run(ctx, flags, args) {
    const { name } = await ctx.projectOrName();
    const list = await ctx.containers(name, { all: true, services: args });
    const rows: { ContainerName: string; Repository: string; Tag: string; ID: string; Size: number }[] = [];
    for (const c of list) {
      let size = 0;
      let id = c.ImageID;
      try {
        const info = await ctx.client.imageInspect(c.ImageID || c.Image);
        size = (info as unknown as { Size?: number }).Size ?? 0;
        id = info.Id;
      } catch {
        // Image gone: show what the container says.
      }
      const ref = c.Image;
      const at = ref.lastIndexOf(":");
      const slash = ref.lastIndexOf("/");
      const [repo, tag] = at > slash ? [ref.slice(0, at), ref.slice(at + 1)] : [ref, "latest"];
      rows.push({ ContainerName: nameOf(c), Repository: repo, Tag: tag, ID: id, Size: size });
    }
    if (flags.bool("quiet")) {
      for (const id of new Set(rows.map((r) => r.ID))) ctx.out(`${id.replace(/^sha256:/, "")}\n`);
      return 0;
    }
    if (flags.string("format") === "json") {
      ctx.out(`${JSON.stringify(rows)}\n`);
      return 0;
    }
    ctx.out(
      table([
        ["CONTAINER", "REPOSITORY", "TAG", "IMAGE ID", "SIZE"],
        ...rows.map((r) => [r.ContainerName, r.Repository, r.Tag, r.ID.replace(/^sha256:/, "").slice(0, 12), formatSize(r.Size)]),
      ]),
    );
    return 0;
  },
};

const topCommand: ComposeCommand = {
  name: "top",
  usage: "[SERVICES...]",
  short: "Display the running processes",
  flags: [],
  async run(ctx, _flags, args) {
    const { name } = await ctx.projectOrName();
    const list = await ctx.containers(name, { services: args });
    for (const c of list) {
      const top = await ctx.client.containerTop(c.Id);
      ctx.out(`${nameOf(c)}\n`);
      ctx.out(table([top.Titles, ...top.Processes]));
      ctx.out("\n");
    }
    return 0;
  },
};

const portCommand: ComposeCommand = {
  name: "port",
  usage: "[OPTIONS] SERVICE PRIVATE_PORT",
  short: "Print the public port for a port binding",
  flags: [s("protocol", "tcp or udp"), n("index", "Index of the container if service has multiple replicas")],
  async run(ctx, flags, args) {
    if (args.length !== 2) throw new ComposeError('"port" requires exactly 2 arguments: SERVICE PRIVATE_PORT');
    const [svc, port] = args as [string, string];
    const { name } = await ctx.projectOrName();
    const index = flags.int("index") ?? 1;
    const c = (await ctx.containers(name, { all: true, services: [svc] })).find((x) => numberOf(x) === index);
    if (!c) throw new ComposeError(`service "${svc}" is not running`);
    const proto = flags.string("protocol") ?? "tcp";
    const info = await ctx.client.containerInspect(c.Id);
    const bindings = info.NetworkSettings.Ports?.[`${port}/${proto}`];
    const first = bindings?.[0];
    if (!first) throw new ComposeError(`no port ${port}/${proto} for container ${nameOf(c)}`);
    ctx.out(`${first.HostIp || "0.0.0.0"}:${first.HostPort}\n`);
    return 0;
  },
};

// --- logs ----------------------------------------------------------------------------------

const logsCommand: ComposeCommand = {
  name: "logs",
  usage: "[OPTIONS] [SERVICE...]",
  short: "View output from containers",
  flags: [
    b("follow", "Follow log output", "f"),
    s("tail", "Number of lines to show from the end of the logs for each container", "n"),
    b("timestamps", "Show timestamps", "t"),
    b("no-color", "Produce monochrome output"),
    b("no-log-prefix", "Don't print prefix in logs"),
    s("since", "Show logs since timestamp (e.g. 2013-01-02T13:23:37Z) or relative (e.g. 42m for 42 minutes)"),
    s("until", "Show logs before a timestamp (e.g. 2013-01-02T13:23:37Z) or relative (e.g. 42m for 42 minutes)"),
    n("index", "index of the container if service has multiple replicas"),
  ],
  async run(ctx, flags, args) {
    const { project, name } = await ctx.projectOrName();
    if (project)
      for (const a of args) if (!project.services[a] && !project.disabledServices[a]) throw new ComposeError(`no such service: ${a}`);
    let list = await ctx.containers(name, { all: true, services: args });
    const index = flags.int("index");
    if (index !== undefined) list = list.filter((c) => numberOf(c) === index);
    const printer = new LogPrinter(ctx.io.stdout, { color: ctx.color && !flags.bool("no-color"), prefix: !flags.bool("no-log-prefix") });
    for (const c of list) printer.register(nameOf(c));
    const stop = new AbortController();
    const onSigint = () => stop.abort();
    process.once("SIGINT", onSigint);
    try {
      await Promise.all(
        list.map(async (c) => {
          const info = await ctx.client.containerInspect(c.Id);
          const o: Parameters<typeof pipeLogs>[3] = {
            follow: flags.bool("follow"),
            timestamps: flags.bool("timestamps"),
            signal: stop.signal,
          };
          const tail = flags.string("tail");
          if (tail !== undefined) o.tail = tail;
          const since = flags.string("since");
          if (since !== undefined) o.since = since;
          const until = flags.string("until");
          if (until !== undefined) o.until = until;
          await pipeLogs(ctx.client, { id: c.Id, name: nameOf(c), tty: info.Config.Tty === true }, printer, o);
        }),
      );
    } finally {
      process.off("SIGINT", onSigint);
    }
    return 0;
  },
};

// --- start / stop / restart / kill / rm / pause / unpause ----------------------------------

async function selectContainers(ctx: Context, args: string[], options: { all?: boolean } = {}) {
  const { project, name } = await ctx.projectOrName();
  if (project)
    for (const a of args) if (!project.services[a] && !project.disabledServices[a]) throw new ComposeError(`no such service: ${a}`);
  const list = await ctx.containers(name, { all: options.all ?? true, services: args });
  return { project, name, list };
}

/** Groups containers by dependency level, dependencies first (reverse for stopping). */
function ordered(project: Project | undefined, list: ContainerSummary[], reverse = false): ContainerSummary[][] {
  if (!project) return [list];
  const levels = dependencyLevels(project, Object.keys(project.services));
  const groups: ContainerSummary[][] = levels.map((g) => list.filter((c) => g.includes(serviceOf(c))));
  const rest = list.filter((c) => !levels.some((g) => g.includes(serviceOf(c))));
  const out = [rest, ...groups].filter((g) => g.length > 0);
  return reverse ? out.reverse() : out;
}

const startCommand: ComposeCommand = {
  name: "start",
  usage: "[SERVICE...]",
  short: "Start services",
  flags: [
    b("wait", "Wait for services to be running|healthy. Implies detached mode."),
    n("wait-timeout", "Maximum duration to wait for the project to be running|healthy"),
  ],
  async run(ctx, flags, args) {
    const { project, list } = await selectContainers(ctx, args);
    const session = ctx.session();
    if (project) {
      const services = args.length ? args : Object.keys(project.services);
      const have = new Set(list.map(serviceOf));
      for (const svc of services)
        if (!have.has(svc) && project.services[svc]) throw new ComposeError(`service "${svc}" has no container to start`);
      await startServices(
        session,
        project,
        services.filter((x) => have.has(x)),
        async (svc) => list.filter((c) => serviceOf(c) === svc).map((c) => c.Id),
      );
      if (flags.bool("wait")) {
        for (const svc of services)
          await waitCondition(
            session,
            svc,
            "running",
            list.filter((c) => serviceOf(c) === svc).map((c) => c.Id),
          );
      }
    } else {
      for (const c of list) {
        if (c.State === "running") continue;
        session.progress("Container", nameOf(c), "Starting");
        await ctx.client.containerStart(c.Id);
        session.progress("Container", nameOf(c), "Started");
      }
    }
    return 0;
  },
};

const stopCommand: ComposeCommand = {
  name: "stop",
  usage: "[OPTIONS] [SERVICE...]",
  short: "Stop services",
  flags: [n("timeout", "Specify a shutdown timeout in seconds", "t")],
  async run(ctx, flags, args) {
    const { project, list } = await selectContainers(ctx, args);
    const session = ctx.session();
    const t = timeoutOf(flags);
    const live = list.filter((c) => c.State === "running" || c.State === "paused" || c.State === "restarting");
    for (const group of ordered(project, live, true)) {
      await Promise.all(
        group.map(async (c) => {
          session.progress("Container", nameOf(c), "Stopping");
          await ctx.client.containerStop(c.Id, t !== undefined ? { timeout: t } : {});
          session.progress("Container", nameOf(c), "Stopped");
        }),
      );
    }
    return 0;
  },
};

const restartCommand: ComposeCommand = {
  name: "restart",
  usage: "[OPTIONS] [SERVICE...]",
  short: "Restart service containers",
  flags: [n("timeout", "Specify a shutdown timeout in seconds", "t"), b("no-deps", "Don't restart dependent services")],
  async run(ctx, flags, args) {
    const { project, list } = await selectContainers(ctx, args);
    const session = ctx.session();
    const t = timeoutOf(flags);
    for (const group of ordered(project, list)) {
      await Promise.all(
        group.map(async (c) => {
          session.progress("Container", nameOf(c), "Restarting");
          await ctx.client.containerRestart(c.Id, t !== undefined ? { timeout: t } : {});
          session.progress("Container", nameOf(c), "Started");
        }),
      );
    }
    return 0;
  },
};

const killCommand: ComposeCommand = {
  name: "kill",
  usage: "[OPTIONS] [SERVICE...]",
  short: "Force stop service containers",
  flags: [
    s("signal", "SIGNAL to send to the container", "s"),
    b("remove-orphans", "Remove containers for services not defined in the Compose file"),
  ],
  async run(ctx, flags, args) {
    const { list } = await selectContainers(ctx, args, { all: false });
    const session = ctx.session();
    if (list.length === 0) throw new ComposeError("no container to kill");
    await Promise.all(
      list.map(async (c) => {
        session.progress("Container", nameOf(c), "Killing");
        await ctx.client.containerKill(c.Id, flags.string("signal") ?? "SIGKILL");
        session.progress("Container", nameOf(c), "Killed");
      }),
    );
    return 0;
  },
};

const rmCommand: ComposeCommand = {
  name: "rm",
  usage: "[OPTIONS] [SERVICE...]",
  short: "Removes stopped service containers",
  flags: [
    b("force", "Don't ask to confirm removal", "f"),
    b("stop", "Stop the containers, if required, before removing", "s"),
    b("volumes", "Remove any anonymous volumes attached to containers", "v"),
    b("all", "Deprecated - no effect", "a"),
  ],
  async run(ctx, flags, args) {
    const { list } = await selectContainers(ctx, args);
    const session = ctx.session();
    const running = list.filter((c) => c.State === "running" || c.State === "paused" || c.State === "restarting");
    if (flags.bool("stop")) {
      for (const c of running) {
        session.progress("Container", nameOf(c), "Stopping");
        await ctx.client.containerStop(c.Id);
        session.progress("Container", nameOf(c), "Stopped");
      }
    }
    const targets = flags.bool("stop") ? list : list.filter((c) => !running.includes(c));
    if (targets.length === 0) {
      ctx.err("No stopped containers\n");
      return 0;
    }
    if (!flags.bool("force") && ctx.io.stdin.isTTY) {
      ctx.err(`Going to remove ${targets.map(nameOf).join(", ")}\n? Are you sure? (y/N) `);
      const answer = await readLine(ctx);
      if (!/^y(es)?$/i.test(answer.trim())) return 0;
    }
    for (const c of targets) {
      session.progress("Container", nameOf(c), "Removing");
      await ctx.client.containerRemove(c.Id, { force: true, volumes: flags.bool("volumes") });
      session.progress("Container", nameOf(c), "Removed");
    }
    return 0;
  },
};

async function readLine(ctx: Context): Promise<string> {
  return await new Promise((resolve) => {
    let buf = "";
    const onData = (c: Buffer | string) => {
      buf += c.toString();
      if (buf.includes("\n")) done();
    };
    const done = () => {
      ctx.io.stdin.off("data", onData);
      ctx.io.stdin.off("end", done);
      ctx.io.stdin.pause();
      resolve(buf.split("\n")[0] ?? "");
    };
    ctx.io.stdin.on("data", onData);
    ctx.io.stdin.once("end", done);
    ctx.io.stdin.resume();
  });
}

function simpleAction(
  name: string,
  short: string,
  verb: [string, string],
  call: (ctx: Context, id: string) => Promise<void>,
  state: (c: ContainerSummary) => boolean,
): ComposeCommand {
  return {
    name,
    usage: "[SERVICE...]",
    short,
    flags: [],
    async run(ctx, _flags, args) {
      const { list } = await selectContainers(ctx, args);
      const session = ctx.session();
      await Promise.all(
        list.filter(state).map(async (c) => {
          session.progress("Container", nameOf(c), verb[0]);
          await call(ctx, c.Id);
          session.progress("Container", nameOf(c), verb[1]);
        }),
      );
      return 0;
    },
  };
}

const pauseCommand = simpleAction(
  "pause",
  "Pause services",
  ["Pausing", "Paused"],
  (ctx, id) => ctx.client.containerPause(id),
  (c) => c.State === "running",
);
const unpauseCommand = simpleAction(
  "unpause",
  "Unpause services",
  ["Unpausing", "Unpaused"],
  (ctx, id) => ctx.client.containerUnpause(id),
  (c) => c.State === "paused",
);

// --- build / pull / push -------------------------------------------------------------------

const buildCommand: ComposeCommand = {
  name: "build",
  usage: "[OPTIONS] [SERVICE...]",
  short: "Build or rebuild services",
  flags: [
    b("no-cache", "Do not use cache when building the image"),
    b("pull", "Always attempt to pull a newer version of the image"),
    b("quiet", "Don't print anything to STDOUT", "q"),
    l("build-arg", "Set build-time variables for services"),
    b("with-dependencies", "Also build dependencies (transitively)"),
  ],
  async run(ctx, flags, args) {
    const project = await ctx.project(args);
    const services = flags.bool("with-dependencies") ? withDependencies(project, args) : args.length ? args : Object.keys(project.services);
    const session = ctx.session();
    const buildArgs: Record<string, string> = {};
    for (const a of flags.list("build-arg")) {
      const i = a.indexOf("=");
      if (i < 0) {
        const v = ctx.io.env[a];
        if (v !== undefined) buildArgs[a] = v;
      } else buildArgs[a.slice(0, i)] = a.slice(i + 1);
    }
    for (const svc of services.sort()) {
      if (!project.services[svc]?.build) continue;
      await buildService(session, project, svc, {
        noCache: flags.bool("no-cache"),
        pull: flags.bool("pull"),
        quiet: flags.bool("quiet"),
        args: buildArgs,
      });
    }
    return 0;
  },
};

const pullCommand: ComposeCommand = {
  name: "pull",
  usage: "[OPTIONS] [SERVICE...]",
  short: "Pull service images",
  flags: [
    b("quiet", "Pull without printing progress information", "q"),
    b("ignore-pull-failures", "Pull what it can and ignores images with pull failures"),
    b("include-deps", "Also pull services declared as dependencies"),
    s("policy", 'Apply pull policy ("missing"|"always")'),
    b("ignore-buildable", "Ignore images that can be built"),
  ],
  async run(ctx, flags, args) {
    const project = await ctx.project(args);
    const services = flags.bool("include-deps") ? withDependencies(project, args) : args.length ? args : Object.keys(project.services);
    const session = ctx.session();
    const done = new Set<string>();
    let failed = false;
    await Promise.all(
      services.sort().map(async (svc) => {
        const sv = project.services[svc];
        if (!sv) return;
        if (sv.image === undefined) return;
        if (sv.build && flags.bool("ignore-buildable")) return;
        if (flags.string("policy") === "missing" || sv.pull_policy === "never") {
          try {
            await ctx.client.imageInspect(sv.image);
            return;
          } catch {
            // Not present: pull.
          }
        }
        if (done.has(sv.image)) return;
        done.add(sv.image);
        try {
          await pullImage(session, svc, sv.image);
        } catch (e) {
          if (sv.build) {
            ctx.err(`WARN[0000] ${svc}: pull failed, the image can be built: ${messageOf(e)}\n`);
            return;
          }
          if (!flags.bool("ignore-pull-failures")) throw e;
          failed = true;
          ctx.err(`${messageOf(e)}\n`);
        }
      }),
    );
    void failed;
    return 0;
  },
};

const pushCommand: ComposeCommand = {
  name: "push",
  usage: "[OPTIONS] [SERVICE...]",
  short: "Push service images",
  flags: [
    b("ignore-push-failures", "Push what it can and ignores images with push failures"),
    b("include-deps", "Also push images of services declared as dependencies"),
    b("quiet", "Push without printing progress information", "q"),
  ],
  async run(ctx, flags, args) {
    const project = await ctx.project(args);
    const services = flags.bool("include-deps") ? withDependencies(project, args) : args.length ? args : Object.keys(project.services);
    const session = ctx.session();
    for (const svc of services.sort()) {
      const sv = project.services[svc];
      if (!sv?.build || sv.image === undefined) continue;
      session.progress("Image", sv.image, "Pushing");
      try {
        const stream = await ctx.client.imagePush(sv.image, { registryAuth: Buffer.from("{}").toString("base64") });
        for await (const m of stream) if (m.error || m.errorDetail) throw new ComposeError(`${svc}: ${m.errorDetail?.message ?? m.error}`);
        session.progress("Image", sv.image, "Pushed");
      } catch (e) {
        if (!flags.bool("ignore-push-failures")) throw e;
        ctx.err(`${messageOf(e)}\n`);
      }
    }
    return 0;
  },
};

// --- exec / run ----------------------------------------------------------------------------

function envList(ctx: Context, values: string[]): string[] {
  return values.flatMap((e) => {
    if (e.includes("=")) return [e];
    const v = ctx.io.env[e];
    return v === undefined ? [] : [`${e}=${v}`];
  });
}

const execCommand: ComposeCommand = {
  name: "exec",
  usage: "[OPTIONS] SERVICE COMMAND [ARGS...]",
  short: "Execute a command in a running container",
  stopAtFirstPositional: true,
  flags: [
    b("detach", "Detached mode: Run command in the background", "d"),
    b("no-TTY", "Disable pseudo-TTY allocation. By default `docker compose exec` allocates a TTY.", "T"),
    l("env", "Set environment variables", "e"),
    s("workdir", "Path to workdir directory for this command", "w"),
    s("user", "Run the command as this user", "u"),
    n("index", "Index of the container if service has multiple replicas"),
    b("privileged", "Give extended privileges to the process"),
    b("interactive", "Keep STDIN open even if not attached", "i"),
  ],
  async run(ctx, flags, args) {
    const [svc, ...cmd] = args;
    if (svc === undefined || cmd.length === 0) throw new ComposeError('"exec" requires at least 2 arguments: SERVICE COMMAND');
    const { project, name } = await ctx.projectOrName();
    if (project && !project.services[svc] && !project.disabledServices[svc]) throw new ComposeError(`no such service: ${svc}`);
    const index = flags.int("index") ?? 1;
    const list = await ctx.containers(name, { services: [svc] });
    const c = list.find((x) => numberOf(x) === index) ?? (flags.has("index") ? undefined : list[0]);
    if (!c) throw new ComposeError(`service "${svc}" is not running`);
    const tty = !flags.bool("no-TTY") && ctx.io.stdin.isTTY === true;
    const interactive = !flags.has("interactive") || flags.bool("interactive");
    const detach = flags.bool("detach");
    const body: Parameters<typeof ctx.client.execCreate>[1] = {
      Cmd: cmd,
      AttachStdin: interactive && !detach,
      AttachStdout: !detach,
      AttachStderr: !detach,
      Tty: tty,
      Privileged: flags.bool("privileged"),
    };
    const env = envList(ctx, flags.list("env"));
    if (env.length) body.Env = env;
    const wd = flags.string("workdir");
    if (wd) body.WorkingDir = wd;
    const user = flags.string("user");
    if (user) body.User = user;
    const exec = await ctx.client.execCreate(c.Id, body);
    if (detach) {
      await ctx.client.execStartDetached(exec.Id, { tty });
      return 0;
    }
    const conn = await ctx.client.execAttach(exec.Id, { tty });
    await pumpStreams(conn, { stdin: ctx.io.stdin, stdout: ctx.io.stdout, stderr: ctx.io.stderr }, { tty, sendStdin: interactive });
    const info = await ctx.client.execInspect(exec.Id);
    return info.ExitCode ?? 0;
  },
};

const runCommand: ComposeCommand = {
  name: "run",
  usage: "[OPTIONS] SERVICE [COMMAND] [ARGS...]",
  short: "Run a one-off command on a service",
  stopAtFirstPositional: true,
  flags: [
    b("detach", "Run container in background and print container ID", "d"),
    b("rm", "Automatically remove the container when it exits"),
    l("env", "Set environment variables", "e"),
    s("entrypoint", "Override the entrypoint of the image"),
    s("user", "Run as specified username or uid", "u"),
    s("workdir", "Working directory inside the container", "w"),
    b("no-TTY", "Disable pseudo-TTY allocation (default: auto-detected)", "T"),
    b("interactive", "Keep STDIN open even if not attached", "i"),
    b("tty", "Allocate a pseudo-TTY", "t"),
    s("name", "Assign a name to the container"),
    b("no-deps", "Don't start linked services"),
    b("service-ports", "Run command with all service's ports enabled and mapped to the host"),
    l("publish", "Publish a container's port(s) to the host", "p"),
    l("label", "Add or override a label", "l"),
    l("volume", "Bind mount a volume", "v"),
    b("build", "Build image before starting container"),
    s("pull", 'Pull image before running ("always"|"missing"|"never")'),
    b("quiet-pull", "Pull without printing progress information"),
    b("remove-orphans", "Remove containers for services not defined in the Compose file"),
    b("use-aliases", "Use the service's network useAliases in the network(s) the container connects to"),
    b("quiet", "Don't print anything to STDOUT", "q"),
  ],
  async run(ctx, flags, args) {
    const [svc, ...cmd] = args;
    if (svc === undefined) throw new ComposeError('"run" requires at least 1 argument: SERVICE');
    const project = await ctx.project([svc]);
    const service = project.services[svc];
    if (!service) throw new ComposeError(`no such service: ${svc}`);
    const session = ctx.session();
    const deps = flags.bool("no-deps") ? [] : withDependencies(project, [svc]).filter((x) => x !== svc);
    await checkExternals(session, project, [...deps, svc]);
    await ensureNetworks(session, project, [...deps, svc]);
    await ensureVolumes(session, project, [...deps, svc]);
    const imgOpts: Parameters<typeof ensureImages>[3] = { build: flags.bool("build"), builder: builderFor(session, project) };
    const pull = flags.string("pull");
    if (pull) imgOpts.pull = pull;
    const images = await ensureImages(session, project, [...deps, svc], imgOpts);
    if (deps.length) {
      const res = await converge(session, project, deps, { images, noRecreate: false });
      await startServices(session, project, deps, async (x) => res.get(x)?.containers.map((c) => c.id) ?? []);
      // The one-off container waits for the conditions of its own dependencies.
      for (const [dep, d] of Object.entries(service.depends_on ?? {})) {
        const ids = res.get(dep)?.containers.map((c) => c.id) ?? [];
        if (ids.length && d.condition !== "service_started") await waitCondition(session, dep, d.condition, ids, { dependent: svc });
      }
    }
    const stdinTty = ctx.io.stdin.isTTY === true;
    const tty = flags.bool("no-TTY") ? false : flags.has("tty") ? flags.bool("tty") : stdinTty;
    const detach = flags.bool("detach");
    const interactive = !detach && (!flags.has("interactive") || flags.bool("interactive"));
    const slug = newSlug();
    const oneoff: NonNullable<Parameters<typeof createBody>[3]["oneoff"]> = {
      slug,
      tty,
      interactive,
      servicePorts: flags.bool("service-ports"),
      publish: flags.list("publish"),
    };
    if (cmd.length) oneoff.command = cmd;
    const ep = flags.string("entrypoint");
    if (ep !== undefined) oneoff.entrypoint = ep === "" ? [] : [ep];
    const env = envList(ctx, flags.list("env"));
    if (env.length) oneoff.env = env;
    const user = flags.string("user");
    if (user) oneoff.user = user;
    const wd = flags.string("workdir");
    if (wd) oneoff.workdir = wd;
    const existing = await projectContainers(ctx.client, project.name, { all: true, oneoff: true });
    const containerOf = (x: string) => {
      const c = existing.find((e) => serviceOf(e) === x && e.Labels?.["com.docker.compose.oneoff"] !== "True");
      return c ? nameOf(c) : undefined;
    };
    const spec: Parameters<typeof createBody>[3] = { number: 1, oneoff, containerOf };
    const imageId = images.get(svc);
    if (imageId) spec.imageId = imageId;
    const body = createBody(project, svc, { ...service, container_name: undefined } as Service, spec);
    for (const lbl of flags.list("label")) {
      const i = lbl.indexOf("=");
      (body.Labels as Record<string, string>)[i < 0 ? lbl : lbl.slice(0, i)] = i < 0 ? "" : lbl.slice(i + 1);
    }
    if (flags.list("volume").length)
      body.HostConfig = { ...body.HostConfig, Binds: [...(body.HostConfig?.Binds ?? []), ...flags.list("volume")] };
    if (flags.bool("rm") && detach) body.HostConfig = { ...body.HostConfig, AutoRemove: true };
    const cname = flags.string("name") ?? `${project.name}-${svc}-run-${slug}`;
    const created = await ctx.client.containerCreate(body, { name: cname });
    await connectExtraNetworks(session, project, svc, service, created.Id);
    await injectFileObjects(session, project, service, created.Id);
    if (detach) {
      await ctx.client.containerStart(created.Id);
      ctx.out(`${cname}\n`);
      return 0;
    }
    let code = 0;
    try {
      const conn = await ctx.client.containerAttach(created.Id, { stream: true, stdin: interactive, stdout: true, stderr: true });
      const wait = await ctx.client.containerWait(created.Id, "next-exit");
      const pump = pumpStreams(
        conn,
        { stdin: ctx.io.stdin, stdout: ctx.io.stdout, stderr: ctx.io.stderr },
        { tty, sendStdin: interactive },
      );
      await ctx.client.containerStart(created.Id);
      await pump;
      code = (await wait.result).StatusCode;
    } finally {
      if (flags.bool("rm")) await ctx.client.containerRemove(created.Id, { force: true }).catch(() => undefined);
    }
    return code;
  },
};

// --- config / version ----------------------------------------------------------------------

const configCommand: ComposeCommand = {
  name: "config",
  usage: "[OPTIONS] [SERVICE...]",
  short: "Parse, resolve and render compose file in canonical format",
  flags: [
    s("format", "Format the output. Values: [yaml | json]"),
    b("quiet", "Only validate the configuration, don't print anything", "q"),
    b("services", "Print the service names, one per line."),
    b("volumes", "Print the volume names, one per line."),
    b("networks", "Print the network names, one per line."),
    b("profiles", "Print the profile names, one per line."),
    b("images", "Print the image names, one per line."),
    s("hash", "Print the service config hash, one per line."),
    s("output", "Save to file (default to stdout)", "o"),
    b("no-interpolate", "Don't interpolate environment variables"),
    b("no-normalize", "Don't normalize compose model"),
    b("no-path-resolution", "Don't resolve file paths"),
    b("resolve-image-digests", "Pin image tags to digests"),
    b("no-consistency", "Don't check model consistency"),
    b("environment", "Print environment used for interpolation."),
  ],
  async run(ctx, flags, args) {
    const project = await ctx.project(args, { interpolate: !flags.bool("no-interpolate") });
    if (args.length) {
      const keep = new Set(withDependencies(project, args));
      for (const k of Object.keys(project.services)) if (!keep.has(k)) delete project.services[k];
    }
    if (flags.bool("quiet")) return 0;
    const lines = (xs: string[]) => {
      for (const x of xs) ctx.out(`${x}\n`);
      return 0;
    };
    if (flags.bool("services")) return lines(Object.keys(project.services).sort());
    if (flags.bool("volumes")) return lines(Object.keys(project.volumes).sort());
    if (flags.bool("networks")) return lines(Object.keys(project.networks).sort());
    if (flags.bool("profiles")) {
      const all = new Set<string>();
      for (const sv of [...Object.values(project.services), ...Object.values(project.disabledServices)])
        for (const p of sv.profiles ?? []) all.add(p);
      return lines([...all].sort());
    }
    if (flags.bool("images")) return lines(Object.entries(project.services).map(([k, sv]) => serviceImage(project, k, sv)));
    if (flags.bool("environment"))
      return lines(
        Object.entries(project.environment)
          .map(([k, v]) => `${k}=${v}`)
          .sort(),
      );
    const hash = flags.string("hash");
    if (hash !== undefined) {
      const names = hash === "*" ? Object.keys(project.services).sort() : hash.split(",");
      for (const x of names) {
        const sv = project.services[x];
        if (!sv) throw new ComposeError(`no such service: ${x}`);
        ctx.out(`${x} ${serviceHash(sv)}\n`);
      }
      return 0;
    }
    const format = flags.string("format") ?? "yaml";
    if (format !== "yaml" && format !== "json") throw new ComposeError(`unsupported format "${format}"`);
    const text = renderConfig(project, format);
    const output = flags.string("output");
    if (output) {
      const { writeFileSync } = await import("node:fs");
      const { resolve } = await import("node:path");
      writeFileSync(resolve(ctx.io.cwd, output), text);
      return 0;
    }
    ctx.out(text);
    return 0;
  },
};

const versionCommand: ComposeCommand = {
  name: "version",
  usage: "[OPTIONS]",
  short: "Show the Docker Compose version information",
  flags: [s("format", "Format the output. Values: [pretty | json]", "f"), b("short", "Shows only Compose's version number")],
  async run(ctx, flags) {
    if (flags.bool("short")) ctx.out(`${COMPOSE_VERSION}\n`);
    else if (flags.string("format") === "json") ctx.out(`${JSON.stringify({ version: `v${COMPOSE_VERSION}` })}\n`);
    else ctx.out(`Docker Compose version v${COMPOSE_VERSION} (berth compose)\n`);
    return 0;
  },
};

/** Every compose subcommand. */
export const COMMANDS: ComposeCommand[] = [
  buildCommand,
  configCommand,
  createCommand,
  downCommand,
  execCommand,
  imagesCommand,
  killCommand,
  logsCommand,
  lsCommand,
  pauseCommand,
  portCommand,
  psCommand,
  pullCommand,
  pushCommand,
  restartCommand,
  rmCommand,
  runCommand,
  startCommand,
  stopCommand,
  topCommand,
  unpauseCommand,
  upCommand,
  versionCommand,
];
