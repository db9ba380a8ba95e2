// The incident room: sign-in (token from #token=..., kept in sessionStorage), the header,
// the tenant-wide live stream that keeps the list fresh, routing (#/incident/ID), declaring.

import { api, clearToken, can, initToken, onUnauthorized, setToken, stream } from "./api.js";
import { closeIncident, currentIncidentId, openIncident, renderNothingSelected, rerenderCharts } from "./incident.js";
import { bindListControls, list, loadList, refreshListSoon, setSelected } from "./list.js";
import { liveIndicator, session, setBusy, toast, toastError } from "./ui.js";
import { $, clear, debounce, h, refreshRelativeTimes } from "./util.js";

let tenantStream = null;

// -- theme ---------------------------------------------------------------------------------
function applyTheme(t) {
  document.documentElement.dataset.theme = t;
  try { localStorage.setItem("opscopilot.theme", t); } catch { /* private mode */ }
}

function initTheme() {
  let t = null;
  try { t = localStorage.getItem("opscopilot.theme"); } catch { /* private mode */ }
  applyTheme(t || (matchMedia("(prefers-color-scheme: light)").matches ? "light" : "dark"));
  $("#theme").addEventListener("click", () => {
    applyTheme(document.documentElement.dataset.theme === "dark" ? "light" : "dark");
    rerenderCharts();
  });
}

// -- sign in / out --------------------------------------------------------------------------
function showSignIn(message = "") {
  tenantStream?.close();
  tenantStream = null;
  closeIncident();
  $("#app").hidden = true;
  $("#who").hidden = true;
  $("#signout").hidden = true;
  $("#live").hidden = true;
  $("#signin").hidden = false;
  const err = $("#signin-error");
  err.textContent = message;
  err.hidden = !message;
  $("#token-input").focus();
}

function bindSignIn() {
  $("#signin-form").addEventListener("submit", async (e) => {
    e.preventDefault();
    const t = $("#token-input").value.trim();
    if (!t) return;
    const btn = $("#signin-btn");
    setBusy(btn, true);
    setToken(t);
    try {
      await start();
      $("#token-input").value = "";
    } catch (err) {
      clearToken();
      showSignIn(err.detail || err.message);
    } finally {
      setBusy(btn, false);
    }
  });
  $("#signout").addEventListener("click", () => {
    clearToken();
    session.me = null;
    showSignIn();
  });
  onUnauthorized((err) => {
    clearToken();
    const why = err.detail || "the token was rejected";
    showSignIn(session.me ? `Signed out: ${why}` : `Could not sign in: ${why}`);
    session.me = null;
  });
}

// -- header -----------------------------------------------------------------------------------
function renderWho() {
  const { me } = session;
  clear($("#who"), h("span", { class: "tenant", title: "tenant" }, me.tenant),
    h("span", { class: `pill role role-${me.role}`, title: `signed in as ${me.subject} (${me.via})` }, me.role),
    h("span", { class: "subject muted" }, me.subject));
  $("#who").hidden = false;
  $("#signout").hidden = false;
  $("#declare").hidden = !can(me.role, "responder");
}

// -- live: the tenant-wide stream --------------------------------------------------------------
function startTenantStream() {
  tenantStream?.close();
  const ind = $("#live");
  ind.hidden = false;
  let wasDown = false;
  tenantStream = stream("/v1/stream", {
    onEvent: (ev) => {
      if (ev.event !== "timeline") return;
      let entry;
      try { entry = JSON.parse(ev.data); } catch { return; }
      // a new incident, or a change to a listed one (symptoms change its services and duration too):
      // re-read the list, coalesced over bursts
      if (entry?.incident_id) refreshListSoon();
    },
    onState: (st, info) => {
      liveIndicator(ind, st, info);
      if (st === "reconnecting") wasDown = true;
      if (st === "live" && wasDown) {
        wasDown = false;
        refreshListSoon(); // catch up on what happened while disconnected
      }
    },
  });
}

// -- routing ----------------------------------------------------------------------------------
function routeId() {
  const m = location.hash.match(/^#\/incident\/([^/?#]+)/);
  return m ? decodeURIComponent(m[1]) : null;
}

function route() {
  const id = routeId();
  if (id) {
    setSelected(id);
    openIncident(id);
    document.title = "opscopilot · incident";
  } else {
    setSelected(null);
    renderNothingSelected(list.items.length > 0);
    document.title = "opscopilot · incident room";
  }
}

// -- declare ------------------------------------------------------------------------------------
function bindDeclare() {
  const dlg = $("#declare-dialog");
  $("#declare").addEventListener("click", () => {
    const known = new Set(list.items.flatMap((i) => i.services || []));
    clear($("#known-services"), [...known].sort().map((sv) => h("option", { value: sv })));
    $("#declare-error").hidden = true;
    dlg.showModal();
    $("#d-title").focus();
  });
  $("#declare-cancel").addEventListener("click", () => dlg.close());
  $("#declare-form").addEventListener("submit", async (e) => {
    e.preventDefault();
    const btn = $("#declare-submit");
    const body = { title: $("#d-title").value.trim(), severity: $("#d-severity").value };
    const service = $("#d-service").value.trim();
    const summary = $("#d-summary").value.trim();
    if (service) body.service = service;
    if (summary) body.summary = summary;
    setBusy(btn, true);
    try {
      const inc = await api("/v1/incidents", { method: "POST", body });
      dlg.close();
      $("#declare-form").reset();
      toast("Incident declared", "ok");
      await loadList({ quiet: true });
      location.hash = `#/incident/${inc.id}`;
    } catch (err) {
      const el = $("#declare-error");
      el.textContent = err.detail || err.message;
      el.hidden = false;
    } finally {
      setBusy(btn, false);
    }
  });
}

// -- start --------------------------------------------------------------------------------------
async function start() {
  session.me = await api("/v1/me");
  session.role = session.me.role;
  $("#signin").hidden = true;
  $("#app").hidden = false;
  renderWho();
  startTenantStream();
  await loadList();
  if (!routeId() && list.items.length) {
    const first = list.items.find((i) => i.status !== "resolved") || list.items[0];
    history.replaceState(null, "", `#/incident/${first.id}`);
  }
  route();
}

async function boot() {
  initTheme();
  bindSignIn();
  bindListControls();
  bindDeclare();
  list.onLoaded = () => {
    // nothing open: keep the placeholder's wording in step with the list
    if (session.me && !routeId() && !currentIncidentId()) renderNothingSelected(list.items.length > 0);
  };
  window.addEventListener("hashchange", () => { if (session.me) route(); });
  window.addEventListener("resize", debounce(rerenderCharts, 200));
  setInterval(() => refreshRelativeTimes(), 30_000);
  document.addEventListener("keydown", (e) => {
    if (e.key === "/" && !/INPUT|TEXTAREA|SELECT/.test(document.activeElement?.tagName || "")) {
      e.preventDefault();
      $("#search").focus();
    }
  });
  if (!initToken()) {
    showSignIn();
    return;
  }
  try {
    await start();
  } catch (err) {
    if (err.status === 401) return; // onUnauthorized showed the sign-in box
    clear($("#detail"), h("div", { class: "detail-error" }, h("div", { class: "state error-state" },
      h("div", { class: "state-title" }, "Could not reach the API"), h("div", { class: "state-detail" }, err.detail || err.message),
      h("button", { class: "btn small", onclick: () => location.reload() }, "Retry"))));
    $("#app").hidden = false;
    toastError("Could not start", err);
  }
}

boot();
