// Time-series charts in hand-written SVG: the average as a line, min..max as a light band,
// anomalies as markers over their expected band, changes as vertical markers (the suspected
// and the tagged change emphasized), the incident's span, axes, and a hover tooltip with a
// crosshair shared by every chart on the page.

import { clear, fmtClock, fmtDateTime, fmtValue, h, s } from "./util.js";

const hover = new EventTarget(); // {detail: {ts, source}} — one crosshair across all charts
const PALETTE = ["var(--series-1)", "var(--series-2)", "var(--series-3)", "var(--series-4)"];
const M = { left: 46, right: 10, top: 12, bottom: 20 };

function niceStep(range, target) {
  const raw = range / Math.max(1, target);
  const mag = 10 ** Math.floor(Math.log10(raw));
  const n = raw / mag;
  return (n <= 1 ? 1 : n <= 2 ? 2 : n <= 2.5 ? 2.5 : n <= 5 ? 5 : 10) * mag;
}

function yDomain(values) {
  let lo = Math.min(...values);
  let hi = Math.max(...values);
  if (!Number.isFinite(lo) || !Number.isFinite(hi)) return [0, 1];
  if (lo >= 0 || lo > -0.05 * Math.abs(hi)) lo = 0;
  if (hi === lo) hi = lo + (Math.abs(lo) || 1);
  const step = niceStep(hi - lo, 4);
  return [Math.floor(lo / step) * step, Math.ceil((hi * 1.04) / step) * step];
}

const TIME_STEPS = [1, 2, 5, 10, 15, 30, 60, 120, 180, 360, 720, 1440, 2880].map((m) => m * 60000);

function timeTicks(lo, hi, width) {
  const want = Math.max(3, Math.floor(width / 48));
  const step = TIME_STEPS.find((st) => (hi - lo) / st <= want) || TIME_STEPS.at(-1);
  const tz = new Date(lo).getTimezoneOffset() * 60000;
  const out = [];
  for (let t = Math.ceil((lo - tz) / step) * step + tz; t <= hi; t += step) out.push(t);
  return out;
}

function nearestIndex(points, ts) {
  let a = 0;
  let b = points.length - 1;
  if (b < 0) return -1;
  while (b - a > 1) {
    const m = (a + b) >> 1;
    if (points[m].ts < ts) a = m;
    else b = m;
  }
  return Math.abs(points[a].ts - ts) <= Math.abs(points[b].ts - ts) ? a : b;
}

/**
 * A chart in `el` (a sized container). opts: {metric, unit, window: [lo, hi], series: [{series,
 * step_ms, points}], anomalies, changes, span: [start, end], suspects: Set, tagged}.
 */
export class TimeChart {
  constructor(el, opts) {
    this.el = el;
    this.o = opts;
    this.onHover = (e) => this.showHover(e.detail);
    hover.addEventListener("hover", this.onHover);
    this.render();
  }

  destroy() {
    hover.removeEventListener("hover", this.onHover);
  }

