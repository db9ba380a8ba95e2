// Small shared pieces: pills, chips, toasts, empty / error / loading states, the session.

import { $, clear, h } from "./util.js";

/** What the page knows about the caller (GET /v1/me) and its live streams. */
export const session = { me: null, role: "viewer" };

const SEVERITIES = ["critical", "high", "medium", "low", "warning", "unknown"];

export function severityPill(sev) {
  const v = SEVERITIES.includes(sev) ? sev : "unknown";
  return h("span", { class: `pill sev sev-${v}`, title: `severity ${sev}` }, sev || "unknown");
}

export function statusPill(status) {
  return h("span", { class: `pill status st-${status}`, title: `status ${status}` }, h("i", { class: "dot" }), status);
}

export const KINDS = ["opened", "declared", "symptom", "grouped", "root", "suspect", "tagged", "untagged",
  "confirmed", "status", "note", "resolved", "reopened"];

export function kindChip(kind, count) {
  const k = KINDS.includes(kind) ? kind : "other";
  return h("span", { class: `chip kind-${k}` }, kind, count ? h("span", { class: "count" }, `×${count}`) : null);
}

export function toast(message, kind = "info", { detail = "", timeout = 5000 } = {}) {
  const el = h("div", { class: `toast ${kind}`, role: kind === "error" ? "alert" : "status" },
    h("div", { class: "toast-msg" }, message), detail ? h("div", { class: "toast-detail" }, detail) : null,
    h("button", { class: "toast-x", "aria-label": "dismiss", onclick: () => el.remove() }, "×"));
  $("#toasts").append(el);
  if (timeout) setTimeout(() => el.remove(), timeout);
}

/** A toast for a failed API call, with the problem's detail. */
export function toastError(what, err) {
  toast(what, "error", { detail: `${err.title ? `${err.title}: ` : ""}${err.detail || err.message}`
    + (err.requestId ? ` (request ${err.requestId})` : ""), timeout: 9000 });
}

export function errorBox(what, err, retry) {
  return h("div", { class: "state error-state", role: "alert" },
    h("div", { class: "state-title" }, h("span", { class: "state-icon" }, "!"), what),
    h("div", { class: "state-detail" }, `${err.title && err.status ? `${err.status} ${err.title}: ` : ""}${err.detail || err.message}`),
    err.requestId ? h("div", { class: "state-meta" }, `request ${err.requestId}`) : null,
    retry ? h("button", { class: "btn small", onclick: retry }, "Retry") : null);
}

export function emptyState(title, detail, ...extra) {
  return h("div", { class: "state empty-state" }, h("div", { class: "state-title" }, title),
    detail ? h("div", { class: "state-detail" }, detail) : null, ...extra);
}

export function skeleton(lines = 3, cls = "") {
  return h("div", { class: `skeleton ${cls}`, "aria-busy": "true", "aria-label": "loading" },
    Array.from({ length: lines }, (_, i) => h("div", { class: "skel-line", style: { width: `${90 - ((i * 23) % 40)}%` } })));
}

export function card(id, title, ...headExtra) {
  const body = h("div", { class: "card-body" });
  const el = h("section", { class: "card", id },
    h("header", { class: "card-head" }, h("h3", {}, title), h("div", { class: "card-tools" }, ...headExtra)), body);
  return { el, body };
}

export function setBusy(btn, busy) {
  btn.disabled = busy;
  btn.classList.toggle("busy", busy);
}

export function liveIndicator(el, state, info) {
  const labels = { live: "Live", connecting: "Connecting…", reconnecting: "Reconnecting", closed: "Offline" };
  el.className = `live ${state}`;
  el.dataset.state = state;
  el.title = state === "reconnecting" && info?.reason ? `disconnected: ${info.reason}; retrying in ${Math.round(info.delay / 1000)}s` : labels[state];
  clear(el, h("i"), h("span", {}, labels[state] || state));
}
