// The monitor page's charts, drawn with uPlot (thousands of series on one canvas): every trial's
// learning curve, the best-so-far curve, and the user's running evaluations per site over time.
// A curve is found by hovering: the nearest series at the cursor's x is looked up directly (no
// legend: a DOM row per series would cost more than the drawing) and drawn again on an overlay.
(() => {
  "use strict";
  const GTM = (window.GTM = window.GTM || {});
  const { h, fmt } = GTM;

  const PALETTE = ["#2d6cdf", "#2e9d5b", "#d2453b", "#c98a10", "#7a5cc9", "#17a2b8", "#e0609a", "#5b6b7f"];
  const STATE_COLOUR = {
    done: "rgba(46,157,91,0.35)",
    running: "rgba(45,108,223,0.8)",
    paused: "rgba(122,92,201,0.45)",
    stopped: "rgba(201,138,16,0.3)",
    failed: "rgba(210,69,59,0.5)",
    queued: "rgba(104,112,131,0.3)",
    cancelled: "rgba(104,112,131,0.3)",
    "budget-spent": "rgba(104,112,131,0.3)",
  };

  const positive = (data) => data.slice(1).every((y) => y.every((v) => v === null || v > 0));

  /**
   * Learning curves of `points` (data: [x, one row per point], as the server sends them): hover
   * names the nearest one in the tip, click opens it. Returns the uPlot.
   */
  function curvesChart(el, points, data, o) {
    const logY = o.logY && positive(data);
    const width = Math.max(400, el.clientWidth || 900);
    const series = [
      {},
      ...points.map((p) => ({
        stroke: STATE_COLOUR[p.state] || "rgba(0,0,0,0.3)",
        width: 1,
        spanGaps: true,
        points: { show: false },
      })),
    ];
    const overlay = h("canvas", { class: "overlay" });
    const tip = document.getElementById("tip");
    let hovered = -1;
    const drawHover = (u) => {
      const ctx = overlay.getContext("2d");
      const dpr = window.devicePixelRatio || 1;
      overlay.width = u.over.clientWidth * dpr;
      overlay.height = u.over.clientHeight * dpr;
      overlay.style.width = `${u.over.clientWidth}px`;
      overlay.style.height = `${u.over.clientHeight}px`;
      overlay.style.left = u.over.style.left || `${u.over.offsetLeft}px`;
      overlay.style.top = u.over.style.top || `${u.over.offsetTop}px`;
      ctx.clearRect(0, 0, overlay.width, overlay.height);
      if (hovered < 1) return;
      ctx.scale(dpr, dpr);
      ctx.strokeStyle = "#111";
      ctx.lineWidth = 2.5;
      ctx.beginPath();
      let started = false;
      const ys = u.data[hovered];
      for (let i = 0; i < u.data[0].length; i++) {
        if (ys[i] === null) continue;
        const px = u.valToPos(u.data[0][i], "x");
        const py = u.valToPos(ys[i], "y");
        if (started) ctx.lineTo(px, py);
        else ctx.moveTo(px, py);
        started = true;
      }
      ctx.stroke();
    };
    const nearest = (u) => {
      const idx = u.cursor.idx;
      if (idx === null || idx === undefined || u.cursor.top < 0) return -1;
      let best = -1;
      let bestD = 12; // pixels: farther than this, nothing is hovered
      for (let s = 1; s < u.data.length; s++) {
        const v = u.data[s][idx];
        if (v === null) continue;
        const d = Math.abs(u.valToPos(v, "y") - u.cursor.top);
        if (d < bestD) {
          bestD = d;
          best = s;
        }
      }
      return best;
    };
    const opts = {
      width,
      height: 320,
      legend: { show: false },
      cursor: { drag: { x: true, y: false }, points: { show: false } },
      scales: { x: { time: false }, y: logY ? { distr: 3 } : {} },
      axes: [{ label: o.xLabel || "resource" }, { label: o.metric + (logY ? " (log)" : "") }],
      series,
      hooks: {
        setCursor: [
          (u) => {
            const s = nearest(u);
            if (s !== hovered) {
              hovered = s;
              drawHover(u);
            }
            if (s < 1) {
              tip.hidden = true;
              return;
            }
            const p = points[s - 1];
            const rect = u.over.getBoundingClientRect();
            tip.hidden = false;
            tip.textContent = `point ${p.pointId}${p.trial ? ` (${p.trial})` : ""} · ${p.state} · ${o.metric} ${fmt(u.data[s][u.cursor.idx])} at ${fmt(u.data[0][u.cursor.idx])}`;
            tip.style.left = `${rect.left + u.cursor.left + 12}px`;
            tip.style.top = `${rect.top + u.cursor.top + 12}px`;
            el.dataset.hovered = String(p.pointId);
          },
        ],
      },
    };
    const u = new uPlot(opts, data, el);
    u.over.parentNode.append(overlay);
    u.over.addEventListener("mouseleave", () => {
      tip.hidden = true;
      hovered = -1;
      drawHover(u);
    });
    // the curve under the click itself, not the last hovered one: a live update may have drawn this
    // chart anew since the mouse last moved, and a new chart has hovered nothing yet
    u.over.addEventListener("click", (ev) => {
      const r = u.over.getBoundingClientRect();
      u.setCursor({ left: ev.clientX - r.left, top: ev.clientY - r.top });
      const s = nearest(u);
      if (s > 0) o.open(points[s - 1].pointId);
    });
    return u;
  }

  /** Best-so-far loss against evaluations, wall time (s since the task began) or compute (s of evaluation). */
  function bestData(d, axis) {
    const ended = [];
    for (const p of d.points) {
      for (const [startedAt, finishedAt, status, loss] of p.runs) {
        if (status === "ok" && loss !== null)
          ended.push({ at: finishedAt, loss, dur: startedAt ? finishedAt - startedAt : 0 });
      }
    }
    ended.sort((a, b) => a.at - b.at);
    const x = [];
    const y = [];
    let best = Infinity;
    let compute = 0;
    ended.forEach((e, i) => {
      compute += e.dur;
      best = Math.min(best, e.loss);
      x.push(axis === "wall" ? (e.at - d.createdAt) / 1000 : axis === "compute" ? compute / 1000 : i + 1);
      y.push(best);
    });
    return [x, y];
  }

  function bestChart(el, d, o) {
    const data = bestData(d, o.axis);
    const logY = o.logY && data[1].every((v) => v > 0);
    const label = { evaluations: "evaluations", wall: "wall time (s)", compute: "compute (s)" }[o.axis];
    return new uPlot(
      {
        width: Math.max(300, el.clientWidth || 600),
        height: 220,
        legend: { show: false },
        scales: { x: { time: false }, y: logY ? { distr: 3 } : {} },
        axes: [{ label }, { label: "best loss" + (logY ? " (log)" : "") }],
        series: [{}, { stroke: "#2d6cdf", width: 2, paths: uPlot.paths.stepped({ align: 1 }) }],
      },
      data,
      el,
    );
  }

  /** Running evaluations per site over time, from the attempts' start and end (and those running now). */
  function sitesData(d, now) {
    const steps = new Map(); // site → [t, +1/-1][]
    const add = (site, t, delta) => {
      const key = site ?? "(unknown)";
      if (!steps.has(key)) steps.set(key, []);
      steps.get(key).push([t, delta]);
    };
    const agents = new Map();
    for (const p of d.points) {
      for (const [startedAt, finishedAt, status, , site, agent] of p.runs) {
        if (startedAt) {
          add(site, startedAt, 1);
          add(site, finishedAt, -1);
        }
        const k = `${site ?? "-"} / ${agent ?? "-"}`;
        const s = agents.get(k) || { evaluations: 0, failed: 0, running: 0, busyMs: 0 };
        s.evaluations++;
        if (status === "failed" || status === "lost") s.failed++;
        if (startedAt) s.busyMs += finishedAt - startedAt;
        agents.set(k, s);
      }
      if (p.state === "running") {
        const started = p.firstReportAt ?? now;
        add(p.site, started, 1);
        add(p.site, now, -1);
        const k = `${p.site ?? "-"} / ${p.agent ?? "-"}`;
        const s = agents.get(k) || { evaluations: 0, failed: 0, running: 0, busyMs: 0 };
        s.running++;
        agents.set(k, s);
      }
    }
    const sites = [...steps.keys()].sort();
    const times = [...new Set(sites.flatMap((s) => steps.get(s).map(([t]) => t)))].sort((a, b) => a - b);
    const series = sites.map((s) => {
      const ev = steps
        .get(s)
        .slice()
        .sort((a, b) => a[0] - b[0] || a[1] - b[1]);
      const y = [];
      let level = 0;
      let j = 0;
      for (const t of times) {
        while (j < ev.length && ev[j][0] <= t) level += ev[j++][1];
        y.push(level);
      }
      return y;
    });
    return { sites, data: [times.map((t) => (t - d.createdAt) / 1000), ...series], agents };
  }

  function sitesChart(el, d, now) {
    const { sites, data, agents } = sitesData(d, now);
    const chart = h("div", { class: "chart" });
    el.append(chart);
    if (sites.length > 0) {
      new uPlot(
        {
          width: Math.max(300, el.clientWidth || 600),
          height: 200,
          legend: { show: true },
          scales: { x: { time: false } },
          axes: [{ label: "time since the task began (s)" }, { label: "running evaluations" }],
          series: [
            { label: "s" },
            ...sites.map((s, i) => ({
              label: s,
              stroke: PALETTE[i % PALETTE.length],
              width: 1.5,
              paths: uPlot.paths.stepped({ align: 1 }),
            })),
          ],
        },
        data,
        chart,
      );
    }
    el.append(
      h(
        "table",
        { id: "agents" },
        h(
          "thead",
          {},
          h(
            "tr",
            {},
            ["site / agent", "evaluations ended", "failed or lost", "running now", "busy (s)"].map((x) =>
              h("th", {}, x),
            ),
          ),
        ),
        h(
          "tbody",
          {},
          [...agents.entries()]
            .sort()
            .map(([k, s]) =>
              h(
                "tr",
                {},
                h("td", {}, k),
                h("td", { class: "num" }, s.evaluations),
                h("td", { class: "num" }, s.failed),
                h("td", { class: "num" }, s.running),
                h("td", { class: "num" }, fmt(Math.round(s.busyMs / 100) / 10)),
              ),
            ),
        ),
      ),
    );
  }

  Object.assign(GTM, { curvesChart, bestChart, sitesChart });
})();
