// The blast radius as an SVG graph: a deterministic layered layout by call depth from the root
// (callers to the left, the root on the right), edges caller → callee with arrows, the root
// highlighted, measured services colored by how hard they were hit, predicted-only ones dimmed.

import { clear, fmtPct, h, humanize, s } from "./util.js";

// The same first-match rules the incident builder uses for a "material" impact (operators/incidents.py).
const RULES = [["error", "abs", 0.02], ["latency", "rel", 0.35], ["duration", "rel", 0.35], ["cpu", "abs", 0.12],
  ["saturation", "abs", 0.15], ["memory", "rel", 0.25], ["request", "rel", 0.35], ["rate", "rel", 0.35]];

function rule(name) {
  const n = name.toLowerCase();
  return RULES.find(([k]) => n.includes(k)) || [name, "score", 0.5];
}

/** How hard a service was hit: its largest shift in multiples of the material threshold. */
export function impactScore(impact) {
  let best = 0;
  for (const [name, v] of Object.entries(impact || {})) best = Math.max(best, Math.abs(v) / rule(name)[2]);
  return best;
}

export function impactLevel(score) {
  return score >= 25 ? "critical" : score >= 10 ? "high" : score >= 3 ? "medium" : score > 0 ? "low" : "none";
}

export function fmtImpact(name, v) {
  const kind = rule(name)[1];
  if (kind === "abs") return `${v >= 0 ? "+" : ""}${(v * 100).toFixed(1)} pp`;
  if (kind === "rel") return `${v >= 0 ? "+" : ""}${Math.round(v * 100)}%`;
  return v.toFixed(2);
}

const NH = 26;
const GAP_Y = 10;
const PAD = 18;
const MAX_PER_COL = 9;

/** Columns of services: the root's column last, each caller one column left of its callee. */
function layout(nodes, edges, root) {
  const callers = new Map([...nodes.keys()].map((n) => [n, []]));
  for (const e of edges) callers.get(e.callee)?.push(e.caller);
  const depth = new Map();
  if (root && nodes.has(root)) {
    depth.set(root, 0);
    const queue = [root];
    while (queue.length) {
      const n = queue.shift();
      for (const c of [...callers.get(n)].sort()) {
        if (!depth.has(c)) {
          depth.set(c, depth.get(n) + 1);
          queue.push(c);
        }
      }
    }
  }
  const maxDepth = Math.max(0, ...depth.values());
  const cols = Array.from({ length: maxDepth + 1 }, () => []);
  for (const [n, d] of depth) cols[maxDepth - d].push(n);
  // services not reached from the root through calls: extra columns on the left
  const rest = [...nodes.keys()].filter((n) => !depth.has(n))
    .sort((a, b) => nodes.get(b).score - nodes.get(a).score || a.localeCompare(b));
  const extra = [];
  for (let i = 0; i < rest.length; i += MAX_PER_COL) extra.push(rest.slice(i, i + MAX_PER_COL));
  // order each column by the mean position of its callees in the columns to its right
  const pos = new Map();
  for (let k = cols.length - 1; k >= 0; k--) {
    const bary = (n) => {
      const ys = edges.filter((e) => e.caller === n && pos.has(e.callee)).map((e) => pos.get(e.callee));
      return ys.length ? ys.reduce((a, b) => a + b, 0) / ys.length : 1e9;
    };
    cols[k].sort((a, b) => bary(a) - bary(b) || nodes.get(b).score - nodes.get(a).score || a.localeCompare(b));
    cols[k].forEach((n, i) => pos.set(n, i - (cols[k].length - 1) / 2));
  }
  return [...extra, ...cols].filter((c) => c.length);
}

/**
 * Draw into `el`: data = {root_service, measured, predicted, edges}; onSelect(service) on click.
 */
