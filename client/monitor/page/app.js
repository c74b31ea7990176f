// The monitor page: routes (#/, #/task/T, #/task/T/point/P), the local server's API, live updates
// from its event stream, and the actions. A watch message updates the task list in place; the open
// task is fetched again at most once at a time and no sooner than a few times its last fetch took,
// so a busy task never turns into a storm of requests. While steering is unreachable the page says
// so and tries again, backing off; the event stream reconnects by itself.
(() => {
  "use strict";
  const GTM = window.GTM;
  const { h } = GTM;
  const token = new URLSearchParams(location.search).get("token") || "";
  const main = document.getElementById("main");
  const live = document.getElementById("live");

  const state = {
    user: "",
    tasks: new Map(),
    detail: null, // {task, ladder} of the open task
    route: { view: "tasks" },
    ui: {
      segment: undefined,
      metric: "loss",
      logY: false,
      bestAxis: "evaluations",
      filter: "",
      state: "",
      sort: ["pointId", 1],
      limit: 200,
    },
    fetching: false,
    again: false,
    lastFetchMs: 0,
    nextFetchAt: 0,
    retryMs: 0,
    error: null,
  };

  class ApiError extends Error {
    constructor(status, wire) {
      super(wire && wire.message ? wire.message : `HTTP ${status}`);
      this.status = status;
      this.code = wire && wire.code;
    }
  }

  async function api(path, init) {
    const res = await fetch(path, {
      ...init,
      headers: { "x-monitor-token": token, ...(init && init.headers) },
      cache: "no-store",
    });
    if (!res.ok) {
      let wire = null;
      try {
        wire = await res.json();
      } catch {
        // not JSON: the status says enough
      }
      throw new ApiError(res.status, wire);
    }
    return res;
  }

  function parseRoute() {
    const m = /^#\/task\/(\d+)(?:\/point\/(\d+))?$/.exec(location.hash);
    if (!m) return { view: "tasks" };
    return m[2] === undefined
      ? { view: "task", taskId: m[1] }
      : { view: "point", taskId: m[1], pointId: Number(m[2]) };
  }

  // ---------------------------------------------------------------------------- fetching
  async function loadTasks() {
    const r = await (await api("/api/tasks")).json();
    state.user = r.user;
    document.getElementById("who").textContent = `user ${r.user}`;
    state.tasks = new Map(r.tasks.map((t) => [t.taskId, t]));
  }

  async function loadDetail(taskId) {
    const t0 = performance.now();
    const r = await (await api(`/api/tasks/${taskId}?metric=${encodeURIComponent(state.ui.metric)}`)).json();
    state.lastFetchMs = performance.now() - t0;
    // where a large task's time goes (bench/monitor.ts reads it)
    GTM.timings = { fetched: performance.now(), fetchMs: state.lastFetchMs };
    state.detail = r;
    state.tasks.set(taskId, { ...r.task, points: undefined });
  }

  /** Fetches what the current view needs, then draws it; retries with backoff while steering is away. */
  async function refresh() {
    if (state.fetching) {
      state.again = true;
      return;
    }
    state.fetching = true;
    const route = state.route;
    try {
      if (route.view === "tasks") await loadTasks();
      else await loadDetail(route.taskId);
      state.error = null;
      state.retryMs = 0;
    } catch (err) {
      state.error = err;
      if (err.status === 503 || err.status === 502 || err instanceof TypeError) {
        state.retryMs = Math.min(15000, Math.max(1000, state.retryMs * 2));
        setTimeout(() => void refresh(), state.retryMs);
      }
    } finally {
      state.fetching = false;
      state.nextFetchAt = performance.now() + Math.max(1000, 3 * state.lastFetchMs);
    }
    render();
    if (state.again) {
      state.again = false;
      schedule();
    }
  }

  let timer = null;
  /** A refresh soon, but never two at once nor sooner than nextFetchAt. */
  function schedule() {
    if (timer !== null) return;
    const wait = Math.max(0, state.nextFetchAt - performance.now());
    timer = setTimeout(() => {
      timer = null;
      void refresh();
    }, wait);
  }

  // ------------------------------------------------------------------------------ live
  function connectEvents() {
    const es = new EventSource(`/api/events?token=${encodeURIComponent(token)}`);
    let connected = false;
    es.addEventListener("hello", () => {
      live.textContent = "live";
      live.className = "live on";
      if (connected) schedule(); // a reconnect: fetch what was missed
      connected = true;
    });
    es.addEventListener("task", (ev) => {
      const e = JSON.parse(ev.data);
      state.tasks.set(e.taskId, e.summary);
      if (state.route.view === "tasks") render();
      else if (state.route.taskId === e.taskId) schedule();
    });
    es.onerror = () => {
      live.textContent = "reconnecting…";
      live.className = "live off";
    };
  }

  // ----------------------------------------------------------------------------- actions
  async function act(verb) {
    const taskId = state.route.taskId;
    const ask =
      verb === "kill"
        ? `Kill task ${taskId}? Its running evaluations are stopped and it cannot be resumed.`
        : verb === "retry"
          ? `Requeue the failed, cancelled and budget-spent points of task ${taskId}?`
          : `${verb[0].toUpperCase()}${verb.slice(1)} task ${taskId}?`;
    if (!window.confirm(ask)) return;
    try {
      await api(`/api/tasks/${taskId}/${verb}`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ confirm: taskId }),
      });
      state.error = null;
    } catch (err) {
      state.error = err;
    }
    state.nextFetchAt = 0;
    void refresh();
  }

  // ------------------------------------------------------------------------------ views
  function banner() {
    const e = state.error;
    if (!e) return null;
    const away = e.status === 503 || e instanceof TypeError;
    return h(
      "div",
      { class: "banner", id: "banner" },
      away ? `steering is unreachable (${e.message}); trying again…` : `${e.code || "error"}: ${e.message}`,
    );
  }

  function setUi(change) {
    Object.assign(state.ui, change);
    render();
  }

  function taskView() {
    const { task: d, ladder, curves: c } = state.detail;
    const ui = state.ui;
    const segs = d.segments.map((s) => s.name);
    if (segs.length <= 1) ui.segment = undefined;
    const mine = (p) => ui.segment === undefined || p.segment === ui.segment;
    const points = d.points.filter(mine);
    const curveData = [c.x, ...c.y.filter((_, i) => mine(d.points[i]))];
    const curves = h("div", { class: "chart", id: "curves" });
    const best = h("div", { class: "chart", id: "best" });
    const sites = h("div", { id: "sites" });
    const metrics = c.metrics;
    const view = h(
      "div",
      {},
      GTM.summaryView(d, act),
      segs.length > 1
        ? h(
            "section",
            { id: "segments", class: "row" },
            "segment:",
            h(
              "select",
              {
                id: "segment",
                onchange: (e) => setUi({ segment: e.target.value === "*" ? undefined : e.target.value }),
              },
              h("option", { value: "*" }, "all segments"),
              d.segments.map((s) =>
                h(
                  "option",
                  { value: s.name, selected: s.name === ui.segment },
                  `${s.name} (${s.points} points, best ${GTM.fmt(s.best)})`,
                ),
              ),
            ),
          )
        : null,
      h(
        "section",
        {},
        h(
          "div",
          { class: "row" },
          h("h3", {}, "Learning curves"),
          h(
            "select",
            {
              id: "metric",
              onchange: (e) => {
                state.ui.metric = e.target.value;
                state.nextFetchAt = 0;
                void refresh();
              },
            },
            metrics.map((m) => h("option", { value: m, selected: m === ui.metric }, m)),
          ),
          h(
            "label",
            {},
            h("input", {
              type: "checkbox",
              id: "logy",
              checked: ui.logY,
              onchange: (e) => setUi({ logY: e.target.checked }),
            }),
            " log scale",
          ),
          h(
            "span",
            { class: "muted" },
            `${points.length} trials; hover a curve to name it, click to open it`,
          ),
        ),
        curves,
        h(
          "div",
          { class: "row" },
          h("h3", {}, "Best so far"),
          h(
            "select",
            { id: "best-axis", onchange: (e) => setUi({ bestAxis: e.target.value }) },
            ["evaluations", "wall", "compute"].map((a) =>
              h(
                "option",
                { value: a, selected: a === ui.bestAxis },
                `against ${a === "wall" ? "wall time" : a}`,
              ),
            ),
          ),
        ),
        best,
      ),
      GTM.ladderView(ladder, d.taskId, ui.segment),
      GTM.pointsView({ ...d, points }, ui, setUi),
      h("section", {}, h("h3", {}, "Sites and agents"), sites),
    );
    main.replaceChildren(...[banner(), view].filter(Boolean));
    const open = (pointId) => (location.hash = `#/task/${d.taskId}/point/${pointId}`);
    const t1 = performance.now();
    GTM.last = GTM.curvesChart(curves, points, curveData, { metric: c.metric, logY: ui.logY, open });
    const t2 = performance.now();
    GTM.bestChart(best, d, { axis: ui.bestAxis, logY: ui.logY });
    GTM.sitesChart(sites, d, Date.now());
    Object.assign(GTM.timings || {}, {
      dom: t1 - (GTM.timings?.fetched ?? t1),
      curves: t2 - t1,
      rest: performance.now() - t2,
    });
  }

  async function loadLog(box, attempt) {
    const { taskId, pointId } = state.route;
    box.textContent = "loading the log…";
    try {
      const q = attempt === undefined ? "" : `?attempt=${attempt}`;
      box.textContent = await (await api(`/api/tasks/${taskId}/points/${pointId}/log${q}`)).text();
    } catch (err) {
      box.textContent = `no log: ${err.message}`;
    }
    box.dataset.loaded = "1";
  }

  /** A point's page: the point in full (with its reports) from the server, then its log. */
  async function showPoint(r) {
    let body;
    try {
      const { point } = await (await api(`/api/tasks/${r.taskId}/points/${r.pointId}`)).json();
      body = GTM.pointView(state.detail.task, point, encodeURIComponent(token), loadLog);
    } catch (err) {
      body = h("p", { class: "error" }, err.message);
    }
    if (state.route !== r) return; // the user went elsewhere meanwhile
    body.id = "point";
    body.dataset.point = String(r.pointId);
    main.replaceChildren(...[banner(), body].filter(Boolean));
    document.body.dataset.rendered = "point";
  }

  function render() {
    const r = state.route;
    if (r.view === "tasks") {
      main.replaceChildren(
        ...[banner(), GTM.tasksView([...state.tasks.values()], Date.now())].filter(Boolean),
      );
    } else if (!state.detail || state.detail.task.taskId !== r.taskId) {
      main.replaceChildren(...[banner(), h("p", { class: "muted" }, "loading…")].filter(Boolean));
      return;
    } else if (r.view === "task") {
      // a live re-render of the point page would reload its log: only the task page follows events
      taskView();
    } else {
      if (document.getElementById("point")?.dataset.point === String(r.pointId)) return;
      void showPoint(r);
      return;
    }
    document.body.dataset.rendered = r.view;
    if (!performance.getEntriesByName("gt-first-render").length) performance.mark("gt-first-render");
  }

  function onRoute() {
    document.getElementById("tip").hidden = true; // a curve's name does not outlive its chart
    const before = state.route;
    state.route = parseRoute();
    const same = before.taskId === state.route.taskId && state.detail;
    if (state.route.view !== "tasks" && same) render();
    else {
      delete document.body.dataset.rendered;
      state.nextFetchAt = 0;
      render();
      void refresh();
    }
  }

  window.addEventListener("hashchange", onRoute);
  onRoute();
  connectEvents();
})();
