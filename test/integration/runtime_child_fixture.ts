/**
 * Run as a separate process by runtime.test.ts: creates and starts a container, prints its id
 * and bundle directory, then waits to be killed with SIGKILL (a crashing berthd).
 */
import { join } from "node:path";
import { ContainerRuntime } from "../../src/runtime/mod.ts";
import { host, specFor } from "./runtime_helpers.ts";

const [stateRoot, id, dir, rootfs] = process.argv.slice(2) as [string, string, string, string];
const rt = new ContainerRuntime(host, { stateRoot });
const spec = await specFor({ id, rootfs }, { args: ["sh", "-c", "i=0; while true; do i=$((i+1)); echo tick$i; sleep 0.1; done"] });
await rt.create(id, { bundleDir: dir, spec, logPath: join(dir, "ctr.log"), stdin: true });
await rt.start(id);
process.stdout.write(`${JSON.stringify({ ready: true })}\n`);
setInterval(() => {}, 1000);
