// DOM helpers, formatting of times and values. No innerHTML with data: every text goes through
// textContent (h() and s() below), so nothing from the API can inject markup.

const SVG_NS = "http://www.w3.org/2000/svg";

function build(el, attrs, children) {
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k === "class") el.setAttribute("class", Array.isArray(v) ? v.filter(Boolean).join(" ") : v);
    else if (k === "dataset") Object.assign(el.dataset, v);
    else if (k === "style" && typeof v === "object") Object.assign(el.style, v);
    else if (k.startsWith("on") && typeof v === "function") el.addEventListener(k.slice(2), v);
    else if (k === "text") el.textContent = v;
    else el.setAttribute(k, v === true ? "" : String(v));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const c of children.flat(Infinity)) {
    if (c === null || c === undefined || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
}

/** An HTML element: h("div", {class: "x", onclick: f}, child, "text", [more]). */
export function h(tag, attrs, ...children) {
  return build(document.createElement(tag), attrs, children);
}

/** An SVG element, same call shape as h(). */
export function s(tag, attrs, ...children) {
  return build(document.createElementNS(SVG_NS, tag), attrs, children);
}

export function clear(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

export const $ = (sel, root = document) => root.querySelector(sel);

// -- times ---------------------------------------------------------------------------------
export const ms = (t) => (t === null || t === undefined ? null : typeof t === "number" ? t : Date.parse(t));

const pad = (n) => String(n).padStart(2, "0");

export function fmtClock(t, withSeconds = true) {
  const d = new Date(ms(t));
  return `${pad(d.getHours())}:${pad(d.getMinutes())}` + (withSeconds ? `:${pad(d.getSeconds())}` : "");
}

export function fmtDate(t) {
  const d = new Date(ms(t));
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}`;
}

export function fmtDateTime(t, withSeconds = false) {
  return `${fmtDate(t)} ${fmtClock(t, withSeconds)}`;
}

/** A duration in ms as "45s", "12m", "3h 05m", "2d 4h". */
export function fmtDuration(d) {
  d = Math.max(0, Math.round(d / 1000));
  if (d < 60) return `${d}s`;
  const m = Math.floor(d / 60);
  if (m < 60) return `${m}m`;
  const hr = Math.floor(m / 60);
  if (hr < 48) return `${hr}h ${pad(m % 60)}m`;
  return `${Math.floor(hr / 24)}d ${hr % 24}h`;
}

/** "just now", "5m ago", "3h ago", "4d ago", "10mo ago" (and "in 5m" for the future). */
export function fmtRelative(t, now = Date.now()) {
  const d = now - ms(t);
  const a = Math.abs(d) / 1000;
  let txt;
  if (a < 45) return "just now";
  if (a < 3600) txt = `${Math.round(a / 60)}m`;
  else if (a < 86400) txt = `${Math.round(a / 3600)}h`;
  else if (a < 86400 * 45) txt = `${Math.round(a / 86400)}d`;
  else if (a < 86400 * 365) txt = `${Math.round(a / (86400 * 30))}mo`;
  else txt = `${(a / (86400 * 365)).toFixed(1)}y`;
  return d >= 0 ? `${txt} ago` : `in ${txt}`;
}

/** A <time> element whose relative text is kept fresh by refreshRelativeTimes(). */
export function relTime(t, attrs = {}) {
  return h("time", {datetime: new Date(ms(t)).toISOString(), title: fmtDateTime(t, true), class: "rel",
                    ...attrs}, fmtRelative(t));
}

export function refreshRelativeTimes(root = document) {
  const now = Date.now();
  for (const el of root.querySelectorAll("time.rel")) el.textContent = fmtRelative(el.getAttribute("datetime"), now);
}

/** "T+12:30" / "T-4m": a time relative to the incident's onset. */
export function fmtOffset(t, origin) {
  const d = ms(t) - ms(origin);
  const sign = d < 0 ? "−" : "+";
  const a = Math.abs(d) / 1000;
  if (a < 3600) return `T${sign}${Math.floor(a / 60)}:${pad(Math.floor(a % 60))}`;
  return `T${sign}${fmtDuration(a * 1000)}`;
}

// -- values --------------------------------------------------------------------------------
export function unitOf(name) {
  const n = (name || "").toLowerCase();
  if (/(error_rate|ratio|utilization|saturation|percent_of|availability)/.test(n)) return "ratio";
  if (/(_ms$|latency|duration)/.test(n)) return "ms";
  if (/(_mb$|memory)/.test(n)) return "mb";
  return "";
}

export function fmtNumber(v, digits = 3) {
  if (v === null || v === undefined || Number.isNaN(v)) return "–";
  const a = Math.abs(v);
  if (a >= 1e9) return `${(v / 1e9).toPrecision(digits)}G`;
  if (a >= 1e6) return `${(v / 1e6).toPrecision(digits)}M`;
  if (a >= 1e4) return `${(v / 1e3).toPrecision(digits)}k`;
  if (a >= 100 || a === 0) return String(Math.round(v));
  return String(Number(v.toPrecision(digits)));
}

export function fmtValue(v, unit) {
  if (v === null || v === undefined || Number.isNaN(v)) return "–";
  if (v === 0) return unit === "ratio" ? "0%" : unit ? `0 ${unit.replace("mb", "MB")}` : "0";
  if (unit === "ratio") {
    const p = v * 100;
    return `${Math.abs(p) >= 10 ? p.toFixed(0) : Math.abs(p) >= 1 ? p.toFixed(1) : p.toFixed(2)}%`;
  }
  if (unit === "ms") return Math.abs(v) >= 1000 ? `${(v / 1000).toPrecision(3)} s` : `${fmtNumber(v)} ms`;
  if (unit === "mb") return Math.abs(v) >= 1024 ? `${(v / 1024).toPrecision(3)} GB` : `${fmtNumber(v)} MB`;
  return fmtNumber(v);
}

export const fmtPct = (p) => `${p * 100 >= 10 || p === 0 ? (p * 100).toFixed(0) : (p * 100).toFixed(1)}%`;

export const humanize = (k) => String(k).replaceAll("_", " ");

export function debounce(fn, wait) {
  let t = null;
  const d = (...args) => {
    clearTimeout(t);
    t = setTimeout(() => fn(...args), wait);
  };
  d.cancel = () => clearTimeout(t);
  return d;
}

export const sleep = (t) => new Promise((r) => setTimeout(r, t));

export function uuid() {
  if (globalThis.crypto?.randomUUID) return crypto.randomUUID();
  // not a secure context (plain http on a LAN address): build a v4 UUID by hand
  const b = crypto.getRandomValues(new Uint8Array(16));
  b[6] = (b[6] & 0x0f) | 0x40;
  b[8] = (b[8] & 0x3f) | 0x80;
  const x = [...b].map((v) => v.toString(16).padStart(2, "0")).join("");
  return `${x.slice(0, 8)}-${x.slice(8, 12)}-${x.slice(12, 16)}-${x.slice(16, 20)}-${x.slice(20)}`;
}
