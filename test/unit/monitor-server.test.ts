// The monitor's local server against an in-memory backend: the token guards every request, the
// Host check stops a DNS-rebound name, actions need POST, the header token and a confirmation,
// the TASK… filter hides other tasks, and bad ids get errors naming the field.
import assert from "node:assert/strict";
import { request } from "node:http";
import { after, before, describe, it } from "node:test";
import { startMonitor, type MonitorServer } from "../../client/monitor/server.ts";
import { main } from "../../client/main.ts";
import { generatedTask, MemoryBackend, summaryOf } from "../harness/monitorData.ts";

const TOKEN = "a".repeat(64);

interface Reply {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

function call(
  port: number,
  path: string,
  o: { method?: string; headers?: Record<string, string>; body?: string } = {},
): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: "127.0.0.1",
        port,
        path,
        method: o.method ?? "GET",
        headers: { host: `127.0.0.1:${port}`, ...o.headers },
      },
      (res) => {
        let body = "";
        res.on("data", (c: Buffer) => (body += c.toString()));
        res.on("end", () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
      },
    );
    req.on("error", reject);
    req.end(o.body);
  });
}

const json = (r: Reply) => JSON.parse(r.body) as Record<string, unknown>;

void describe("phpo monitor's server", () => {
  let backend: MemoryBackend;
  let server: MonitorServer;
  let port: number;

  before(async () => {
    backend = new MemoryBackend(
      "demo",
      new Map([
        ["1", generatedTask({ trials: 30, reports: 5, taskId: "1" })],
        ["2", generatedTask({ trials: 5, reports: 5, taskId: "2" })],
      ]),
    );
    backend.logs.set("1/13", "Traceback: <script>alert(1)</script>\n");
    server = await startMonitor({ backend, token: TOKEN, port: 0 });
    port = server.port;
  });
  after(async () => server?.close());

  void it("prints a loopback URL with the token and serves the page with it", async () => {
    assert.equal(server.url, `http://127.0.0.1:${port}/?token=${TOKEN}`);
    const r = await call(port, `/?token=${TOKEN}`);
    assert.equal(r.status, 200);
    assert.match(r.body, new RegExp(`/assets/app.js\\?token=${TOKEN}`));
    assert.match(String(r.headers["content-security-policy"]), /script-src 'self'/);
    assert.equal(r.headers["referrer-policy"], "no-referrer");
    const js = await call(port, `/assets/uPlot.iife.min.js?token=${TOKEN}`);
    assert.equal(js.status, 200);
    assert.match(js.body, /uPlot/);
  });

  void it("answers nothing but 401/403 without the right token", async () => {
    for (const path of [
      "/",
      "/assets/app.js",
      "/api/tasks",
      "/api/tasks/1",
      "/api/events",
      "/api/tasks/1/points/13/log",
    ]) {
      const none = await call(port, path);
      assert.equal(none.status, 401, path);
      assert.doesNotMatch(none.body, /generated|Traceback|taskId/, path);
      const wrong = await call(port, `${path}?token=${"b".repeat(64)}`);
      assert.equal(wrong.status, 403, path);
      assert.equal(json(wrong).code, "FORBIDDEN");
    }
  });

  void it("refuses a Host that is not loopback, even with the token (DNS rebinding)", async () => {
    const r = await call(port, `/api/tasks?token=${TOKEN}`, { headers: { host: `rebound.example:${port}` } });
    assert.equal(r.status, 403);
    assert.doesNotMatch(r.body, /generated/);
    const ok = await call(port, `/api/tasks?token=${TOKEN}`, { headers: { host: `localhost:${port}` } });
    assert.equal(ok.status, 200);
  });

  void it("lists the user's tasks and shows one with its ladder", async () => {
    const list = json(await call(port, "/api/tasks", { headers: { "x-monitor-token": TOKEN } }));
    assert.equal(list.user, "demo");
    assert.deepEqual(
      (list.tasks as { taskId: string }[]).map((t) => t.taskId),
      ["1", "2"],
    );
    const one = json(await call(port, `/api/tasks/1?token=${TOKEN}`));
    const ladder = one.ladder as { rungs: { level: number; values: unknown[] }[] };
    assert.deepEqual(
      ladder.rungs.map((r) => [r.level, r.values.length]),
      [
        [1, 30],
        [3, 30],
      ],
    );
  });

  void it("serves a point's log as text", async () => {
    const r = await call(port, `/api/tasks/1/points/13/log?token=${TOKEN}`);
    assert.equal(r.status, 200);
    assert.match(String(r.headers["content-type"]), /^text\/plain/);
    assert.equal(r.body, "Traceback: <script>alert(1)</script>\n");
    const missing = await call(port, `/api/tasks/1/points/2/log?token=${TOKEN}`);
    assert.equal(missing.status, 404);
    assert.match(String(json(missing).message), /point 2 of task 1 has no log/);
  });

  void it("names the field of a bad id", async () => {
    const t = await call(port, `/api/tasks/1x?token=${TOKEN}`);
    assert.equal(t.status, 400);
    assert.match(String(json(t).message), /task id "1x"/);
    const a = await call(port, `/api/tasks/1/points/13/log?attempt=0&token=${TOKEN}`);
    assert.equal(a.status, 400);
    assert.match(String(json(a).message), /attempt "0".*\?attempt=1/);
  });

  void it("acts only on a POST with the header token and a confirmation", async () => {
    const body = JSON.stringify({ confirm: "2" });
    const ct = { "content-type": "application/json" };
    // the token in the URL is enough to read, never to act (a link or a form cannot act)
    const viaQuery = await call(port, `/api/tasks/2/kill?token=${TOKEN}`, {
      method: "POST",
      headers: ct,
      body,
    });
    assert.equal(viaQuery.status, 401);
    // a GET to an action's URL does nothing
    assert.equal((await call(port, `/api/tasks/2/kill?token=${TOKEN}`)).status, 404);
    const unconfirmed = await call(port, "/api/tasks/2/kill", {
      method: "POST",
      headers: { ...ct, "x-monitor-token": TOKEN },
      body: JSON.stringify({ confirm: "1" }),
    });
    assert.equal(unconfirmed.status, 400);
    assert.match(String(json(unconfirmed).message), /confirm: to kill task 2, send \{"confirm": "2"\}/);
    const form = await call(port, "/api/tasks/2/kill", {
      method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded", "x-monitor-token": TOKEN },
      body: "confirm=2",
    });
    assert.equal(form.status, 415);
    const put = await call(port, "/api/tasks/2/kill", {
      method: "PUT",
      headers: { "x-monitor-token": TOKEN },
    });
    assert.equal(put.status, 405);
    assert.deepEqual(backend.actions, []);
    const ok = await call(port, "/api/tasks/2/kill", {
      method: "POST",
      headers: { ...ct, "x-monitor-token": TOKEN },
      body,
    });
    assert.equal(ok.status, 200, ok.body);
    assert.deepEqual(backend.actions, [{ verb: "kill", taskId: "2" }]);
  });

  void it("pushes the user's task events on the event stream", async () => {
    const got = await new Promise<string>((resolve, reject) => {
      const req = request(
        {
          host: "127.0.0.1",
          port,
          path: `/api/events?token=${TOKEN}`,
          headers: { host: `127.0.0.1:${port}` },
        },
        (res) => {
          assert.equal(res.headers["content-type"], "text/event-stream; charset=utf-8");
          let text = "";
          res.on("data", (c: Buffer) => {
            text += c.toString();
            if (text.includes("event: hello") && !text.includes("event: task")) {
              backend.emit({
                taskId: "1",
                changes: [{ at: 1, kind: "point-done", pointId: 3, loss: 0.5 }],
                summary: summaryOf(backend.tasks.get("1")!),
              });
            }
            if (text.includes("event: task")) {
              req.destroy();
              resolve(text);
            }
          });
        },
      );
      req.on("error", reject);
      req.end();
    });
    assert.match(got, /event: task\ndata: \{"taskId":"1","changes":\[\{"at":1,"kind":"point-done"/);
  });

  void it("with TASK… arguments, shows only those tasks", async () => {
    const only = await startMonitor({ backend, token: TOKEN, tasks: ["1"] });
    try {
      const list = json(await call(only.port, `/api/tasks?token=${TOKEN}`));
      assert.deepEqual(
        (list.tasks as { taskId: string }[]).map((t) => t.taskId),
        ["1"],
      );
      const other = await call(only.port, `/api/tasks/2?token=${TOKEN}`);
      assert.equal(other.status, 404);
      const kill = await call(only.port, "/api/tasks/2/kill", {
        method: "POST",
        headers: { "content-type": "application/json", "x-monitor-token": TOKEN },
        body: JSON.stringify({ confirm: "2" }),
      });
      assert.equal(kill.status, 404);
    } finally {
      await only.close();
    }
  });
});

void describe("phpo monitor's address", () => {
  void it("binds 127.0.0.1 by default and generates a fresh token", async () => {
    const backend = new MemoryBackend("demo", new Map());
    const a = await startMonitor({ backend });
    const b = await startMonitor({ backend });
    try {
      assert.match(a.url, /^http:\/\/127\.0\.0\.1:\d+\/\?token=[0-9a-f]{64}$/);
      assert.notEqual(new URL(a.url).searchParams.get("token"), new URL(b.url).searchParams.get("token"));
    } finally {
      await a.close();
      await b.close();
    }
  });

  void it("warns when told to serve on another address", async () => {
    let err = "";
    const io = {
      stdout: { write: () => true },
      stderr: { write: (s: string) => ((err += s), true) },
    } as never;
    // no server is configured: the verb warns, then fails to connect (exit 3)
    const code = await main(["node", "phpo", "monitor", "--host", "0.0.0.0"], io, { HOME: "/nonexistent" });
    assert.equal(code, 3, err);
    assert.match(err, /warning: serving on 0\.0\.0\.0, not only this machine/);
  });

  void it("refuses a bad --port before connecting", async () => {
    let err = "";
    const io = {
      stdout: { write: () => true },
      stderr: { write: (s: string) => ((err += s), true) },
    } as never;
    assert.equal(await main(["node", "phpo", "monitor", "--port", "70000"], io, { HOME: "/nonexistent" }), 2);
    assert.match(err, /--port 70000: give a port up to 65535, or 0 for a free one/);
  });
});