  render() {
    const { o } = this;
    const width = Math.max(240, this.el.clientWidth || 400);
    const height = Math.max(120, this.el.clientHeight || 150);
    this.w = width;
    this.h = height;
    const [lo, hi] = o.window;
    const series = o.series.slice(0, PALETTE.length);
    const step = series[0]?.step_ms || Math.max(1, (hi - lo) / 300);
    const anomalies = o.anomalies || [];
    const vals = [];
    for (const se of series) for (const p of se.points) vals.push(series.length === 1 ? p.max : p.avg, p.min);
    for (const a of anomalies) vals.push(a.value, a.expected, Math.max(a.lower, 0), a.upper);
    const [ylo, yhi] = yDomain(vals.length ? vals : [0, 1]);
    const pw = width - M.left - M.right;
    const ph = height - M.top - M.bottom;
    const x = (t) => M.left + ((t - lo) / (hi - lo)) * pw;
    const y = (v) => M.top + (1 - (Math.min(Math.max(v, ylo), yhi) - ylo) / (yhi - ylo)) * ph;
    Object.assign(this, { x, y, lo, hi, step, series, anomalies, pw, ph });

    const svg = s("svg", { class: "chart-svg", width, height, viewBox: `0 0 ${width} ${height}`,
                           role: "img", "aria-label": `${o.metric} chart` });
    const defs = s("defs", {}, s("clipPath", { id: `clip-${o.id}` },
      s("rect", { x: M.left, y: M.top - 2, width: pw, height: ph + 4 })));
    svg.append(defs);

    // grid and y axis
    const ystep = niceStep(yhi - ylo, 4);
    const grid = s("g", { class: "grid" });
    for (let v = ylo; v <= yhi + ystep / 1e6; v += ystep) {
      grid.append(s("line", { x1: M.left, x2: width - M.right, y1: y(v), y2: y(v) }),
        s("text", { x: M.left - 6, y: y(v) + 3.5, "text-anchor": "end", class: "tick" }, fmtValue(v, o.unit)));
    }
    for (const t of timeTicks(lo, hi, pw)) {
      grid.append(s("line", { class: "vgrid", x1: x(t), x2: x(t), y1: M.top, y2: M.top + ph }),
        s("text", { x: x(t), y: height - 5, "text-anchor": "middle", class: "tick" }, fmtClock(t, false)));
    }
    svg.append(grid);

    const plot = s("g", { "clip-path": `url(#clip-${o.id})` });
    svg.append(plot);

    // the incident's span: a faint wash and a strip along the top
    if (o.span) {
      const [a, b] = o.span;
      const xa = Math.max(M.left, x(a));
      const xb = Math.min(M.left + pw, x(b ?? hi));
      if (xb > xa) {
        plot.append(s("rect", { class: "span-wash", x: xa, y: M.top, width: xb - xa, height: ph }),
          s("rect", { class: "span-strip", x: xa, y: M.top - 2, width: xb - xa, height: 3 }));
      }
    }

    // anomalies' expected bands (behind the data)
    const bands = s("g", { class: "anomaly-bands" });
    const bw = Math.max(2, (step / (hi - lo)) * pw);
    for (const a of anomalies) {
      const top = y(a.upper);
      const bottom = y(Math.max(a.lower, ylo));
      bands.append(s("rect", { x: x(a.ts) - bw / 2, width: bw, y: top, height: Math.max(1.5, bottom - top) }));
    }
    plot.append(bands);

    // series: min..max band (single series) and the average line
    series.forEach((se, i) => {
      const pts = se.points;
      if (!pts.length) return;
      if (series.length === 1 && pts.length > 1) {
        const up = pts.map((p) => `${x(p.ts).toFixed(1)},${y(p.max).toFixed(1)}`);
        const down = pts.slice().reverse().map((p) => `${x(p.ts).toFixed(1)},${y(p.min).toFixed(1)}`);
        plot.append(s("path", { class: "minmax", d: `M${up.join("L")}L${down.join("L")}Z` }));
      }
      let d = "";
      let prev = null;
      for (const p of pts) {
        const gap = prev !== null && p.ts - prev > se.step_ms * 2.5; // missing buckets: break the line
        d += `${d && !gap ? "L" : "M"}${x(p.ts).toFixed(1)},${y(p.avg).toFixed(1)}`;
        prev = p.ts;
      }
      plot.append(s("path", { class: "line", d, stroke: PALETTE[i], "data-series": se.series }));
      if (pts.length === 1) plot.append(s("circle", { cx: x(pts[0].ts), cy: y(pts[0].avg), r: 2.5, fill: PALETTE[i] }));
    });

    // anomaly markers
    const marks = s("g", { class: "anomaly-marks" });
    for (const a of anomalies) marks.append(s("circle", { cx: x(a.ts), cy: y(a.value), r: 2.6 }));
    plot.append(marks);

    // change markers
    const chg = s("g", { class: "changes" });
    for (const c of o.changes || []) {
      if (c.ts < lo || c.ts > hi) continue;
      const kind = c.change_id === o.tagged ? "tagged" : o.suspects?.has(c.change_id) ? "suspect"
        : c.service === o.service ? "own" : "other";
      const cx = x(c.ts);
      chg.append(s("g", { class: `chg ${kind}`, "data-change": c.change_id },
        s("line", { x1: cx, x2: cx, y1: M.top, y2: M.top + ph }),
        s("path", { d: `M${cx - 4},${M.top - 3}L${cx + 4},${M.top - 3}L${cx},${M.top + 3}Z` })));
    }
    svg.append(chg);

    svg.append(s("line", { class: "axis", x1: M.left, x2: M.left + pw, y1: M.top + ph, y2: M.top + ph }));

    // hover
    this.cross = s("line", { class: "crosshair", y1: M.top, y2: M.top + ph, visibility: "hidden" });
    this.dots = s("g", { class: "hover-dots" });
    svg.append(this.cross, this.dots);
    const overlay = s("rect", { class: "overlay", x: M.left, y: 0, width: pw, height: M.top + ph });
    overlay.addEventListener("mousemove", (e) => {
      const r = overlay.getBoundingClientRect();
      const ts = lo + ((e.clientX - r.left) / r.width) * (hi - lo);
      hover.dispatchEvent(new CustomEvent("hover", { detail: { ts, source: this } }));
    });
    overlay.addEventListener("mouseleave", () => hover.dispatchEvent(new CustomEvent("hover", { detail: null })));
    svg.append(overlay);

    this.tip = h("div", { class: "chart-tip", hidden: true });
    clear(this.el, svg, this.tip);
  }

