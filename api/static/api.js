// The API client: the bearer token (from the URL fragment or pasted, kept in sessionStorage),
// JSON requests with problem-detail errors, and a Server-Sent Events reader over fetch()
// (EventSource cannot send an Authorization header) that resumes with Last-Event-ID.

import { sleep, uuid } from "./util.js";

const TOKEN_KEY = "opscopilot.token";
let unauthorizedHandler = () => {};

export const ROLE_RANK = { viewer: 0, responder: 1, approver: 2, admin: 3 };
export const can = (role, needed) => (ROLE_RANK[role] ?? -1) >= ROLE_RANK[needed];

/** Take a token from "#token=..." (then drop it from the address bar), else from this tab's storage. */
export function initToken() {
  const hash = location.hash.startsWith("#") ? location.hash.slice(1) : "";
  if (hash.includes("token=")) {
    const params = new URLSearchParams(hash);
    const t = params.get("token");
    if (t) sessionStorage.setItem(TOKEN_KEY, t.trim());
    params.delete("token");
    const rest = params.toString();
    history.replaceState(null, "", location.pathname + location.search + (rest ? `#${rest}` : ""));
  }
  return getToken();
}

export const getToken = () => sessionStorage.getItem(TOKEN_KEY);
export const setToken = (t) => sessionStorage.setItem(TOKEN_KEY, t.trim());
export const clearToken = () => sessionStorage.removeItem(TOKEN_KEY);
export const onUnauthorized = (fn) => { unauthorizedHandler = fn; };

export class ApiError extends Error {
  constructor(status, problem) {
    super(problem?.detail || problem?.title || `HTTP ${status}`);
    this.status = status;
    this.title = problem?.title || `HTTP ${status}`;
    this.detail = problem?.detail || "";
    this.requestId = problem?.request_id || "";
  }
}

async function problemOf(res) {
  let body = null;
  try {
    body = await res.json();
  } catch {
    body = null;
  }
  if (!body || typeof body !== "object") body = { title: res.statusText || `HTTP ${res.status}` };
  if (Array.isArray(body.detail)) body.detail = body.detail.map((e) => e.msg || JSON.stringify(e)).join("; ");
  return new ApiError(res.status, body);
}

function headers(extra = {}) {
  const hd = { Accept: "application/json", ...extra };
  const t = getToken();
  if (t) hd.Authorization = `Bearer ${t}`;
  return hd;
}

/** GET (or POST with a JSON body) /v1/...; throws ApiError with the problem's detail. */
export async function api(path, { method = "GET", body, query, signal } = {}) {
  let url = path;
  if (query) {
    const q = new URLSearchParams();
    for (const [k, v] of Object.entries(query)) if (v !== undefined && v !== null && v !== "") q.set(k, v);
    const qs = q.toString();
    if (qs) url += (url.includes("?") ? "&" : "?") + qs;
  }
  const extra = {};
  if (body !== undefined) extra["Content-Type"] = "application/json";
  if (method !== "GET") extra["Idempotency-Key"] = uuid();
  let res;
  try {
    res = await fetch(url, { method, headers: headers(extra), signal, cache: "no-store",
                             body: body === undefined ? undefined : JSON.stringify(body) });
  } catch (e) {
    if (e.name === "AbortError") throw e;
    throw new ApiError(0, { title: "Network error", detail: `could not reach the API (${e.message})` });
  }
  if (!res.ok) {
    const err = await problemOf(res);
    if (res.status === 401) unauthorizedHandler(err);
    throw err;
  }
  if (res.status === 204) return null;
  return res.json();
}

/**
 * Follow an SSE endpoint: onEvent({id, event, data}) for each event, onState(state, info)
 * with "connecting" | "live" | "reconnecting" (info: {delay, reason}) | "closed".
 * Reconnects with exponential backoff, sending Last-Event-ID (the last id received).
 * Returns {close()}.
 */
export function stream(path, { onEvent, onState = () => {}, lastEventId = null } = {}) {
  let closed = false;
  let ctrl = null;
  let lastId = lastEventId;
  let delay = 1000;

  async function once() {
    ctrl = new AbortController();
    const extra = { Accept: "text/event-stream" };
    if (lastId !== null && lastId !== undefined) extra["Last-Event-ID"] = String(lastId);
    const res = await fetch(path, { headers: headers(extra), signal: ctrl.signal, cache: "no-store" });
    if (!res.ok) {
      const err = await problemOf(res);
      if (res.status === 401) unauthorizedHandler(err);
      if ([401, 403, 404].includes(res.status)) closed = true; // retrying cannot help
      throw err;
    }
    onState("live");
    const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
    let buf = "";
    let ev = { id: null, event: "message", data: [] };
    try {
      for (;;) {
        const { value, done } = await reader.read();
        if (done) return { reason: "the server closed the stream" };
        delay = 1000; // bytes arrived: the connection is healthy
        buf += value;
        let nl;
        while ((nl = buf.indexOf("\n")) >= 0) {
          let line = buf.slice(0, nl);
          buf = buf.slice(nl + 1);
          if (line.endsWith("\r")) line = line.slice(0, -1);
          if (line === "") {
            if (ev.data.length || ev.event !== "message") {
              const out = { id: ev.id, event: ev.event, data: ev.data.join("\n") };
              if (ev.id !== null) lastId = ev.id;
              if (out.event === "dropped") {
                let reason = "dropped by the server";
                try { reason = JSON.parse(out.data).reason || reason; } catch { /* keep the default */ }
                return { reason, dropped: true };
              }
              try {
                onEvent(out);
              } catch (e) {
                console.warn("stream handler failed", e);
              }
            }
            ev = { id: null, event: "message", data: [] };
            continue;
          }
          if (line.startsWith(":")) continue; // comment / heartbeat
          const colon = line.indexOf(":");
          const field = colon < 0 ? line : line.slice(0, colon);
          let val = colon < 0 ? "" : line.slice(colon + 1);
          if (val.startsWith(" ")) val = val.slice(1);
          if (field === "data") ev.data.push(val);
          else if (field === "event") ev.event = val;
          else if (field === "id") ev.id = val;
          else if (field === "retry" && /^\d+$/.test(val)) delay = Math.max(500, Number(val));
        }
      }
    } finally {
      reader.cancel().catch(() => {});
    }
  }

  (async () => {
    while (!closed) {
      onState("connecting");
      let info;
      try {
        info = await once();
      } catch (e) {
        if (closed || e.name === "AbortError") break;
        info = { reason: e.detail || e.message };
      }
      if (closed) break;
      const wait = info?.dropped ? 250 : delay + Math.random() * 300;
      onState("reconnecting", { delay: wait, reason: info?.reason });
      await sleep(wait);
      if (!info?.dropped) delay = Math.min(delay * 2, 15000);
    }
    onState("closed");
  })();

  return {
    close() {
      closed = true;
      ctrl?.abort();
    },
    get lastId() {
      return lastId;
    },
  };
}
