// One incident: its header and status actions, key-series charts, blast radius graph,
// suspected changes with their likelihood parts, and the live timeline with a note box.

import { api, can, stream } from "./api.js";
import { TimeChart } from "./charts.js";
import { impactScore, renderBlastRadius } from "./graph.js";
import { refreshListSoon } from "./list.js";
import {
  card, emptyState, errorBox, kindChip, liveIndicator, session, setBusy, severityPill, skeleton, statusPill, toast,
  toastError,
} from "./ui.js";
import {
  $, clear, debounce, fmtClock, fmtDate, fmtDateTime, fmtDuration, fmtOffset, fmtPct, fmtValue, h, humanize, ms,
  relTime, unitOf,
} from "./util.js";

const MIN = 60_000;
const KEY_METRICS = ["error_rate", "latency_p95_ms"];
const FALLBACK_METRICS = ["latency_p99_ms", "latency_p50_ms", "request_rate", "saturation", "cpu_utilization", "memory_mb"];
const MAX_CHART_SERVICES = 3; // x 2 metrics = at most 6 charts
const NOISY = new Set(["symptom", "grouped"]);
const REFRESH_KINDS = new Set(["root", "suspect", "tagged", "untagged", "confirmed", "status", "resolved", "reopened",
  "grouped", "opened"]);
const STATUSES = [["open", "Open"], ["mitigated", "Mitigated"], ["resolved", "Resolved"]];

let cur = null;

// -- helpers ----------------------------------------------------------------------------------
/** The chart window [lo, hi] in event time: around the incident's own times, never the wall clock. */
function windowOf(inc) {
  const open = ms(inc.opened_at);
  const sym = Math.max(open, ms(inc.last_symptom_at) || open);
  let end = sym;
  const res = ms(inc.resolved_at);
  // resolved_at set by a person is wall-clock time; only trust it near the event times
  if (res && res >= end && res - end < 6 * 3600_000) end = res;
  let lo = open - 30 * MIN;
  const first = Math.min(...(inc.suspects || []).map((x) => x.ts));
  if (Number.isFinite(first) && first < lo) lo = Math.max(first - 5 * MIN, open - 3 * 3600_000);
  // after a resolved incident: 30 minutes of recovery; an open one: up to where new data lands
  const hi = Math.min(end + (inc.status === "resolved" ? 30 : 15) * MIN, lo + 48 * 3600_000);
  return { lo: Math.floor(lo), hi: Math.ceil(hi), span: [open, end === open ? open + MIN : end] };
}

function rootOf(inc) {
  return inc.root_service || inc.service || null;
}

/** The services charted by default: the root, then the hardest hit. */
function defaultChartServices(inc) {
  const out = [];
  const root = rootOf(inc);
  if (root) out.push(root);
  const ranked = (inc.blast_radius || []).map((r) => [r.service, impactScore(r.impact)])
    .sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0])).map((r) => r[0]);
  for (const sv of [...ranked, ...(inc.services || [])]) {
    if (out.length >= MAX_CHART_SERVICES) break;
    if (!out.includes(sv)) out.push(sv);
  }
  return out;
}

function allServices(inc) {
  const set = new Set();
  const root = rootOf(inc);
  if (root) set.add(root);
  for (const r of inc.blast_radius || []) set.add(r.service);
  for (const sv of inc.services || []) set.add(sv);
  return [...set];
}

const canRespond = () => can(session.role, "responder");
const canApprove = () => can(session.role, "approver");

// -- open / close ------------------------------------------------------------------------------
export function closeIncident() {
  if (!cur) return;
  cur.ctrl.abort();
  cur.stream?.close();
  for (const c of cur.charts) c.destroy();
  cur = null;
}

export function currentIncidentId() {
  return cur?.id || null;
}

export function renderNothingSelected(hasIncidents) {
  closeIncident();
  clear($("#detail"), h("div", { class: "detail-empty" },
    h("div", { class: "big-icon" }, "◎"),
    h("div", { class: "state-title" }, hasIncidents ? "Select an incident" : "No incident to show"),
    h("div", { class: "state-detail" }, hasIncidents
      ? "Pick one from the list to see its timeline, signals, suspected changes and blast radius."
      : "When the stream job opens an incident, or a responder declares one, it appears on the left live.")));
}

