/** login and logout: credentials validated by the daemon (POST /auth), kept in config.json or a helper. */
import { convertToHostname, type Credentials, INDEX_SERVER } from "../client/mod.ts";
import { type Cli, describeError, StatusError } from "./cli.ts";
import type { Command } from "./command.ts";
import { ask } from "./prompt.ts";
import { isUnauthorized } from "../base/mod.ts";

/** Options of `berth login`. */
export interface LoginOptions {
  serverAddress: string;
  user: string;
  password: string;
  passwordStdin: boolean;
}

async function readAllStdin(cli: Cli): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of cli.in.stream) chunks.push(typeof c === "string" ? Buffer.from(c) : (c as Buffer));
  return Buffer.concat(chunks).toString("utf8");
}

async function storeCredentials(cli: Cli, creds: Credentials): Promise<void> {
  try {
    const r = await cli.configFile().store(creds);
    if (r.plaintext) {
      await cli.eprintln(
        `\nWARNING! Your credentials are stored unencrypted in '${cli.configFile().path}'.\nConfigure a credential helper to remove this warning. See\nhttps://docs.docker.com/go/credential-store/\n`,
      );
    }
  } catch (e) {
    throw new StatusError(1, `Error saving credentials: ${(e as Error).message}`);
  }
}

/** Asks for what is missing of a username and password on the terminal (docker's PromptUserForCredentials). */
export async function promptCredentials(
  cli: Cli,
  given: { user: string; password: string; defaultUser: string },
): Promise<{ user: string; password: string }> {
  let user = given.user.trim();
  let password = given.password;
  if ((!user || !password) && !cli.in.isTTY) throw new StatusError(1, "Error: Cannot perform an interactive login from a non TTY device");
  if (!user) {
    const def = given.defaultUser.trim();
    user = await ask(cli, def ? `Username (${def}): ` : "Username: ");
    if (!user) user = def;
    if (!user) throw new StatusError(1, "Error: Non-null Username Required");
  }
  password = password.trim();
  if (!password) {
    password = await ask(cli, "Password: ", { secret: true });
    await cli.println();
    if (!password) throw new StatusError(1, "Error: Password Required");
  }
  return { user, password };
}

/** Logs in as `docker login` does; prints the daemon's status ("Login Succeeded"). */
export async function runLogin(cli: Cli, opts: LoginOptions): Promise<void> {
  let password = opts.password;
  if (password) await cli.eprintln("WARNING! Using --password via the CLI is insecure. Use --password-stdin.");
  if (opts.passwordStdin) {
    if (!opts.user) throw new StatusError(1, "username is empty");
    password = (await readAllStdin(cli)).replace(/\n$/, "").replace(/\r$/, "");
  }
  const isDefault = !opts.serverAddress || opts.serverAddress === "docker.io";
  const serverAddress = isDefault ? INDEX_SERVER : convertToHostname(opts.serverAddress);
  let stored: Credentials = { serverAddress };
  if (!opts.user && !password) {
    try {
      stored = await cli.configFile().get(serverAddress);
    } catch {
      stored = { serverAddress };
    }
    if (stored.username && stored.password) {
      await cli.eprintln(`Authenticating with existing credentials... [Username: ${stored.username}]`);
      await cli.eprintln("\ni Info → To login with a different account, run 'docker logout' followed by 'docker login'\n\n");
      try {
        const r = await cli.client.auth({ username: stored.username, password: stored.password, serveraddress: serverAddress });
        const c: Credentials = { serverAddress, username: stored.username };
        if (r.IdentityToken) c.identityToken = r.IdentityToken;
        else c.password = stored.password;
        await storeCredentials(cli, c);
        await cli.println(r.Status);
        return;
      } catch (e) {
        if (isUnauthorized(e)) await cli.eprintln("Stored credentials invalid or expired");
        else await cli.eprintln(`Login did not succeed, error: ${describeError(e)}`);
      }
    }
  }
  const asked = await promptCredentials(cli, { user: opts.user, password, defaultUser: stored.username ?? "" });
  const user = asked.user;
  password = asked.password;
  const r = await cli.client.auth({ username: user, password, serveraddress: serverAddress });
  const creds: Credentials = { serverAddress, username: user };
  if (r.IdentityToken) creds.identityToken = r.IdentityToken;
  else creds.password = password;
  await storeCredentials(cli, creds);
  if (r.Status) await cli.println(r.Status);
}

export const loginCommand: Command = {
  name: "login",
  usage: "[OPTIONS] [SERVER]",
  short: "Authenticate to a registry.\nDefaults to Docker Hub if no server is specified.",
  args: { max: 1 },
  flags: [
    { long: "password", short: "p", kind: "string", help: "Password or Personal Access Token (PAT)" },
    { long: "password-stdin", kind: "bool", help: "Take the Password or Personal Access Token (PAT) from stdin" },
    { long: "username", short: "u", kind: "string", help: "Username" },
  ],
  async run(cli, { flags, args }) {
    await runLogin(cli, {
      serverAddress: args[0] ?? "",
      user: flags.string("username"),
      password: flags.string("password"),
      passwordStdin: flags.bool("password-stdin"),
    });
    return 0;
  },
};

/** Erases stored credentials for a registry and its URL variants, as `docker logout` does. */
export async function runLogout(cli: Cli, server: string): Promise<void> {
  const isDefault = server === "";
  const address = isDefault ? INDEX_SERVER : server;
  const host = isDefault ? address : convertToHostname(address);
  const keys = isDefault ? [address] : [...new Set([address, host, `http://${host}`, `https://${host}`])];
  await cli.println(`Removing login credentials for ${host}`);
  const errors: string[] = [];
  for (const k of keys) {
    try {
      await cli.configFile().erase(k);
    } catch (e) {
      errors.push(`${k}: ${(e as Error).message}`);
    }
  }
  if (errors.length === keys.length) {
    await cli.eprintln("WARNING: could not erase credentials:");
    for (const e of errors) await cli.eprintln(e);
  }
}

export const logoutCommand: Command = {
  name: "logout",
  usage: "[SERVER]",
  short: "Log out from a registry.\nIf no server is specified, the default is defined by the daemon.",
  args: { max: 1 },
  flags: [],
  async run(cli, { args }) {
    await runLogout(cli, args[0] ?? "");
    return 0;
  },
};
