/** Interactive questions on the terminal (prune confirmations, login prompts). */
import type { Cli } from "./cli.ts";
import { writeTo } from "./cli.ts";

/** Reads one line from stdin (without the line ending); "" at end of input. */
export async function readLine(cli: Cli): Promise<string> {
  const stream = cli.in.stream;
  return await new Promise<string>((resolve) => {
    let buf = "";
    const onData = (chunk: Buffer | string) => {
      buf += chunk.toString();
      const i = buf.indexOf("\n");
      if (i >= 0) {
        finish(buf.slice(0, i));
        // Hand back what followed the line for whoever reads stdin next.
        const rest = buf.slice(i + 1);
        if (rest) stream.unshift(Buffer.from(rest));
      }
    };
    const onEnd = () => finish(buf);
    const finish = (line: string) => {
      stream.off("data", onData);
      stream.off("end", onEnd);
      stream.pause();
      resolve(line.replace(/\r$/, ""));
    };
    stream.on("data", onData);
    stream.on("end", onEnd);
    stream.resume();
  });
}

/** Asks `message [y/N]` on stdout and reads the answer: only "y" (any case) confirms. */
export async function confirm(cli: Cli, message: string): Promise<boolean> {
  await writeTo(cli.out.stream, `${message} [y/N] `);
  const answer = (await readLine(cli)).trim();
  return answer.toLowerCase() === "y";
}

/** Prints a prompt and reads a line; with `secret` the terminal does not echo the input. */
export async function ask(cli: Cli, message: string, options: { secret?: boolean } = {}): Promise<string> {
  await writeTo(cli.out.stream, message);
  const tty = cli.in.stream as NodeJS.ReadStream;
  const raw = options.secret && cli.in.isTTY && typeof tty.setRawMode === "function";
  if (!raw) return (await readLine(cli)).trim();
  tty.setRawMode(true);
  try {
    return await new Promise<string>((resolve, reject) => {
      let buf = "";
      const onData = (chunk: Buffer) => {
        for (const c of chunk.toString("utf8")) {
          if (c === "\r" || c === "\n") {
            done();
            resolve(buf);
            return;
          }
          if (c === "\u0003") {
            done();
            reject(new Error("interrupted"));
            return;
          }
          if (c === "\u007f" || c === "\b") buf = buf.slice(0, -1);
          else buf += c;
        }
      };
      const done = () => {
        tty.off("data", onData);
        tty.pause();
      };
      tty.on("data", onData);
      tty.resume();
    });
  } finally {
    tty.setRawMode(false);
  }
}