export async function openIncident(id) {
  if (cur?.id === id) return;
  closeIncident();
  const ctrl = new AbortController();
  cur = { id, ctrl, inc: null, timeline: [], ids: new Set(), fresh: new Set(), expanded: new Set(), charts: [],
          chartServices: [], changes: [], changesBy: new Map(), radius: null, filter: "all", stream: null, win: null };
  const me = cur;
  const root = $("#detail");
  clear(root, h("div", { class: "detail-loading" }, skeleton(2, "head-skel"),
    h("div", { class: "detail-grid" }, h("div", { class: "col-main" }, skeleton(6), skeleton(6)),
      h("div", { class: "col-side" }, skeleton(5), skeleton(8)))));
  let inc;
  try {
    inc = await api(`/v1/incidents/${encodeURIComponent(id)}`, { signal: ctrl.signal });
  } catch (e) {
    if (e.name === "AbortError" || cur !== me) return;
    clear(root, h("div", { class: "detail-error" },
      errorBox(e.status === 404 ? "Incident not found" : "Could not load the incident", e,
        e.status === 404 ? null : () => { cur = null; openIncident(id); })));
    return;
  }
  if (cur !== me) return;
  cur.inc = inc;
  cur.win = windowOf(inc);
  cur.chartServices = defaultChartServices(inc);
  buildLayout();
  renderHead();
  renderSuspects();
  loadTimeline();
  loadCharts();
  loadRadius();
}

function buildLayout() {
  const head = h("section", { class: "card inc-head", id: "inc-head" });
  const charts = card("charts-card", "Key signals", h("div", { class: "legend" },
    h("span", {}, h("i", { class: "lg-line" }), "avg"), h("span", {}, h("i", { class: "lg-band" }), "min–max"),
    h("span", {}, h("i", { class: "lg-anom" }), "anomaly"), h("span", {}, h("i", { class: "lg-exp" }), "expected"),
    h("span", {}, h("i", { class: "lg-chg" }), "change"), h("span", {}, h("i", { class: "lg-sus" }), "suspect"),
    h("span", {}, h("i", { class: "lg-span" }), "incident")));
  const chips = h("div", { class: "svc-chips", id: "svc-chips" });
  charts.body.append(chips, h("div", { class: "charts", id: "charts" }));
  const radius = card("radius-card", "Blast radius", h("span", { class: "muted", id: "radius-meta" }),
    h("div", { class: "legend" }, h("span", {}, h("i", { class: "lg-node root" }), "root"),
      h("span", {}, h("i", { class: "lg-node hit" }), "hit"), h("span", {}, h("i", { class: "lg-node pred" }), "predicted"),
      h("span", {}, h("i", { class: "lg-arrow" }), "calls")));
  radius.body.id = "radius";
  const suspects = card("suspects-card", "Suspected changes", h("span", { class: "muted", id: "suspects-meta" }));
  suspects.body.id = "suspects";
  const tlLive = h("span", { class: "live connecting", id: "tl-live" });
  const filter = h("div", { class: "seg small", id: "tl-filter" },
    h("button", { class: "active", "data-f": "all", onclick: () => setFilter("all") }, "All"),
    h("button", { "data-f": "key", onclick: () => setFilter("key") }, "Key events"));
  const timeline = card("timeline-card", "Timeline", h("span", { class: "muted", id: "tl-count" }), filter, tlLive);
  timeline.body.id = "timeline";
  timeline.body.classList.add("tl-scroll");
  timeline.el.append(noteBox());
  clear($("#detail"), head, h("div", { class: "detail-grid" },
    h("div", { class: "col-main" }, charts.el, radius.el),
    h("div", { class: "col-side" }, suspects.el, timeline.el)));
}

// -- header ------------------------------------------------------------------------------------
function fact(label, ...value) {
  return h("div", { class: "fact" }, h("dt", {}, label), h("dd", {}, ...value));
}

