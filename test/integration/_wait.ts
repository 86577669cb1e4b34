/** Polls `fn` every `everyMs` until it holds or `ms` have passed; the last answer counts. */
export async function waitFor(fn: () => boolean | Promise<boolean>, ms = 5000, everyMs = 100): Promise<boolean> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (await fn()) return true;
    await new Promise((r) => setTimeout(r, everyMs));
  }
  return await fn();
}
