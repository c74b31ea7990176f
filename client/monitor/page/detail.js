// The monitor page's detail views: the rung ladder of a task and a point's page. Like views.js,
// every value from steering goes in as text (GTM.h), never as markup.
(() => {
  "use strict";
  const GTM = window.GTM;
  const { h, fmt, when, values, state } = GTM;

  // -------------------------------------------------------------------------- ladder
  const FATE_COLOUR = { promoted: "#2e9d5b", stopped: "#d2453b", waiting: "#7a5cc9", running: "#2d6cdf" };

  /** One rung: its trials as dots by rank (best left), coloured by fate, and the cut-off line. */
  function drawRung(canvas, rung, mode, fates) {
    const w = canvas.clientWidth || 600;
    const hgt = canvas.clientHeight || 70;
    const dpr = window.devicePixelRatio || 1;
    canvas.width = w * dpr;
    canvas.height = hgt * dpr;
    const ctx = canvas.getContext("2d");
    ctx.scale(dpr, dpr);
    const vals = rung.values;
    if (vals.length === 0) return;
    let lo = rung.cutoff ?? Infinity;
    let hi = rung.cutoff ?? -Infinity;
    for (const v of vals) {
      if (v < lo) lo = v;
      if (v > hi) hi = v;
    }
    const y = (v) =>
      hi === lo ? hgt / 2 : 6 + ((mode === "min" ? v - lo : hi - v) / (hi - lo)) * (hgt - 12);
    const n = vals.length;
    vals.forEach((v, i) => {
      ctx.fillStyle = FATE_COLOUR[fates[rung.fate[i]]];
      ctx.fillRect(4 + (n === 1 ? 0 : (i / (n - 1)) * (w - 8)) - 1.5, y(v) - 1.5, 3, 3);
    });
    if (rung.cutoff !== null) {
      ctx.strokeStyle = "#1d2330";
      ctx.setLineDash([4, 3]);
      ctx.beginPath();
      ctx.moveTo(0, y(rung.cutoff));
      ctx.lineTo(w, y(rung.cutoff));
      ctx.stroke();
    }
  }

  function ladderView(ladder, taskId, segment) {
    if (!ladder) return null;
    const rungs = ladder.rungs.filter((r) => segment === undefined || r.segment === segment);
    const section = h(
      "section",
      { id: "ladder" },
      h("h3", {}, `Rung ladder (${ladder.scheduler}, ${ladder.metric}, ${ladder.mode})`),
      h("p", { class: "muted", id: "rule" }, ladder.rule),
      h(
        "p",
        { class: "legend" },
        ["promoted", "stopped", "waiting", "running"].map((f) =>
          h("span", {}, h("span", { class: `dot ${f}` }), f === "promoted" ? "went on" : f),
        ),
        h("span", {}, "- - cut-off"),
      ),
    );
    const draws = [];
    for (const r of rungs) {
      const canvas = h("canvas", {});
      const reached = r.values.length;
      section.append(
        h(
          "div",
          { class: "rung", "data-level": r.level, "data-segment": r.segment ?? "" },
          h(
            "div",
            { class: "row" },
            h("strong", {}, `rung ${fmt(r.level)}${r.segment ? ` · ${r.segment}` : ""}`),
            h("span", { "data-count": "reached" }, `${reached} reached`),
            h("span", { "data-count": "promoted" }, `${r.counts.promoted} went on`),
            h("span", { "data-count": "stopped" }, `${r.counts.stopped} stopped`),
            h("span", { "data-count": "waiting" }, `${r.counts.waiting} waiting`),
            h("span", { "data-count": "running" }, `${r.counts.running} running`),
            h("span", { "data-count": "cutoff" }, `cut-off ${fmt(r.cutoff)}`),
            h("span", { class: "muted" }, `${r.recorded} recorded by steering`),
          ),
          canvas,
          h(
            "details",
            {},
            h("summary", {}, "trials at this rung, best first"),
            h(
              "table",
              {},
              h("tbody", {}, [
                ...r.top.map((t, i) =>
                  h(
                    "tr",
                    { class: "link", onclick: () => (location.hash = `#/task/${taskId}/point/${t.pointId}`) },
                    h("td", { class: "num" }, i + 1),
                    h("td", {}, `point ${t.pointId}`),
                    h("td", {}, t.trial ?? ""),
                    h("td", { class: "num" }, fmt(t.value)),
                    h("td", {}, h("span", { class: `dot ${t.fate}` }), t.fate),
                  ),
                ),
                r.values.length > r.top.length
                  ? h("tr", {}, h("td", {}, `… ${r.values.length - r.top.length} more`))
                  : null,
              ]),
            ),
          ),
        ),
      );
      draws.push(() => drawRung(canvas, r, ladder.mode, ladder.fates));
    }
    // drawn once the section is in the page and has a size
    requestAnimationFrame(() => draws.forEach((d) => d()));
    return section;
  }

  // ---------------------------------------------------------------------------- a point
  /** "EVALUATION_FAILED: exit code 3" → its class; otherwise the attempt's status. */
  function failureClass(p) {
    const m = /^([A-Z][A-Z_]+)\b/.exec(p.error ?? "");
    if (m) return m[1];
    const last = (p.history ?? []).filter((a) => a.status !== "ok").pop();
    return last ? last.status : null;
  }

  function pointView(d, p, token, loadLog) {
    const base = `/api/tasks/${d.taskId}/points/${p.pointId}`;
    const attempts = p.history ?? [];
    const logBox = h("pre", { class: "log", id: "log" }, "loading the log…");
    const section = h(
      "section",
      { id: "point" },
      h("p", {}, h("a", { href: `#/task/${d.taskId}` }, `← task ${d.taskId}`)),
      h("div", { class: "row" }, h("h2", {}, `Point ${p.pointId}`), state(p.state)),
      h(
        "dl",
        { class: "kv" },
        h("dt", {}, "values"),
        h("dd", {}, values(p.values)),
        h("dt", {}, "loss"),
        h("dd", {}, fmt(p.loss)),
        h("dt", {}, "segment"),
        h("dd", {}, p.segment ?? "-"),
        h("dt", {}, "trial"),
        h("dd", {}, p.trial ?? "-"),
        h("dt", {}, "attempts"),
        h("dd", {}, p.attempts),
        h("dt", {}, "site / agent"),
        h("dd", {}, `${p.site ?? "-"} / ${p.agent ?? "-"}`),
        p.error ? h("dt", {}, "failure") : null,
        p.error
          ? h("dd", { class: "error", id: "failure" }, `${failureClass(p) ?? "failed"}: ${p.error}`)
          : null,
        h("dt", {}, "artifacts"),
        h(
          "dd",
          {},
          p.metricsKeys.length > 0
            ? h("a", { href: `${base}/metrics?token=${token}`, download: "" }, "metrics tarball")
            : "no metrics tarball",
          " · ",
          p.checkpointKey
            ? h("a", { href: `${base}/checkpoint?token=${token}`, download: "" }, "checkpoint")
            : "no checkpoint",
        ),
      ),
      h("h3", {}, "Attempts"),
      attempts.length === 0
        ? h("p", { class: "muted" }, "no attempt has ended yet")
        : h(
            "table",
            { id: "attempts" },
            h(
              "thead",
              {},
              h(
                "tr",
                {},
                [
                  "job",
                  "attempt",
                  "site",
                  "agent",
                  "status",
                  "loss",
                  "started",
                  "finished",
                  "error",
                  "log",
                ].map((x) => h("th", {}, x)),
              ),
            ),
            h(
              "tbody",
              {},
              attempts.map((a) =>
                h(
                  "tr",
                  {},
                  h("td", {}, a.job),
                  h("td", {}, a.attempt),
                  h("td", {}, a.site ?? "-"),
                  h("td", {}, a.agent ?? "-"),
                  h("td", {}, state(a.status)),
                  h("td", { class: "num" }, fmt(a.loss)),
                  h("td", {}, when(a.startedAt)),
                  h("td", {}, when(a.finishedAt)),
                  h("td", { class: "error" }, a.error ?? ""),
                  h("td", {}, h("button", { onclick: () => loadLog(logBox, a.attempt) }, "log")),
                ),
              ),
            ),
          ),
      h("h3", {}, "Reports"),
      p.reports.length === 0
        ? h("p", { class: "muted" }, "no reports")
        : h(
            "table",
            { id: "reports" },
            h(
              "thead",
              {},
              h(
                "tr",
                {},
                ["resource", "loss", "metrics", "job", "attempt", "site", "at"].map((x) => h("th", {}, x)),
              ),
            ),
            h(
              "tbody",
              {},
              p.reports.map((r) =>
                h(
                  "tr",
                  {},
                  h("td", { class: "num" }, fmt(r.resource)),
                  h("td", { class: "num" }, fmt(r.loss)),
                  h("td", {}, values(r.metrics)),
                  h("td", {}, r.job ?? "-"),
                  h("td", {}, r.attempt ?? "-"),
                  h("td", {}, r.site ?? "-"),
                  h("td", {}, when(r.at)),
                ),
              ),
            ),
          ),
      h("h3", {}, "Log"),
      logBox,
    );
    loadLog(logBox, undefined);
    return section;
  }

  Object.assign(GTM, { ladderView, pointView });
})();