export function renderBlastRadius(el, data, { onSelect, selected = new Set() } = {}) {
  const nodes = new Map();
  const add = (name, props) => {
    if (!name) return;
    const n = nodes.get(name) || { name, kind: "other", impact: null, dependence: null, score: 0 };
    Object.assign(n, props);
    nodes.set(name, n);
  };
  for (const p of data.predicted || []) add(p.service, { kind: "predicted", dependence: p.dependence });
  for (const m of data.measured || []) add(m.service, { kind: "measured", impact: m.impact, score: impactScore(m.impact) });
  for (const e of data.edges || []) {
    if (!nodes.has(e.caller)) add(e.caller, {});
    if (!nodes.has(e.callee)) add(e.callee, {});
  }
  const root = data.root_service;
  if (root) add(root, { isRoot: true });
  if (!nodes.size) {
    clear(el, h("div", { class: "empty small" }, "No services in the blast radius yet."));
    return;
  }
  const edges = (data.edges || []).filter((e) => nodes.has(e.caller) && nodes.has(e.callee) && e.caller !== e.callee);
  const cols = layout(nodes, edges, root);
  const rows = Math.max(...cols.map((c) => c.length));
  const cs = getComputedStyle(el);
  const avail = Math.max(320, (el.clientWidth || 600) - parseFloat(cs.paddingLeft || 0) - parseFloat(cs.paddingRight || 0));
  // node width: as wide as a long name needs, narrower when many columns must fit
  // node width: what the longest name needs (within bounds); the whole graph is scaled down
  // (to no less than 70%) when it is wider than its box, then scrolls
  const longest = Math.max(...[...nodes.keys()].map((n) => n.length));
  const W = Math.round(Math.max(104, Math.min(156, 22 + longest * 6.7)));
  const maxChars = Math.floor((W - 22) / 6.6);
  const gapX = cols.length > 1 ? Math.max(30, Math.min(110, (avail - 2 * PAD - cols.length * W) / (cols.length - 1))) : 0;
  const natural = 2 * PAD + cols.length * W + (cols.length - 1) * gapX;
  const scale = natural > avail ? Math.max(0.7, avail / natural) : 1;
  const width = Math.max(avail / scale, natural);
  const height = 2 * PAD + rows * NH + (rows - 1) * GAP_Y;
  const usedW = cols.length * W + (cols.length - 1) * gapX;
  const x0 = (width - usedW) / 2;
  const at = new Map();
  cols.forEach((col, k) => {
    const top = (height - (col.length * NH + (col.length - 1) * GAP_Y)) / 2;
    col.forEach((n, i) => at.set(n, { x: x0 + k * (W + gapX), y: top + i * (NH + GAP_Y) }));
  });

  const svg = s("svg", { class: "graph-svg", width: Math.floor(width * scale), height: Math.ceil(height * scale),
                         viewBox: `0 0 ${width} ${height}`, role: "img",
                         "aria-label": "blast radius graph" });
  svg.append(s("defs", {},
    ...["edge", "hot"].map((k) => s("marker", { id: `arrow-${k}`, viewBox: "0 0 10 10", refX: 9, refY: 5, markerWidth: 8,
                                                markerHeight: 8, markerUnits: "userSpaceOnUse", orient: "auto-start-reverse" },
      s("path", { d: "M0,1L10,5L0,9z", class: `arrow ${k}` })))));
  const maxW = Math.max(1, ...edges.map((e) => e.weight || 0));
  const eg = s("g", { class: "edges" });
  for (const e of edges) {
    const a = at.get(e.caller);
    const b = at.get(e.callee);
    const hot = nodes.get(e.caller).kind === "measured" && (nodes.get(e.callee).kind === "measured" || e.callee === root);
    let d;
    if (b.x > a.x) {
      const x1 = a.x + W;
      const y1 = a.y + NH / 2;
      const x2 = b.x - 2;
      const y2 = b.y + NH / 2;
      const mx = (x1 + x2) / 2;
      d = `M${x1},${y1}C${mx},${y1} ${mx},${y2} ${x2},${y2}`;
    } else { // same or backward column: loop under the nodes
      const x1 = a.x + W / 2;
      const y1 = a.y + NH;
      const x2 = b.x + W / 2;
      const y2 = b.y + NH + 2;
      const dip = Math.max(y1, y2) + 22;
      d = `M${x1},${y1}C${x1},${dip} ${x2},${dip} ${x2},${y2}`;
    }
    const sw = 1 + 2 * Math.log1p(e.weight || 0) / Math.log1p(maxW);
    eg.append(s("path", { d, class: `edge${hot ? " hot" : ""}`, "stroke-width": sw.toFixed(2),
                          "marker-end": `url(#arrow-${hot ? "hot" : "edge"})` },
      s("title", {}, `${e.caller} → ${e.callee}: ${e.weight?.toFixed?.(1) ?? e.weight} calls/s (${(e.sources || []).join(", ")})`)));
  }
  svg.append(eg);

  const tip = h("div", { class: "graph-tip", hidden: true });
  const scroller = h("div", { class: "graph-scroll" }, svg);
  const ng = s("g", { class: "nodes" });
  for (const [name, n] of nodes) {
    const p = at.get(name);
    const level = n.kind === "measured" ? impactLevel(n.score) : "none";
    const cls = ["node", n.kind, n.isRoot && "root", n.kind === "measured" && `lvl-${level}`,
      selected.has(name) && "charted"];
    const room = maxChars;
    const label = name.length > room ? `${name.slice(0, room - 1)}…` : name;
    const g = s("g", { class: cls, transform: `translate(${p.x},${p.y})`, tabindex: 0, "data-service": name },
      s("rect", { width: W, height: NH, rx: 5 }),
      n.kind === "measured" ? s("rect", { class: "heat", width: 4, height: NH - 8, x: 5, y: 4, rx: 2 }) : null,
      s("text", { x: n.kind === "measured" ? 15 : 10, y: NH / 2 + 4 }, label),
      n.isRoot ? s("text", { class: "root-tag", x: 1, y: -4 }, "ROOT") : null);
    g.addEventListener("mouseenter", () => {
      const lines = [h("div", { class: "tip-title" }, name),
        h("div", { class: "muted" }, n.isRoot ? "root service" : n.kind === "measured" ? `hit (${level})`
          : n.kind === "predicted" ? "predicted by the call graph, no impact measured" : "on a call path")];
      for (const [k, v] of Object.entries(n.impact || {}).sort((a, b) => impactScore({ [b[0]]: b[1] }) - impactScore({ [a[0]]: a[1] }))) {
        lines.push(h("div", { class: "tip-row" }, h("span", {}, humanize(k)), h("b", {}, fmtImpact(k, v))));
      }
      if (n.dependence !== null) lines.push(h("div", { class: "tip-row" }, h("span", {}, "depends on root"), h("b", {}, fmtPct(n.dependence))));
      if (onSelect) lines.push(h("div", { class: "muted hint" }, selected.has(name) ? "charted" : "click to chart"));
      clear(tip, lines);
      tip.hidden = false;
      const left = (p.x + W + 8 + 220 / scale > width ? p.x - 8 - 220 / scale : p.x + W + 8) * scale;
      tip.style.left = `${parseFloat(cs.paddingLeft || 0) + Math.max(0, left - scroller.scrollLeft)}px`;
      tip.style.top = `${parseFloat(cs.paddingTop || 0) + p.y * scale}px`;
    });
    g.addEventListener("mouseleave", () => { tip.hidden = true; });
    if (onSelect) {
      g.addEventListener("click", () => onSelect(name));
      g.addEventListener("keydown", (e) => { if (e.key === "Enter") onSelect(name); });
    }
    ng.append(g);
  }
  svg.append(ng);
  clear(el, scroller, tip);
  scroller.scrollLeft = scroller.scrollWidth; // the root is on the right
}