  showHover(detail) {
    if (!detail || detail.ts < this.lo || detail.ts > this.hi) {
      this.cross.setAttribute("visibility", "hidden");
      this.dots.replaceChildren();
      this.tip.hidden = true;
      return;
    }
    const { x, y, step } = this;
    const first = this.series[0]?.points || [];
    const i = nearestIndex(first, detail.ts);
    const ts = i >= 0 && Math.abs(first[i].ts - detail.ts) <= step ? first[i].ts : detail.ts;
    const cx = x(ts);
    this.cross.setAttribute("x1", cx);
    this.cross.setAttribute("x2", cx);
    this.cross.setAttribute("visibility", "visible");
    this.dots.replaceChildren();
    const rows = [];
    this.series.forEach((se, k) => {
      const j = nearestIndex(se.points, ts);
      if (j < 0 || Math.abs(se.points[j].ts - ts) > step) return;
      const p = se.points[j];
      this.dots.append(s("circle", { cx: x(p.ts), cy: y(p.avg), r: 3.2, fill: PALETTE[k] }));
      rows.push(h("div", { class: "tip-row" }, h("i", { class: "sw", style: { background: PALETTE[k] } }),
        h("span", { class: "tip-label" }, this.series.length > 1 ? se.series : "avg"),
        h("b", {}, fmtValue(p.avg, this.o.unit)),
        h("span", { class: "muted" }, ` ${fmtValue(p.min, this.o.unit)} – ${fmtValue(p.max, this.o.unit)}`)));
    });
    if (detail.source !== this) {
      this.tip.hidden = true;
      return;
    }
    const near = this.anomalies.filter((a) => Math.abs(a.ts - ts) <= step / 2 + 1);
    for (const a of near.slice(0, 3)) {
      rows.push(h("div", { class: "tip-row anomaly" }, h("i", { class: "sw dot" }),
        h("span", {}, `${a.kind} ${a.direction > 0 ? "↑" : a.direction < 0 ? "↓" : ""} `),
        h("b", {}, fmtValue(a.value, this.o.unit)),
        h("span", { class: "muted" },
          ` expected ${fmtValue(a.expected, this.o.unit)} (${fmtValue(Math.max(a.lower, 0), this.o.unit)}–${fmtValue(a.upper, this.o.unit)}), score ${a.score.toFixed(2)}`)));
    }
    const tol = Math.max(step, (this.hi - this.lo) / 80);
    for (const c of (this.o.changes || []).filter((c) => Math.abs(c.ts - detail.ts) <= tol).slice(0, 3)) {
      const kind = c.change_id === this.o.tagged ? "tagged cause" : this.o.suspects?.has(c.change_id) ? "suspect" : "";
      rows.push(h("div", { class: "tip-row change" }, h("i", { class: "sw diamond" }),
        h("span", {}, `${c.change_type} ${c.service} ${c.version || ""}`),
        h("span", { class: "muted" }, ` ${c.change_id} at ${fmtClock(c.ts)}`),
        kind ? h("b", { class: "tip-kind" }, ` ${kind}`) : null));
    }
    clear(this.tip, h("div", { class: "tip-time" }, fmtDateTime(ts, true)), rows);
    this.tip.hidden = false;
    const tw = this.tip.offsetWidth;
    const left = cx + 12 + tw > this.w ? cx - 12 - tw : cx + 12;
    this.tip.style.left = `${Math.max(0, left)}px`;
    this.tip.style.top = `${M.top}px`;
  }
}
