/**
 * `--user name|uid[:group|gid]` and `--group-add` resolved against the image's /etc/passwd and
 * /etc/group, read safely inside the root filesystem (never through the host's NSS).
 */
import { invalidArgument, notFound } from "../base/mod.ts";
import { readFileInRoot } from "./rootfs.ts";

/** The numeric identity a container process runs as. */
export interface ResolvedUser {
  uid: number;
  gid: number;
  /** Supplementary groups: the user's groups from /etc/group, then `--group-add`. */
  additionalGids: number[];
  /** Home directory from passwd ("/root" for root without an entry, "/" otherwise). */
  home: string;
}

interface PasswdEntry {
  name: string;
  uid: number;
  gid: number;
  home: string;
}

interface GroupEntry {
  name: string;
  gid: number;
  members: string[];
}

const MAX_ID = 2 ** 32 - 2; // (uid_t)-1 is "no change" to the kernel, not an id.

function parseId(s: string): number | undefined {
  if (!/^[0-9]+$/.test(s)) return undefined;
  const n = Number(s);
  return n <= MAX_ID ? n : Number.NaN;
}

/** Parses passwd text; malformed lines are skipped. */
export function parsePasswd(text: string): PasswdEntry[] {
  const out: PasswdEntry[] = [];
  for (const line of text.split("\n")) {
    if (!line || line.startsWith("#")) continue;
    const f = line.split(":");
    if (f.length < 7) continue;
    const uid = parseId(f[2]!);
    const gid = parseId(f[3]!);
    if (uid === undefined || gid === undefined || Number.isNaN(uid) || Number.isNaN(gid)) continue;
    out.push({ name: f[0]!, uid, gid, home: f[5]! });
  }
  return out;
}

/** Parses group text; malformed lines are skipped. */
export function parseGroup(text: string): GroupEntry[] {
  const out: GroupEntry[] = [];
  for (const line of text.split("\n")) {
    if (!line || line.startsWith("#")) continue;
    const f = line.split(":");
    if (f.length < 4) continue;
    const gid = parseId(f[2]!);
    if (gid === undefined || Number.isNaN(gid)) continue;
    out.push({ name: f[0]!, gid, members: f[3]!.split(",").filter(Boolean) });
  }
  return out;
}

/**
 * Resolves a user spec against passwd/group texts (undefined when the file is missing). Pure;
 * `resolveUser` reads the files.
 */
export function resolveUserFrom(
  user: string,
  groupAdd: readonly string[],
  passwd: string | undefined,
  group: string | undefined,
): ResolvedUser {
  const spec = user.trim();
  const [userPart = "", groupPart, ...rest] = spec.split(":");
  if (rest.length) throw invalidArgument(`Invalid user "${user}"`);
  const users = passwd === undefined ? [] : parsePasswd(passwd);
  const groups = group === undefined ? [] : parseGroup(group);

  let uid: number;
  let gid = 0;
  let home = "/";
  let name: string | undefined;
  if (userPart === "") {
    uid = 0;
    const e = users.find((u) => u.uid === 0);
    name = e?.name ?? "root";
    home = e?.home || "/root";
    gid = e?.gid ?? 0;
  } else {
    const n = parseId(userPart);
    if (Number.isNaN(n)) throw invalidArgument(`Invalid user "${user}": uid out of range`);
    if (n !== undefined) {
      uid = n;
      const e = users.find((u) => u.uid === n);
      if (e) {
        name = e.name;
        gid = e.gid;
        home = e.home || "/";
      } else if (n === 0) home = "/root";
    } else {
      if (userPart.startsWith("-")) throw invalidArgument(`Invalid user "${user}"`);
      const e = users.find((u) => u.name === userPart);
      if (!e) throw notFound(`unable to find user ${userPart}: no matching entries in passwd file`);
      uid = e.uid;
      gid = e.gid;
      home = e.home || "/";
      name = e.name;
    }
  }

  const additional: number[] = [];
  if (groupPart !== undefined && groupPart !== "") {
    gid = lookupGroup(groupPart, groups, user);
  } else if (name !== undefined) {
    for (const g of groups) if (g.members.includes(name) && !additional.includes(g.gid)) additional.push(g.gid);
  }
  for (const g of groupAdd) {
    const id = lookupGroup(g, groups, g);
    if (!additional.includes(id)) additional.push(id);
  }
  // As containerd (and so Docker): the primary group leads the supplementary list, so that
  // `id` shows groups=<gid>,... and setgroups(2) drops whatever the runtime had.
  return { uid, gid, additionalGids: [gid, ...additional.filter((g) => g !== gid)], home };
}

function lookupGroup(spec: string, groups: GroupEntry[], context: string): number {
  const n = parseId(spec);
  if (Number.isNaN(n)) throw invalidArgument(`Invalid group "${context}": gid out of range`);
  if (n !== undefined) return n;
  const g = groups.find((x) => x.name === spec);
  if (!g) throw notFound(`Unable to find group ${spec}: no matching entries in group file`);
  return g.gid;
}

/** Resolves `user` and `groupAdd` inside `rootfs` (a mounted container root). */
export async function resolveUser(rootfs: string, user: string, groupAdd: readonly string[] = []): Promise<ResolvedUser> {
  const passwd = await readFileInRoot(rootfs, "/etc/passwd");
  const group = await readFileInRoot(rootfs, "/etc/group");
  return resolveUserFrom(user, groupAdd, passwd, group);
}
