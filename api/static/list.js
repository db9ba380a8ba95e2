// The incident list: status tabs, title search, sort, cursor pages, live refresh from the
// tenant-wide stream (coalesced), new and changed incidents highlighted.

import { api } from "./api.js";
import { emptyState, errorBox, severityPill, skeleton, statusPill } from "./ui.js";
import { $, clear, debounce, fmtDuration, h, ms, relTime } from "./util.js";

export const list = {
  items: [],
  next: null,
  status: "",
  q: "",
  sort: "-opened_at",
  loading: false,
  error: null,
  selected: null,
  loaded: false,
  flash: new Set(), // ids to highlight on the next render
  onLoaded: () => {},
};

const PAGE = 50;
let seq = 0;

export async function loadList({ more = false, quiet = false } = {}) {
  const my = ++seq;
  if (!quiet && !more) {
    list.loading = true;
    renderList();
  }
  try {
    const limit = more ? PAGE : Math.min(500, Math.max(PAGE, list.items.length));
    const page = await api("/v1/incidents", { query: { limit, status: list.status, q: list.q, sort: list.sort,
                                                       cursor: more ? list.next : undefined } });
    if (my !== seq) return;
    if (more) {
      list.items = list.items.concat(page.items);
    } else {
      const old = new Map(list.items.map((i) => [i.id, i]));
      if (list.loaded) {
        for (const i of page.items) {
          const o = old.get(i.id);
          if (!o || o.updated_at !== i.updated_at || o.status !== i.status) list.flash.add(i.id);
        }
      }
      list.items = page.items;
    }
    list.next = page.next_cursor;
    list.error = null;
    list.loaded = true;
  } catch (e) {
    if (my !== seq) return;
    list.error = e;
  } finally {
    if (my === seq) {
      list.loading = false;
      renderList();
      list.onLoaded();
    }
  }
}

/** Re-read the list soon: at most every `wait` ms while entries keep coming, at least every `maxWait`. */
export const refreshListSoon = (() => {
  let first = 0;
  const run = debounce(() => {
    first = 0;
    loadList({ quiet: true });
  }, 700);
  return () => {
    const now = Date.now();
    if (!first) first = now;
    if (now - first > 3000) {
      first = 0;
      run.cancel();
      loadList({ quiet: true });
    } else run();
  };
})();

function item(inc) {
  const end = inc.resolved_at || inc.last_symptom_at;
  const n = inc.services?.length || 0;
  const el = h("li", {}, h("a", {
    class: ["inc", inc.id === list.selected && "selected", list.flash.has(inc.id) && "flash", `st-${inc.status}`],
    href: `#/incident/${inc.id}`, "data-id": inc.id,
  },
  h("div", { class: "inc-top" }, severityPill(inc.severity), h("span", { class: "inc-title", title: inc.title }, inc.title)),
  h("div", { class: "inc-meta" },
    statusPill(inc.status),
    inc.root_service || inc.service ? h("span", { class: "svc", title: `root service; hit: ${(inc.services || []).join(", ")}` },
      inc.root_service || inc.service) : null,
    n > 1 ? h("span", { class: "muted more-svc", title: inc.services.join(", ") }, `+${n - 1}`) : null,
    h("span", { class: "spacer" }),
    end && ms(end) > ms(inc.opened_at) ? h("span", { class: "muted dur", title: inc.status === "resolved" ? "lasted" : "symptoms for" },
      fmtDuration(ms(end) - ms(inc.opened_at))) : null,
    h("span", { class: "muted when" }, relTime(inc.opened_at))),
  inc.tag_change_id ? h("div", { class: "inc-tag" }, "cause: ", h("code", {}, inc.tag_change_id)) : null));
  return el;
}

export function renderList() {
  const el = $("#list");
  if (!el) return;
  for (const b of document.querySelectorAll("#status-tabs button")) b.classList.toggle("active", b.dataset.status === list.status);
  if (list.loading && !list.items.length) {
    clear(el, skeleton(4, "list-skel"), skeleton(4, "list-skel"), skeleton(4, "list-skel"));
    return;
  }
  const parts = [];
  if (list.error) parts.push(errorBox("Could not load incidents", list.error, () => loadList()));
  if (!list.items.length && !list.error) {
    parts.push(emptyState(list.status || list.q ? "No incidents match" : "No incidents",
      list.status || list.q ? "Try another status or search." : "All quiet. Incidents the stream job opens, or that a responder declares, appear here live."));
  }
  if (list.items.length) {
    parts.push(h("ul", { class: "inc-list" }, list.items.map(item)));
    if (list.next) parts.push(h("button", { class: "btn ghost more", onclick: () => loadList({ more: true }) }, "Load more"));
  }
  clear(el, parts);
  el.classList.toggle("refreshing", list.loading);
  const count = $("#list-count");
  if (count) count.textContent = list.items.length ? String(list.items.length) + (list.next ? "+" : "") : "";
  list.flash.clear();
}

export function setSelected(id) {
  list.selected = id;
  for (const a of document.querySelectorAll("#list a.inc")) a.classList.toggle("selected", a.dataset.id === id);
}

export function bindListControls() {
  $("#status-tabs").addEventListener("click", (e) => {
    const b = e.target.closest("button");
    if (!b) return;
    list.status = b.dataset.status;
    loadList();
  });
  const search = $("#search");
  search.addEventListener("input", debounce(() => {
    list.q = search.value.trim();
    loadList();
  }, 300));
  $("#sort").addEventListener("change", (e) => {
    list.sort = e.target.value;
    loadList();
  });
}