function renderHead() {
  const { inc } = cur;
  const open = ms(inc.opened_at);
  const sym = ms(inc.last_symptom_at);
  const end = inc.status === "resolved" && inc.resolved_at ? windowOf(inc).span[1] : sym || null;
  const seg = h("div", { class: "seg status-seg", role: "group", "aria-label": "set status" },
    STATUSES.map(([st, label]) => {
      const b = h("button", {
        class: [inc.status === st && "active", `st-${st}`], "data-status": st,
        disabled: !canRespond() || inc.status === st,
        title: canRespond() ? (inc.status === st ? `the incident is ${st}` : `mark ${st}`) : "needs the responder role",
      }, h("i", { class: "dot" }), label);
      b.addEventListener("click", () => setStatus(st, b));
      return b;
    }));
  const tag = inc.tag_change_id;
  const tagged = tag ? (inc.suspects || []).find((x) => x.change_id === tag) : null;
  const root = rootOf(inc);
  clear($("#inc-head"),
    h("div", { class: "head-top" },
      h("div", { class: "head-title" },
        h("div", { class: "head-pills" }, severityPill(inc.severity), statusPill(inc.status),
          h("code", { class: "inc-id", title: inc.id }, inc.id.slice(0, 8))),
        h("h1", {}, inc.title)),
      h("div", { class: "head-actions" }, seg)),
    h("dl", { class: "facts" },
      fact("Root service", root ? h("span", { class: "svc" }, root) : h("span", { class: "muted" }, "unknown")),
      fact("Opened", fmtDateTime(open), " ", h("span", { class: "muted" }, "· ", relTime(open))),
      fact(inc.status === "resolved" ? "Lasted" : "Symptoms for",
        end && end > open ? fmtDuration(end - open) : "–",
        inc.status !== "resolved" && sym ? h("span", { class: "muted" }, ` · last ${fmtClock(sym)}`) : null),
      fact("Services hit", String(allServices(inc).length)),
      fact("Likely cause", tag
        ? h("span", {}, h("code", {}, tag), tagged ? h("span", { class: "muted" }, ` ${fmtPct(inc.tag_likelihood ?? tagged.likelihood)}`) : null)
        : h("span", { class: "muted" }, inc.suspects?.length ? "not tagged" : "no suspect")),
      inc.endpoints?.length ? fact("Endpoints", h("span", { class: "endpoints" },
        inc.endpoints.slice(0, 4).map((e) => h("code", {}, e)), inc.endpoints.length > 4 ? ` +${inc.endpoints.length - 4}` : null)) : null),
    inc.summary ? h("p", { class: "summary" }, inc.summary) : null);
}

async function setStatus(status, btn) {
  const me = cur;
  setBusy(btn, true);
  try {
    const inc = await api(`/v1/incidents/${encodeURIComponent(me.id)}/status`, { method: "POST", body: { status, note: "" } });
    if (cur !== me) return;
    cur.inc = inc;
    renderHead();
    refreshListSoon();
    toast(`Incident marked ${status}`, "ok");
  } catch (e) {
    toastError(`Could not set the status to ${status}`, e);
    if (cur === me) renderHead();
  }
}

// -- suspects ----------------------------------------------------------------------------------
function partsList(parts, scale) {
  const rows = Object.entries(parts || {}).filter(([, v]) => Math.abs(v) >= 0.005).sort((a, b) => Math.abs(b[1]) - Math.abs(a[1]));
  if (!rows.length) return h("div", { class: "muted small" }, "no contributing feature");
  return h("div", { class: "parts" }, rows.map(([k, v]) => {
    const w = `${(Math.min(1, Math.abs(v) / scale) * 50).toFixed(1)}%`;
    return h("div", { class: ["part", v > 0 ? "pos" : "neg"], title: `${humanize(k)}: ${v > 0 ? "+" : ""}${v.toFixed(3)} log-odds (${v > 0 ? "toward" : "away from"} this change as the cause)` },
      h("span", { class: "part-name" }, humanize(k)),
      h("span", { class: "part-bar" }, h("i", { style: v > 0 ? { left: "50%", width: w } : { right: "50%", width: w } })),
      h("span", { class: "part-val" }, `${v > 0 ? "+" : "−"}${Math.abs(v).toFixed(2)}`));
  }));
}

