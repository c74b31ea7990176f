// The network-namespace harness itself (test/harness/netns.ts), without a stack: a process in a
// site's namespace reaches a server on the hub address; while the site is cut it does not (its
// packets are dropped, nothing answers); restored, it does again; teardown leaves no namespace,
// link or bridge behind.
import assert from "node:assert/strict";
import { execFile, spawnSync } from "node:child_process";
import { createServer, type Server } from "node:net";
import { after, before, describe, it } from "node:test";
import { promisify } from "node:util";
import { createNetnsLab, netnsSupport, type NetnsLab } from "../harness/netns.ts";

const support = await netnsSupport();
const run = promisify(execFile);

/** Connects from the site's namespace to hub:port; "hello" if the hub answered, else the error. */
async function dialFrom(lab: NetnsLab, site: string, port: number, waitMs: number): Promise<string> {
  const script = `const s = require("net").connect(${port}, "${lab.hub}");
s.setTimeout(${waitMs}, () => { console.log("no answer"); process.exit(0); });
s.on("data", (d) => { console.log(String(d).trim()); process.exit(0); });
s.on("error", (e) => { console.log("error " + e.code); process.exit(0); });`;
  const ns = lab.sites.get(site)!.ns;
  return (await run("ip", ["netns", "exec", ns, process.execPath, "-e", script])).stdout.trim();
}

describe(
  "the network-namespace harness",
  { timeout: 60_000, skip: support.ok ? false : `skipped: ${support.reason}` },
  () => {
    let lab: NetnsLab;
    let server: Server;
    let port: number;
    before(async () => {
      lab = await createNetnsLab(["east"]);
      server = createServer((s) => s.end("hello\n"));
      await new Promise<void>((r) => server.listen(0, lab.hub, r));
      port = (server.address() as { port: number }).port;
    });
    after(async () => {
      await new Promise((r) => server?.close(r));
      await lab?.teardown();
    });

    it("links a site to the hub, cuts the link and restores it", async () => {
      assert.equal(await dialFrom(lab, "east", port, 10_000), "hello");
      await lab.cut("east");
      // a cut drops packets: nothing answers (a wait that can only end one way while cut)
      assert.equal(await dialFrom(lab, "east", port, 1500), "no answer");
      await lab.restore("east");
      let answer = "";
      for (let i = 0; i < 20 && answer !== "hello"; i++) answer = await dialFrom(lab, "east", port, 3000);
      assert.equal(answer, "hello");
    });

    it("reaches nothing but the hub's subnet: the namespace has no default route", () => {
      const routes = spawnSync("ip", ["-n", lab.sites.get("east")!.ns, "route", "show"], {
        encoding: "utf8",
      });
      assert.doesNotMatch(routes.stdout, /default/);
    });

    it("teardown removes the namespaces, links and bridge", async () => {
      const other = await createNetnsLab(["x", "y"]);
      const names = [...other.sites.values()];
      const before = spawnSync("ip", ["-o", "link", "show"], { encoding: "utf8" }).stdout;
      assert.ok(before.includes(`${other.bridge}:`), "the bridge exists before teardown");
      await other.teardown();
      const ns = spawnSync("ip", ["netns", "list"], { encoding: "utf8" }).stdout;
      const links = spawnSync("ip", ["-o", "link", "show"], { encoding: "utf8" }).stdout;
      for (const s of names) {
        assert.doesNotMatch(ns, new RegExp(`^${s.ns}\\b`, "m"));
        assert.ok(!links.includes(`${s.hostVeth}@`) && !links.includes(`${s.hostVeth}:`), s.hostVeth);
      }
      assert.ok(!links.includes(`${other.bridge}:`), other.bridge);
    });
  },
);
