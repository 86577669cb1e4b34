import { conflict } from "../base/mod.ts";
import { checkStore, type Daemon } from "../daemon/mod.ts";
import { qBool, type Router, sendJson } from "./http.ts";

/**
 * berth's own endpoints (not part of Docker's API), under `/berth/`:
 *
 * `POST /berth/system/check[?repair=1]` verifies the store (every blob rehashed, every row's
 * referents, snapshots, containers, leftovers) and answers 200 with a `CheckReport`; `ok` says
 * whether it is healthy. With `repair`, corrupt blobs and dangling names are removed, missing
 * layer snapshots unpacked again and GC runs; things an operation in flight may own are left.
 * One check runs at a time (409 otherwise); closing the connection cancels it.
 */
export function berthRoutes(router: Router, d: Daemon): void {
  let running = false;
  router.add("POST", "/berth/system/check", async ({ res, query }) => {
    if (running) throw conflict("A store check is already running");
    running = true;
    const ac = new AbortController();
    const onClose = () => {
      if (!res.writableFinished) ac.abort();
    };
    res.on("close", onClose);
    try {
      const report = await checkStore(d, { repair: qBool(query, "repair"), signal: ac.signal });
      sendJson(res, 200, report);
    } finally {
      running = false;
      res.off("close", onClose);
    }
  });
}
