// The monitor page in a real browser against the monitor's server with an in-memory task (no
// stack needed): steering's text is hostile and must stay text, whatever it contains.
import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { type BrowserContext, chromium, type Page } from "playwright-core";
import { startMonitor, type MonitorServer } from "../../client/monitor/server.ts";
import { CHROMIUM_ARGS, CHROMIUM_PATH } from "../harness/browser.ts";
import { generatedTask, MemoryBackend } from "../harness/monitorData.ts";

const HOSTILE = `<img src=x onerror="document.title='pwned'">`;

describe("the monitor page with hostile text", { timeout: 120_000 }, () => {
  let server: MonitorServer;
  let browser: BrowserContext;
  let page: Page;
  let profile: string;
  const errors: string[] = [];

  before(async () => {
    const task = generatedTask({ trials: 20, reports: 5 });
    task.outDS = `user.${HOSTILE}/`;
    const p = task.points[13];
    assert.ok(p);
    p.error = `EVALUATION_FAILED: ${HOSTILE}`;
    p.values = { x: HOSTILE };
    const backend = new MemoryBackend("demo", new Map([["1", task]]));
    backend.logs.set("1/13", `${HOSTILE}\n`);
    server = await startMonitor({ backend });
    profile = await mkdtemp(join(tmpdir(), "gridtune-chromium-"));
    browser = await chromium.launchPersistentContext(profile, {
      executablePath: CHROMIUM_PATH,
      headless: true,
      args: CHROMIUM_ARGS,
    });
    page = await browser.newPage();
    page.on("pageerror", (e) => errors.push(e.message));
  });
  after(async () => {
    await browser?.close();
    await server?.close();
    if (profile) await rm(profile, { recursive: true, force: true });
  });

  it("shows outDS, values, errors and logs as text, never as markup", async () => {
    await page.goto(server.url);
    await page.locator("tr[data-task='1']").waitFor();
    assert.match(await page.locator("#tasks").innerText(), /user\.<img src=x onerror=/);
    await page.goto(`${server.url}#/task/1`);
    await page.locator("body[data-rendered=task]").waitFor();
    assert.match(await page.locator("#summary").innerText(), /<img src=x/);
    await page.goto(`${server.url}#/task/1/point/13`);
    await page.locator("body[data-rendered=point]").waitFor();
    await page.locator('#log[data-loaded="1"]').waitFor();
    assert.match(await page.locator("#failure").innerText(), /EVALUATION_FAILED: <img src=x/);
    assert.equal((await page.locator("#log").innerText()).trim(), HOSTILE);
    assert.equal(await page.locator("main img").count(), 0, "steering's text became an element");
    assert.notEqual(await page.title(), "pwned");
    assert.deepEqual(errors, []);
  });
});
