// The monitor page's DOM views: the task list, a task's summary and configuration, and the points
// table (detail.js has the rung ladder and a point's page). Every value from steering is hostile
// text: it goes into the page through textContent and attributes only (never innerHTML), and the
// server's CSP forbids inline script besides.
(() => {
  "use strict";
  const GTM = (window.GTM = window.GTM || {});

  /** h("td", {class: "num"}, "1.5", child…): an element; strings become text nodes. */
  function h(tag, attrs, ...children) {
    const el = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === undefined || v === null || v === false) continue;
      if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
      else if (k === "dataset") Object.assign(el.dataset, v);
      // through the CSSOM: the CSP refuses style attributes
      else if (k === "style") el.style.cssText = v;
      else el.setAttribute(k, v === true ? "" : String(v));
    }
    for (const c of children.flat()) {
      if (c === undefined || c === null || c === false) continue;
      el.append(c instanceof Node ? c : document.createTextNode(String(c)));
    }
    return el;
  }

  function fmt(v) {
    if (v === null || v === undefined) return "-";
    if (typeof v !== "number") return String(v);
    if (!Number.isFinite(v)) return String(v);
    if (Number.isInteger(v)) return String(v);
    const a = Math.abs(v);
    return a !== 0 && (a < 1e-3 || a >= 1e6) ? v.toExponential(3) : String(Number(v.toPrecision(5)));
  }

  function age(ms) {
    const s = Math.max(0, Math.round(ms / 1000));
    if (s < 60) return `${s} s`;
    if (s < 3600) return `${Math.round(s / 60)} min`;
    if (s < 86400) return `${(s / 3600).toFixed(1)} h`;
    return `${(s / 86400).toFixed(1)} d`;
  }

  const when = (t) => (t ? new Date(t).toISOString().replace("T", " ").slice(0, 19) : "-");
  const values = (v) =>
    Object.entries(v || {})
      .map(([k, x]) => `${k}=${fmt(x)}`)
      .join(", ");
  const state = (s) => h("span", { class: `state ${s}`, "data-state": s }, s);

  function bar(done, total) {
    const pct = total > 0 ? Math.min(100, (100 * done) / total) : 0;
    return h("span", { class: "bar", title: `${done}/${total}` }, h("span", { style: `width:${pct}%` }));
  }

  // -------------------------------------------------------------------------- task list
  function tasksView(tasks, now) {
    const rows = tasks
      .slice()
      .sort((a, b) => Number(b.taskId) - Number(a.taskId))
      .map((t) => {
        const c = t.counts;
        // stopped and paused trials reached their end too (steering's own count); older steering: done + failed
        const evaluated = c.evaluated ?? c.done + c.failed;
        return h(
          "tr",
          { class: "link", "data-task": t.taskId, onclick: () => (location.hash = `#/task/${t.taskId}`) },
          h("td", {}, h("a", { href: `#/task/${t.taskId}` }, t.taskId)),
          h("td", {}, t.outDS),
          h("td", {}, state(t.state)),
          h("td", {}, bar(evaluated, t.maxPoints), ` ${evaluated}/${t.maxPoints}`),
          h("td", { class: "num" }, c.running),
          h("td", { class: "num" }, c.failed),
          h("td", { class: "num" }, t.best ? fmt(t.best.loss) : "-"),
          h("td", { class: "num" }, age((t.finishedAt ?? now) - t.createdAt)),
        );
      });
    return h(
      "section",
      { id: "tasks" },
      h("h2", {}, "Tasks"),
      rows.length === 0
        ? h("p", { class: "muted" }, "No tasks yet: submit one with phpo --loadJson config.json.")
        : h(
            "table",
            {},
            h(
              "thead",
              {},
              h(
                "tr",
                {},
                ["task", "outDS", "state", "progress", "running", "failed", "best loss", "age"].map((x) =>
                  h("th", {}, x),
                ),
              ),
            ),
            h("tbody", {}, rows),
          ),
    );
  }

  // ------------------------------------------------------------------------ task summary
  /** Counts by point state, which add up to the points (the summary's counts leave some out). */
  function stateCounts(points) {
    const c = {
      queued: 0,
      running: 0,
      paused: 0,
      done: 0,
      failed: 0,
      stopped: 0,
      cancelled: 0,
      "budget-spent": 0,
    };
    for (const p of points) c[p.state] = (c[p.state] || 0) + 1;
    return c;
  }

  function configRows(spec) {
    const s = spec.scheduler;
    const rows = [
      ["container", spec.evaluationContainer],
      ["maxPoints", spec.maxPoints],
      ["nParallelEvaluation", spec.nParallelEvaluation],
      ["maxEvaluationJobs", spec.maxEvaluationJobs ?? `${2 * spec.maxPoints} (2 × maxPoints)`],
      ["sampler", spec.sampler ? JSON.stringify(spec.sampler) : "steering program / default"],
    ];
    if (s) {
      const { type, ...rest } = s;
      rows.push(["scheduler", type], ["scheduler settings", JSON.stringify(rest)]);
      if (s.max_t !== undefined) rows.push(["budget (max_t)", s.max_t]);
    } else rows.push(["scheduler", "none (every point trained in full)"]);
    return rows;
  }

  function summaryView(d, actions) {
    const counts = stateCounts(d.points);
    const total = Object.values(counts).reduce((a, b) => a + b, 0);
    const countText = Object.entries(counts)
      .filter(([, n]) => n > 0)
      .map(([k, n]) => `${n} ${k}`)
      .join(" + ");
    return h(
      "section",
      { id: "summary" },
      h(
        "div",
        { class: "row" },
        h("h2", {}, `Task ${d.taskId}`),
        state(d.state),
        h("span", { class: "muted" }, d.outDS),
        h(
          "span",
          { class: "row", style: "margin-left:auto" },
          ["pause", "resume", "retry", "kill"].map((verb) =>
            h(
              "button",
              { class: verb === "kill" ? "danger" : "", "data-action": verb, onclick: () => actions(verb) },
              verb,
            ),
          ),
        ),
      ),
      h(
        "div",
        { class: "grid2" },
        h(
          "dl",
          { class: "kv" },
          h("dt", {}, "points"),
          h("dd", { id: "counts" }, `${total} = ${countText || "0"} (of ${d.maxPoints})`),
          h("dt", {}, "jobs"),
          h("dd", {}, d.counts.jobs),
          h("dt", {}, "best"),
          h(
            "dd",
            { id: "best" },
            d.best
              ? h(
                  "a",
                  { href: `#/task/${d.taskId}/point/${d.best.pointId}` },
                  `loss ${fmt(d.best.loss)} at point ${d.best.pointId} (${values(d.best.values)})`,
                )
              : "no loss yet",
          ),
          h("dt", {}, "created"),
          h("dd", {}, when(d.createdAt)),
          h("dt", {}, "finished"),
          h("dd", {}, when(d.finishedAt)),
        ),
        h(
          "dl",
          { class: "kv" },
          configRows(d.spec).flatMap(([k, v]) => [h("dt", {}, k), h("dd", {}, fmt(v))]),
        ),
      ),
    );
  }

  // ------------------------------------------------------------------------ points table
  const POINT_COLUMNS = [
    ["pointId", "point", true],
    ["state", "state", false],
    ["segment", "segment", false],
    ["site", "site", false],
    ["attempts", "attempts", true],
    ["loss", "loss", true],
    ["trial", "trial", false],
  ];

  function pointsView(d, ui, rerender) {
    const keys = [...new Set(d.points.flatMap((p) => Object.keys(p.values)))].slice(0, 12);
    const filter = ui.filter.toLowerCase();
    let rows = d.points.filter(
      (p) =>
        (ui.segment === undefined || p.segment === ui.segment) &&
        (ui.state === "" || p.state === ui.state) &&
        (filter === "" ||
          `${p.pointId} ${p.state} ${p.segment ?? ""} ${p.site ?? ""} ${p.trial ?? ""} ${values(p.values)} ${p.error ?? ""}`
            .toLowerCase()
            .includes(filter)),
    );
    const [key, dir] = ui.sort;
    const get = (p) => (key.startsWith("v:") ? p.values[key.slice(2)] : p[key]);
    rows = rows.slice().sort((a, b) => {
      const x = get(a);
      const y = get(b);
      if (x === y) return a.pointId - b.pointId;
      if (x === null || x === undefined) return 1;
      if (y === null || y === undefined) return -1;
      return (x < y ? -1 : 1) * dir;
    });
    const shown = rows.slice(0, ui.limit);
    const head = [
      ...POINT_COLUMNS.map(([k, label, num]) => [k, label, num]),
      ...keys.map((k) => [`v:${k}`, k, false]),
    ];
    return h(
      "section",
      { id: "points" },
      h("h3", {}, "Points"),
      h(
        "div",
        { class: "row" },
        h("input", {
          type: "search",
          id: "points-filter",
          placeholder: "filter (id, state, site, value, error)",
          value: ui.filter,
          onchange: (e) => rerender({ filter: e.target.value }),
        }),
        h(
          "select",
          { id: "points-state", onchange: (e) => rerender({ state: e.target.value }) },
          ["", "queued", "running", "paused", "done", "failed", "stopped", "cancelled", "budget-spent"].map(
            (s) => h("option", { value: s, selected: s === ui.state }, s || "any state"),
          ),
        ),
        h("span", { class: "muted" }, `${rows.length} of ${d.points.length} points`),
      ),
      h(
        "table",
        {},
        h(
          "thead",
          {},
          h(
            "tr",
            {},
            head.map(([k, label, num]) =>
              h(
                "th",
                {
                  class: `sortable${num ? " num" : ""}`,
                  "data-sort": k,
                  onclick: () => rerender({ sort: [k, ui.sort[0] === k ? -ui.sort[1] : 1] }),
                },
                label + (ui.sort[0] === k ? (ui.sort[1] > 0 ? " ▲" : " ▼") : ""),
              ),
            ),
          ),
        ),
        h(
          "tbody",
          {},
          shown.map((p) =>
            h(
              "tr",
              {
                class: "link",
                "data-point": p.pointId,
                onclick: () => (location.hash = `#/task/${d.taskId}/point/${p.pointId}`),
              },
              h("td", { class: "num" }, p.pointId),
              h("td", {}, state(p.state)),
              h("td", {}, p.segment ?? "-"),
              h("td", {}, p.site ?? "-"),
              h("td", { class: "num" }, p.attempts),
              h("td", { class: "num" }, fmt(p.loss)),
              h("td", {}, p.trial ?? "-"),
              keys.map((k) => h("td", {}, fmt(p.values[k]))),
            ),
          ),
        ),
      ),
      rows.length > shown.length
        ? h(
            "button",
            { onclick: () => rerender({ limit: ui.limit + 200 }) },
            `show 200 more of ${rows.length - shown.length}`,
          )
        : null,
    );
  }

  Object.assign(GTM, { h, fmt, age, when, values, state, tasksView, summaryView, pointsView });
})();
