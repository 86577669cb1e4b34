/** Registry credentials for pull/push/run: the stored login of the image's registry as X-Registry-Auth. */
import { isUnauthorized } from "../base/mod.ts";
import { type Credentials, encodeRegistryAuth, registryKeyForImage } from "../client/mod.ts";
import type { Cli } from "./cli.ts";
import { promptCredentials } from "./cmd_login.ts";

/** The stored credentials for the registry of `image` (empty when none or when the store fails). */
export async function credentialsForImage(cli: Cli, image: string): Promise<Credentials> {
  const key = registryKeyForImage(image);
  try {
    const c = await cli.configFile().get(key);
    // The daemon wants the registry's address, the file's key is fine for that.
    return { ...c, serverAddress: c.serverAddress || key };
  } catch (e) {
    if (cli.options.debug) await cli.eprintln(`DEBUG: cannot read credentials for ${key}: ${(e as Error).message}`);
    return { serverAddress: key };
  }
}

/** The `X-Registry-Auth` header value for `image` (docker sends `{}` base64url-encoded when not logged in). */
export async function registryAuthForImage(cli: Cli, image: string): Promise<string> {
  const c = await credentialsForImage(cli, image);
  if (!c.username && !c.password && !c.identityToken) return encodeRegistryAuth(undefined);
  return encodeRegistryAuth(c);
}

/**
 * Runs a registry operation; when the daemon answers 401 and stdin is a terminal, asks for
 * credentials ("Login prior to pull:") and tries once more with them, as docker's
 * RegistryAuthenticationPrivilegedFunc does. The credentials are not stored.
 */
export async function withLoginRetry<T, O extends { registryAuth?: string }>(
  cli: Cli,
  image: string,
  verb: string,
  options: O,
  op: (options: O) => Promise<T>,
): Promise<T> {
  try {
    return await op(options);
  } catch (e) {
    if (!isUnauthorized(e) || !cli.in.isTTY) throw e;
    await cli.println(`\nLogin prior to ${verb}:`);
    const key = registryKeyForImage(image);
    const c = await promptCredentials(cli, { user: "", password: "", defaultUser: (await credentialsForImage(cli, image)).username ?? "" });
    return await op({ ...options, registryAuth: encodeRegistryAuth({ serverAddress: key, username: c.user, password: c.password }) });
  }
}