function renderSuspects() {
  const { inc } = cur;
  const box = $("#suspects");
  const list = [...(inc.suspects || [])].sort((a, b) => b.likelihood - a.likelihood);
  $("#suspects-meta").textContent = list.length ? `${list.length}` : "";
  if (!list.length) {
    clear(box, emptyState("No suspected change", "No deploy, flag or config change near the onset could explain it."));
    return;
  }
  const scale = Math.max(0.5, ...list.flatMap((x) => Object.values(x.parts || {}).map(Math.abs)));
  const onset = ms(inc.opened_at);
  clear(box, h("div", { class: "sus-legend muted" }, "Likelihood that the change caused it; its parts in log-odds: ",
    h("span", { class: "pos-txt" }, "■ toward"), " ", h("span", { class: "neg-txt" }, "■ away")), list.map((x, i) => {
    const chg = cur.changesBy.get(x.change_id);
    const tagged = x.change_id === inc.tag_change_id;
    const before = onset - x.ts;
    const nparts = Object.values(x.parts || {}).filter((v) => Math.abs(v) >= 0.005).length;
    const confirm = canApprove() && !tagged ? h("button", { class: "btn small ghost confirm", title: "confirm this change as the cause",
      onclick: (e) => confirmCause(x.change_id, e.currentTarget) }, "Confirm cause") : null;
    return h("div", { class: ["suspect", tagged && "tagged"], "data-change": x.change_id },
      h("div", { class: "sus-top" },
        h("span", { class: "chip ctype" }, humanize(x.change_type)),
        h("code", { class: "sus-id", title: x.change_id }, x.change_id),
        tagged ? h("span", { class: "pill tag-pill" }, "tagged cause") : null,
        h("span", { class: "spacer" }),
        h("span", { class: "sus-pct", title: "likelihood that this change caused the incident" }, fmtPct(x.likelihood))),
      h("div", { class: "lik-bar", title: `likelihood ${fmtPct(x.likelihood)}` }, h("i", { style: { width: `${Math.max(0.6, x.likelihood * 100)}%` } })),
      h("div", { class: "sus-meta" },
        h("span", { class: "svc" }, x.service), x.version ? h("span", { class: "muted" }, x.version) : null,
        h("span", { class: "muted", title: fmtDateTime(x.ts, true) },
          before >= 0 ? `${fmtDuration(before)} before onset` : `${fmtDuration(-before)} after onset`),
        chg?.author ? h("span", { class: "muted" }, `by ${chg.author}`) : null,
        chg?.link && /^https?:\/\//.test(chg.link) ? h("a", { href: chg.link, target: "_blank", rel: "noopener noreferrer" }, "link ↗") : null),
      h("div", { class: "sus-why" },
        h("details", { class: "why", open: i === 0 ? true : null },
          h("summary", { title: "the likelihood's parts, in log-odds: red pushes toward this change as the cause, blue away" },
            `Why: ${nparts} part${nparts === 1 ? "" : "s"}`),
          partsList(x.parts, scale)),
        confirm));
  }),
  canApprove() ? h("div", { class: "sus-foot" }, h("button", { class: "btn small ghost", title: "confirm that no change caused it",
    onclick: (e) => confirmCause(null, e.currentTarget) }, "No change caused it")) : null);
}

async function confirmCause(changeId, btn) {
  const me = cur;
  setBusy(btn, true);
  try {
    const inc = await api(`/v1/incidents/${encodeURIComponent(me.id)}/confirm`, { method: "POST", body: { change_id: changeId, note: "" } });
    if (cur !== me) return;
    cur.inc = inc;
    renderHead();
    renderSuspects();
    toast(changeId ? `Confirmed ${changeId} as the cause` : "Confirmed: no change caused it", "ok");
  } catch (e) {
    toastError("Could not confirm the cause", e);
    setBusy(btn, false);
  }
}

// -- timeline ----------------------------------------------------------------------------------
async function loadTimeline() {
  const me = cur;
  const box = $("#timeline");
  clear(box, skeleton(8));
  const rows = [];
  try {
    let after = 0;
    for (let page = 0; page < 20; page++) {
      const got = await api(`/v1/incidents/${encodeURIComponent(me.id)}/timeline`,
        { query: { after_id: after, limit: 1000 }, signal: me.ctrl.signal });
      rows.push(...got);
      if (got.length < 1000) break;
      after = got.at(-1).id;
    }
  } catch (e) {
    if (e.name === "AbortError" || cur !== me) return;
    clear(box, errorBox("Could not load the timeline", e, loadTimeline));
    return;
  }
  if (cur !== me) return;
  for (const r of rows) addEntry(r, false);
  renderTimeline(true);
  const live = $("#tl-live");
  me.stream = stream(`/v1/incidents/${encodeURIComponent(me.id)}/timeline/stream`, {
    lastEventId: rows.length ? rows.at(-1).id : 0,
    onEvent: (ev) => {
      if (cur !== me || ev.event !== "timeline") return;
      const entry = JSON.parse(ev.data);
      if (addEntry(entry, true)) {
        scheduleTimelineRender();
        if (REFRESH_KINDS.has(entry.kind) || NOISY.has(entry.kind)) refreshIncidentSoon();
      }
    },
    onState: (st, info) => { if (cur === me) liveIndicator(live, st, info); },
  });
}

function addEntry(e, live) {
  if (cur.ids.has(e.id)) return false;
  cur.ids.add(e.id);
  const tl = cur.timeline;
  if (!tl.length || tl.at(-1).id < e.id) tl.push(e);
  else {
    tl.push(e);
    tl.sort((a, b) => a.id - b.id);
  }
  if (live) {
    cur.fresh.add(e.id);
    const me = cur;
    setTimeout(() => me.fresh.delete(e.id), 2500);
  }
  return true;
}

let renderPending = false;
function scheduleTimelineRender() {
  if (renderPending) return;
  renderPending = true;
  requestAnimationFrame(() => {
    renderPending = false;
    if (cur) renderTimeline(false);
  });
}

function setFilter(f) {
  cur.filter = f;
  for (const b of document.querySelectorAll("#tl-filter button")) b.classList.toggle("active", b.dataset.f === f);
  renderTimeline(true);
}

function entryRow(e, origin) {
  const by = e.data?.by;
  return h("li", { class: ["tl-entry", `kind-${e.kind}`, cur.fresh.has(e.id) && "fresh"], "data-id": e.id, "data-kind": e.kind },
    h("div", { class: "tl-time", title: fmtDateTime(e.at, true) }, fmtClock(e.at), h("span", { class: "tl-off" }, fmtOffset(e.at, origin))),
    h("div", { class: "tl-rail" }, h("i", { class: "tl-dot" })),
    h("div", { class: "tl-body" }, kindChip(e.kind),
      h("span", { class: e.kind === "note" ? "tl-text note-text" : "tl-text" }, e.body),
      by ? h("span", { class: "tl-by" }, `— ${by}`) : null));
}

function groupRow(run, origin) {
  const key = run[0].id;
  const open = cur.expanded.has(key);
  const svcs = [...new Set(run.map((e) => e.data?.service).filter(Boolean))];
  const kinds = [...new Set(run.map((e) => e.kind))];
  const fresh = run.some((e) => cur.fresh.has(e.id));
  const a = run[0].at;
  const b = run.at(-1).at;
  const toggle = () => {
    if (cur.expanded.has(key)) cur.expanded.delete(key);
    else cur.expanded.add(key);
    renderTimeline(false);
  };
  const row = h("li", { class: ["tl-entry", "tl-group", fresh && "fresh", open && "open"], "data-id": key },
    h("div", { class: "tl-time", title: `${fmtDateTime(a, true)} – ${fmtDateTime(b, true)}` }, fmtClock(a),
      h("span", { class: "tl-off" }, fmtOffset(a, origin))),
    h("div", { class: "tl-rail" }, h("i", { class: "tl-dot" })),
    h("div", { class: "tl-body" },
      h("button", { class: "tl-expand", onclick: toggle, "aria-expanded": String(open) },
        h("span", { class: "caret" }, open ? "▾" : "▸"),
        kinds.map((k) => kindChip(k, run.filter((e) => e.kind === k).length)),
        h("span", { class: "tl-text muted" }, svcs.slice(0, 3).join(", ") + (svcs.length > 3 ? ` +${svcs.length - 3}` : ""),
          ms(b) - ms(a) >= 1000 ? ` · over ${fmtDuration(ms(b) - ms(a))}` : ""))));
  if (!open) return [row];
  return [row, ...run.map((e) => {
    const r = entryRow(e, origin);
    r.classList.add("tl-child");
    return r;
  })];
}

function renderTimeline(forceBottom) {
  const box = $("#timeline");
  if (!box || !cur) return;
  const nearBottom = box.scrollHeight - box.scrollTop - box.clientHeight < 80;
  const origin = cur.inc.opened_at;
  const shown = cur.filter === "key" ? cur.timeline.filter((e) => !NOISY.has(e.kind)) : cur.timeline;
  $("#tl-count").textContent = String(cur.timeline.length);
  if (!shown.length) {
    clear(box, emptyState(cur.timeline.length ? "Only symptoms so far" : "No timeline entries yet",
      "Entries appear here live as they happen."));
    return;
  }
  const items = [];
  let day = null;
  let i = 0;
  while (i < shown.length) {
    const e = shown[i];
    const d = fmtDate(e.at);
    if (d !== day) {
      items.push(h("li", { class: "tl-day" }, h("span", {}, d)));
      day = d;
    }
    if (NOISY.has(e.kind)) {
      let j = i;
      while (j < shown.length && NOISY.has(shown[j].kind) && fmtDate(shown[j].at) === d) j++;
      if (j - i >= 3) {
        items.push(...groupRow(shown.slice(i, j), origin));
        i = j;
        continue;
      }
    }
    items.push(entryRow(e, origin));
    i++;
  }
  clear(box, h("ol", { class: "tl" }, items));
  if (forceBottom || nearBottom) box.scrollTop = box.scrollHeight;
}

function noteBox() {
  const allowed = canRespond();
  const ta = h("textarea", { id: "note", rows: 2, maxlength: 10000, disabled: !allowed,
    placeholder: allowed ? "Add a note to the timeline…  (Ctrl+Enter to post)" : "Read only: notes need the responder role" });
  const btn = h("button", { class: "btn primary small", id: "note-send", disabled: !allowed, type: "submit" }, "Post note");
  const form = h("form", { class: "note-box" }, ta, btn);
  const send = async (e) => {
    e?.preventDefault();
    const body = ta.value.trim();
    if (!body || !cur) return;
    const me = cur;
    setBusy(btn, true);
    try {
      const entry = await api(`/v1/incidents/${encodeURIComponent(me.id)}/notes`, { method: "POST", body: { body } });
      ta.value = "";
      if (cur === me && addEntry(entry, true)) renderTimeline(true);
    } catch (err) {
      toastError("Could not post the note", err);
    } finally {
      setBusy(btn, !allowed);
    }
  };
  form.addEventListener("submit", send);
  ta.addEventListener("keydown", (e) => { if (e.key === "Enter" && (e.ctrlKey || e.metaKey)) send(e); });
  return form;
}

// -- live refresh of the incident ----------------------------------------------------------------
const refreshIncidentSoon = debounce(async () => {
  if (!cur) return;
  const me = cur;
  try {
    const inc = await api(`/v1/incidents/${encodeURIComponent(me.id)}`, { signal: me.ctrl.signal });
    if (cur !== me) return;
    const before = me.inc;
    me.inc = inc;
    const win = windowOf(inc);
    renderHead();
    if (JSON.stringify(before.suspects) !== JSON.stringify(inc.suspects) || before.tag_change_id !== inc.tag_change_id) renderSuspects();
    if (JSON.stringify(before.blast_radius) !== JSON.stringify(inc.blast_radius) || before.root_service !== inc.root_service) loadRadius();
    if (Math.abs(win.hi - me.win.hi) >= MIN || win.lo !== me.win.lo || before.root_service !== inc.root_service
        || JSON.stringify(before.suspects.map((x) => x.change_id)) !== JSON.stringify(inc.suspects.map((x) => x.change_id))) {
      me.win = win;
      if (before.root_service !== inc.root_service || !me.userPicked) me.chartServices = defaultChartServices(inc);
      reloadChartsSoon();
    }
  } catch (e) {
    if (e.name !== "AbortError") console.warn("incident refresh failed", e);
  }
}, 1500);

const reloadChartsSoon = debounce(() => { if (cur) loadCharts(); }, 4000);

// -- charts ------------------------------------------------------------------------------------
function renderServiceChips() {
  const box = $("#svc-chips");
  const services = allServices(cur.inc);
  if (services.length <= 1) {
    clear(box);
    return;
  }
  const score = new Map((cur.inc.blast_radius || []).map((r) => [r.service, impactScore(r.impact)]));
  services.sort((a, b) => (a === rootOf(cur.inc) ? -1 : b === rootOf(cur.inc) ? 1 : 0) || (score.get(b) || 0) - (score.get(a) || 0) || a.localeCompare(b));
  clear(box, h("span", { class: "muted small" }, "Charted:"), services.map((sv) => h("button", {
    class: ["chip svc-chip", cur.chartServices.includes(sv) && "on"], title: cur.chartServices.includes(sv) ? "remove from the charts" : "chart this service",
    onclick: () => toggleChartService(sv),
  }, sv === rootOf(cur.inc) ? h("span", { class: "root-dot", title: "root" }) : null, sv)));
}

function toggleChartService(sv) {
  if (!cur) return;
  const list = cur.chartServices;
  if (list.includes(sv)) {
    if (list.length === 1) return;
    list.splice(list.indexOf(sv), 1);
  } else {
    list.push(sv);
    if (list.length > MAX_CHART_SERVICES) list.splice(list[0] === rootOf(cur.inc) ? 1 : 0, 1);
  }
  cur.userPicked = true;
  loadCharts();
  if (cur.radius) drawRadius();
}

async function pickMetrics(service, win, signal) {
  let names = [];
  try {
    names = (await api("/v1/metrics/names", { query: { service, since: win.lo, until: win.hi }, signal })).map((m) => m.name);
  } catch (e) {
    if (e.name === "AbortError") throw e;
    return KEY_METRICS; // the series calls will report the problem
  }
  if (!names.length) return [];
  const have = new Set(names);
  const out = KEY_METRICS.filter((m) => have.has(m));
  for (const m of [...FALLBACK_METRICS, ...names.slice().sort()]) {
    if (out.length >= 2) break;
    if (have.has(m) && !out.includes(m)) out.push(m);
  }
  return out;
}

async function loadCharts() {
  const me = cur;
  if (!me) return;
  const { win } = me;
  const inc = me.inc;
  renderServiceChips();
  const box = $("#charts");
  for (const c of me.charts) c.destroy();
  me.charts = [];
  const services = me.chartServices.slice();
  if (!services.length) {
    clear(box, emptyState("No service to chart", "This incident names no service."));
    return;
  }
  const signal = me.ctrl.signal;
  const seq = (me.chartSeq = (me.chartSeq || 0) + 1);
  const stale = () => cur !== me || me.chartSeq !== seq;
  const rows = services.map((sv) => {
    const el = h("div", { class: "chart-row" }, h("div", { class: "chart-card" }, skeleton(4, "chart-skel")),
      h("div", { class: "chart-card" }, skeleton(4, "chart-skel")));
    return [sv, el];
  });
  clear(box, rows.map((r) => r[1]));
  const changesP = api("/v1/changes", { query: { since: win.lo, until: win.hi, limit: 1000 }, signal })
    .then((cs) => {
      if (stale()) return cs;
      me.changes = cs;
      me.changesBy = new Map(cs.map((c) => [c.change_id, c]));
      renderSuspects();
      return cs;
    })
    .catch((e) => (e.name === "AbortError" ? [] : (console.warn("changes", e), [])));
  const suspects = new Set((inc.suspects || []).map((x) => x.change_id));
  const points = Math.max(60, Math.min(600, Math.round((box.clientWidth || 800) / 2 / 1.5)));
  await Promise.all(rows.map(async ([service, rowEl]) => {
    try {
      const [metrics, anomalies] = await Promise.all([
        pickMetrics(service, win, signal),
        api("/v1/anomalies", { query: { service, since: win.lo, until: win.hi, limit: 5000 }, signal }).catch((e) => {
          if (e.name === "AbortError") throw e;
          return [];
        }),
      ]);
      if (stale()) return;
      if (!metrics.length) {
        clear(rowEl, h("div", { class: "chart-card wide" }, chartTitle(service, null),
          emptyState("No metrics", `${service} reported no metric between ${fmtDateTime(win.lo)} and ${fmtDateTime(win.hi)}.`)));
        return;
      }
      const cards = metrics.map(() => h("div", { class: "chart-card" }, skeleton(4, "chart-skel")));
      clear(rowEl, cards);
      await Promise.all(metrics.map(async (metric, k) => {
        const cardEl = cards[k];
        try {
          const [res, changes] = await Promise.all([
            api("/v1/series", { query: { service, name: metric, since: win.lo, until: win.hi, points }, signal }), changesP]);
          if (stale()) return;
          const series = res.series.filter((x) => x.points.length);
          const unit = unitOf(metric);
          if (!series.length) {
            clear(cardEl, chartTitle(service, metric), emptyState("No data", `No ${metric} points in this window.`));
            return;
          }
          const all = series.flatMap((x) => x.points);
          const peak = Math.max(...all.map((p) => p.max));
          const mine = anomalies.filter((a) => a.name === metric);
          const plot = h("div", { class: "chart", "data-service": service, "data-metric": metric });
          clear(cardEl, chartTitle(service, metric, [
            mine.length ? h("span", { class: "anom-count", title: `${mine.length} anomalous point${mine.length === 1 ? "" : "s"} in this window; peak ${fmtValue(peak, unit)}` },
              h("i", { class: "dot" }), String(mine.length)) : null]), plot);
          me.charts.push(new TimeChart(plot, {
            id: `${service}-${metric}`.replace(/[^A-Za-z0-9_-]/g, "_"), metric, service, unit, window: [win.lo, win.hi],
            series, anomalies: mine, changes, span: win.span, suspects, tagged: inc.tag_change_id,
          }));
        } catch (e) {
          if (e.name === "AbortError" || stale()) return;
          clear(cardEl, chartTitle(service, metric), errorBox(`Could not load ${metric}`, e));
        }
      }));
    } catch (e) {
      if (e.name === "AbortError" || stale()) return;
      clear(rowEl, h("div", { class: "chart-card wide" }, chartTitle(service, null), errorBox(`Could not load ${service}'s signals`, e)));
    }
  }));
}

const METRIC_LABELS = { error_rate: "error rate", latency_p50_ms: "p50 latency", latency_p95_ms: "p95 latency",
  latency_p99_ms: "p99 latency", request_rate: "requests", cpu_utilization: "cpu", memory_mb: "memory" };
const metricLabel = (m) => METRIC_LABELS[m] || m;

function chartTitle(service, metric, extra = []) {
  const isRoot = cur && service === rootOf(cur.inc);
  return h("div", { class: "chart-title" },
    h("span", { class: "svc" }, isRoot ? h("span", { class: "root-dot", title: "root service" }) : null, service),
    metric ? h("span", { class: "metric", title: metric }, metricLabel(metric)) : null, h("span", { class: "spacer" }),
    extra.length ? h("span", { class: "chart-stats" }, extra) : null);
}

export function rerenderCharts() {
  if (!cur) return;
  for (const c of cur.charts) c.render();
  if (cur.radius) drawRadius();
}

// -- blast radius --------------------------------------------------------------------------------
async function loadRadius() {
  const me = cur;
  const box = $("#radius");
  if (!me.radius) clear(box, skeleton(5));
  try {
    const data = await api(`/v1/incidents/${encodeURIComponent(me.id)}/blast-radius`, { signal: me.ctrl.signal });
    data.edgesFrom = "incident";
    const names = new Set([data.root_service, ...data.measured.map((m) => m.service), ...data.predicted.map((p) => p.service)].filter(Boolean));
    if (!data.edges.length && names.size > 1) {
      // no call edges as of the incident's time: fall back to the newest known service graph
      try {
        const topo = await api("/v1/topology", { signal: me.ctrl.signal });
        data.edges = topo.edges.filter((e) => names.has(e.caller) && names.has(e.callee));
        if (data.edges.length) data.edgesFrom = "topology";
      } catch (e) {
        if (e.name === "AbortError") throw e;
      }
    }
    if (cur !== me) return;
    me.radius = data;
    drawRadius();
  } catch (e) {
    if (e.name === "AbortError" || cur !== me) return;
    clear(box, errorBox("Could not load the blast radius", e, loadRadius));
  }
}

function drawRadius() {
  const data = cur.radius;
  const box = $("#radius");
  const measured = new Set(data.measured.map((m) => m.service));
  const predictedOnly = data.predicted.filter((p) => !measured.has(p.service)).length;
  $("#radius-meta").textContent = `${measured.size} hit · ${predictedOnly} predicted` + (data.edgesFrom === "topology" ? " · edges: current graph" : "");
  if (!measured.size && !data.predicted.length && !data.root_service) {
    clear(box, emptyState("No blast radius yet", "No service has a measured impact, and the call graph predicts none."));
    return;
  }
  renderBlastRadius(box, data, { onSelect: toggleChartService, selected: new Set(cur.chartServices) });
}

// exported for the app's live handling
export function isOpen(id) {
  return cur?.id === id;
}
