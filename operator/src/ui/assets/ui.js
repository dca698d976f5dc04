// Logbook's UI: one script, no framework. Every view is drawn from the
// JSON endpoints under /api and kept live by server-sent events. Text from
// the server only ever goes in as text (never as HTML).
"use strict";

const main = document.getElementById("main");
const crumbs = document.getElementById("crumbs");
const liveBadge = document.getElementById("live");
let source = null; // the open EventSource
let timers = {};

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
    else if (k === "class") node.className = v;
    else if (k === "dataset") Object.assign(node.dataset, v);
    else node.setAttribute(k, v === true ? "" : v);
  }
  for (const c of children.flat()) {
    if (c === null || c === undefined || c === false) continue;
    node.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return node;
}

function svg(tag, attrs, ...children) {
  const node = document.createElementNS("http://www.w3.org/2000/svg", tag);
  for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, v);
  for (const c of children.flat()) {
    if (c === null || c === undefined) continue;
    node.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return node;
}

// A time in the browser's zone.
function when(text) {
  if (!text) return "—";
  const d = new Date(text);
  return isNaN(d) ? text : d.toLocaleString();
}

function ago(text) {
  if (!text) return "";
  const s = Math.round((Date.now() - new Date(text)) / 1000);
  if (isNaN(s)) return "";
  if (s < 60) return `${s} s ago`;
  if (s < 3600) return `${Math.round(s / 60)} min ago`;
  if (s < 86400) return `${Math.round(s / 3600)} h ago`;
  return `${Math.round(s / 86400)} d ago`;
}

async function get(url) {
  const r = await fetch(url, { headers: { Accept: "application/json" } });
  let body = null;
  try { body = await r.json(); } catch (_) { /* not JSON */ }
  // Behind the operator's Deployment, a reader not (or no longer) signed
  // in signs in again.
  if (r.status === 401) { location.assign("/login"); }
  if (!r.ok) throw new Error((body && body.error) || `${r.status} ${r.statusText}`);
  return body;
}

function later(key, ms, fn) {
  clearTimeout(timers[key]);
  timers[key] = setTimeout(fn, ms);
}

function setLive(on, text) {
  liveBadge.className = on ? "live-on" : "live-off";
  liveBadge.textContent = text || (on ? "live" : "offline");
}

function listen(url, handlers) {
  if (source) source.close();
  source = new EventSource(url);
  source.onopen = () => setLive(true);
  source.onerror = () => setLive(false, "reconnecting…");
  for (const [name, fn] of Object.entries(handlers)) {
    source.addEventListener(name, (e) => fn(e));
  }
}

function condition(status, type) {
  return ((status && status.conditions) || []).find((c) => c.type === type);
}

function phaseBadge(s) {
  const status = s.status || {};
  const degraded = condition(status, "Degraded");
  const phase = s.deleting ? "Deleting" : (status.phase || "Pending");
  const bad = degraded && degraded.status === "True";
  return el("span", { class: `badge phase-${phase.toLowerCase()}${bad ? " degraded" : ""}` },
    phase, bad ? " · Degraded" : "");
}

function isDegraded(s) {
  const d = condition(s.status, "Degraded");
  return !!(d && d.status === "True");
}

function primariesOf(s) {
  const st = s.status || {};
  if (st.shards && st.shards.length) return st.shards.map((x) => x.primary || "?").join(", ");
  return st.primary || "—";
}

function clusterHref(ns, name) {
  return `/clusters/${encodeURIComponent(ns)}/${encodeURIComponent(name)}`;
}

// ---- the clusters ---------------------------------------------------------

let clusterFilter = { text: "", topology: "", degraded: false };

async function showClusters() {
  crumbs.replaceChildren(el("span", {}, "Clusters"));
  document.title = "Clusters · Logbook";
  const filters = el("form", { class: "filters", role: "search", onsubmit: (e) => e.preventDefault() },
    el("label", {}, "Find ", el("input", {
      type: "search", id: "filter-text", placeholder: "name or namespace", value: clusterFilter.text,
      oninput: (e) => { clusterFilter.text = e.target.value; drawClusters(); },
    })),
    el("label", {}, "Topology ", el("select", {
      id: "filter-topology",
      onchange: (e) => { clusterFilter.topology = e.target.value; drawClusters(); },
    }, ["", "Standalone", "Replication", "Sentinel", "Cluster"].map((t) =>
      el("option", { value: t, selected: clusterFilter.topology === t }, t || "any")))),
    el("label", {}, el("input", {
      type: "checkbox", id: "filter-degraded", checked: clusterFilter.degraded,
      onchange: (e) => { clusterFilter.degraded = e.target.checked; drawClusters(); },
    }), " only degraded"));
  main.replaceChildren(el("h1", {}, "Valkey clusters"), filters, el("div", { id: "clusters" }));
  await loadClusters();
  listen("/api/live", { changed: () => later("clusters", 300, loadClusters) });
}

let clusterList = [];

async function loadClusters() {
  try {
    clusterList = await get("/api/clusters");
    drawClusters();
  } catch (e) {
    document.getElementById("clusters").replaceChildren(el("p", { class: "error" }, e.message));
  }
  document.body.dataset.ready = "true";
}

function drawClusters() {
  const box = document.getElementById("clusters");
  if (!box) return;
  const f = clusterFilter;
  const rows = clusterList.filter((s) =>
    (!f.text || `${s.namespace}/${s.name}`.includes(f.text)) &&
    (!f.topology || s.topology === f.topology) &&
    (!f.degraded || isDegraded(s)));
  if (!clusterList.length) {
    box.replaceChildren(el("p", { class: "muted" }, "No ValkeyCluster you may read."));
    return;
  }
  const body = rows.map((s) => {
    const st = s.status || {};
    const lf = st.lastFailover;
    const backup = st.backup || {};
    const degraded = condition(st, "Degraded");
    return el("tr", { class: isDegraded(s) ? "degraded" : "", dataset: { cluster: `${s.namespace}/${s.name}` } },
      el("td", {}, el("a", { href: clusterHref(s.namespace, s.name) }, s.name)),
      el("td", {}, s.namespace),
      el("td", {}, s.topology, s.shards ? ` · ${s.shards} shards` : ""),
      el("td", {}, phaseBadge(s)),
      el("td", { class: "num" }, `${st.readyReplicas ?? 0}/${s.wantedPods}`),
      el("td", {}, primariesOf(s)),
      el("td", { class: "num" }, st.journal ? `#${st.journal.seq}` : "—"),
      el("td", {}, lf ? el("span", { title: when(lf.at) }, `${lf.from || "?"} → ${lf.to || "?"}, ${ago(lf.at)}`) : "—"),
      el("td", {}, backup.lastCompleted ? el("span", { title: when(backup.lastCompletedAt) }, `${backup.lastCompleted}, ${ago(backup.lastCompletedAt)}`) : "—"),
      el("td", {}, certificateCell(s)),
      el("td", { class: "why" }, degraded && degraded.status === "True" ? degraded.message : ""));
  });
  box.replaceChildren(el("table", { class: "list" },
    el("thead", {}, el("tr", {}, ["Cluster", "Namespace", "Topology", "Phase", "Pods ready", "Primary", "Journal", "Last failover", "Last backup", "Certificate", "Why degraded"].map((h) => el("th", { scope: "col" }, h)))),
    el("tbody", {}, body)),
    el("p", { class: "muted" }, `${rows.length} of ${clusterList.length} shown`));
}

// ---- one cluster -----------------------------------------------------------

let current = null; // { ns, name, detail, head, oldest, liveCount }

async function showCluster(ns, name) {
  current = { ns, name, detail: null, head: 0, older: null, liveCount: 0 };
  document.title = `${name} · Logbook`;
  crumbs.replaceChildren(el("a", { href: "/" }, "Clusters"), " / ", el("span", {}, `${ns}/${name}`));
  const base = `/api/clusters/${encodeURIComponent(ns)}/${encodeURIComponent(name)}`;
  current.base = base;
  main.replaceChildren(
    el("section", { id: "head" }),
    el("nav", { class: "sections", "aria-label": "Sections" },
      ["topology", "pods", "timeline", "failovers", "reshards", "state", "backups", "security", "audit"].map((id) =>
        el("a", { href: `#${id}` }, id)),
      el("a", { href: `${clusterHref(ns, name)}/report`, target: "_blank", rel: "noopener" }, "full report ↗")),
    el("section", { id: "topology" }, el("h2", {}, "Topology"), el("div", { id: "drawing" })),
    el("section", { id: "pods" }, el("h2", {}, "Pods"), el("div", { id: "pod-table" })),
    el("section", { id: "timeline" }, el("h2", {}, "Journal"),
      el("p", { class: "muted" }, "Newest first; what is appended shows up here as it happens. Select an event to link to it."),
      el("div", { class: "kinds" }, ["decision", "outcome", "observation", "spec", "operator"].map((k) =>
        el("label", { class: `kind ${k}` }, el("input", { type: "checkbox", checked: true, onchange: (e) => {
          document.getElementById("events").classList.toggle(`hide-${k}`, !e.target.checked);
        } }), ` ${k}s`))),
      el("ol", { id: "events", reversed: true }),
      el("button", { id: "older", type: "button", onclick: () => loadPage(current.older) }, "Older events")),
    el("section", { id: "failovers" }, el("h2", {}, "Failovers"), el("ol", { id: "failover-links" }), el("pre", { id: "failover-text", class: "report" }, "…")),
    el("section", { id: "reshards" }, el("h2", {}, "Reshards"), el("pre", { id: "reshard-text", class: "report" }, "…")),
    el("section", { id: "state" }, el("h2", {}, "State at any moment"),
      el("p", { class: "muted" }, "What the operator knew just after an event (replay state --at)."),
      el("label", {}, "Seq ", el("input", { type: "range", id: "state-at", min: 1, max: 1, value: 1, oninput: (e) => {
        document.getElementById("state-seq").value = e.target.value;
        later("state", 250, () => loadState(e.target.value));
      } })),
      " ", el("input", { type: "number", id: "state-seq", min: 1, onchange: (e) => loadState(e.target.value) }),
      el("pre", { id: "state-text", class: "report" }, "")),
    el("section", { id: "backups" }, el("h2", {}, "Backups and restores"), el("div", { id: "backup-info" })),
    el("section", { id: "security" }, el("h2", {}, "Certificates and users"),
      el("div", { id: "certificate-info" }), el("div", { id: "user-table" })),
    el("section", { id: "audit" }, el("h2", {}, "Audit"),
      el("p", { class: "muted" }, "Replays every decision against this build's rules (replay audit)."),
      el("button", { type: "button", id: "run-audit", onclick: runAudit }, "Run the audit"),
      el("pre", { id: "audit-text", class: "report" }, "")));
  try {
    await loadDetail();
  } catch (e) {
    main.replaceChildren(el("p", { class: "error", id: "error" }, e.message));
    document.body.dataset.ready = "true";
    return;
  }
  await loadPage(null);
  await loadStory();
  loadState(current.head);
  document.body.dataset.ready = "true";
  focusHash();
  listen(`${base}/live?after=${current.head}`, {
    journal: (e) => addLive(JSON.parse(e.data)),
    cluster: () => later("detail", 200, loadDetail),
    deleted: () => document.getElementById("head").prepend(el("p", { class: "error" }, "This ValkeyCluster was deleted.")),
    problem: (e) => console.warn(e.data),
  });
}

async function loadDetail() {
  const d = await get(current.base);
  current.detail = d;
  drawHead(d);
  drawTopology(d);
  drawPods(d);
  drawBackups(d);
  drawSecurity(d);
  const slider = document.getElementById("state-at");
  if (slider && d.head) {
    slider.max = d.head;
    if (!document.getElementById("state-seq").value) {
      slider.value = d.head;
      document.getElementById("state-seq").value = d.head;
    }
  }
}

function drawHead(d) {
  const s = d.summary;
  const st = s.status || {};
  const conditions = (st.conditions || []).map((c) =>
    el("li", { class: `cond ${c.status === "True" ? "true" : "false"} type-${c.type}` },
      el("strong", {}, c.type), ` ${c.status} · ${c.reason}`, c.message ? el("div", { class: "why" }, c.message) : null));
  const lf = st.lastFailover;
  document.getElementById("head").replaceChildren(...[
    el("h1", {}, s.name, " ", phaseBadge(s)),
    el("p", { class: "facts" },
      `${s.topology} in ${s.namespace}`, s.shards ? `, ${s.shards} shards` : "",
      ` · ${st.readyReplicas ?? 0}/${s.wantedPods} pods ready · image ${s.image}`,
      s.tls ? " · TLS" : "",
      ` · journal #${d.head} (${d.journal})`),
    el("p", { class: "facts" }, "Primary: ", el("strong", { id: "primary", dataset: { primary: primariesOf(s) } }, primariesOf(s)),
      lf ? ` · last failover ${lf.from || "?"} → ${lf.to || "?"} at ${when(lf.at)}${lf.reason ? ` (${lf.reason})` : ""}` : ""),
    d.journalError ? el("p", { class: "error" }, `The journal could not be read: ${d.journalError}`) : null,
    d.inFlight && d.inFlight.length ? el("p", { class: "facts" }, "Under way: ", d.inFlight.join("; ")) : null,
    el("ul", { class: "conditions" }, conditions)].filter(Boolean));
}

function drawPods(d) {
  const rows = d.pods.map((p) => el("tr", { class: p.ready ? "" : "not-ready", dataset: { pod: p.name } },
    el("td", {}, p.name), el("td", {}, p.ready ? "ready" : (p.phase || "not ready"), p.terminating ? " · terminating" : ""),
    el("td", {}, p.role || "—"), el("td", {}, p.roleLabel || "—"), el("td", {}, p.replicates || "—"),
    el("td", {}, p.link || "—"), el("td", { class: "num" }, p.lag ?? "—"), el("td", {}, p.reachability || "—"),
    el("td", { class: "num" }, p.restarts), el("td", {}, p.node || "—")));
  document.getElementById("pod-table").replaceChildren(el("table", { class: "list" },
    el("thead", {}, el("tr", {}, ["Pod", "State", "Role (reported)", "Role label", "Replicates", "Link", "Lag (bytes)", "Reached", "Restarts", "Node"].map((h) => el("th", { scope: "col" }, h)))),
    el("tbody", {}, rows)));
}

// The topology as a drawing: a shard (or the one replication group) per
// column, its primary on top and its replicas below, links coloured by
// their state.
function drawTopology(d) {
  const s = d.summary;
  const groups = [];
  const podsBy = Object.fromEntries(d.pods.map((p) => [p.name, p]));
  if (d.valkeyCluster && d.valkeyCluster.pods.length) {
    const vc = d.valkeyCluster;
    for (const p of vc.pods.filter((p) => p.role === "primary")) {
      groups.push({ title: p.claims || "no slots", primary: p.pod,
        replicas: vc.pods.filter((r) => r.role === "replica" && r.of === p.pod).map((r) => r.pod) });
    }
    const placed = new Set(groups.flatMap((g) => [g.primary, ...g.replicas]));
    const rest = d.pods.map((p) => p.name).filter((n) => !placed.has(n));
    if (rest.length) groups.push({ title: "not in a shard", primary: null, replicas: rest });
  } else {
    const primary = (s.status && s.status.primary) || (d.pods.find((p) => p.role === "Primary") || {}).name || null;
    groups.push({ title: s.topology, primary, replicas: d.pods.map((p) => p.name).filter((n) => n !== primary) });
  }
  const W = 190, H = 46, GAP = 24, top = 30;
  const rows = Math.max(1, ...groups.map((g) => g.replicas.length + 1));
  const width = Math.max(groups.length * (W + GAP) + GAP, 300);
  const height = top + rows * (H + GAP) + 10;
  const drawing = svg("svg", { viewBox: `0 0 ${width} ${height}`, width, height, role: "img", "aria-label": "Topology" });
  groups.forEach((g, i) => {
    const x = GAP + i * (W + GAP);
    drawing.append(svg("text", { x, y: 18, class: "group-title" }, g.title));
    const node = (name, row, primary) => {
      const p = podsBy[name] || {};
      const y = top + row * (H + GAP);
      const cls = `node ${primary ? "primary" : "replica"}${p.ready ? "" : " down"}`;
      const lag = !primary && p.lag !== undefined && p.lag !== null ? ` · lag ${p.lag}` : "";
      return svg("g", { class: cls, "data-pod": name },
        svg("title", {}, `${name}: ${p.role || "?"}${p.link ? `, link ${p.link}` : ""}${lag}`),
        svg("rect", { x, y, width: W, height: H, rx: 6 }),
        svg("text", { x: x + 10, y: y + 19, class: "pod-name" }, name),
        svg("text", { x: x + 10, y: y + 36, class: "pod-role" }, `${primary ? "primary" : "replica"}${p.ready ? "" : " · down"}${lag}`));
    };
    if (g.primary) drawing.append(node(g.primary, 0, true));
    g.replicas.forEach((r, j) => {
      const row = j + (g.primary ? 1 : 0);
      const p = podsBy[r] || {};
      if (g.primary) {
        drawing.append(svg("line", {
          x1: x + W / 2, y1: top + H + (row - 1) * (H + GAP), x2: x + W / 2, y2: top + row * (H + GAP),
          class: `link ${(p.link || "").toLowerCase()}`,
        }));
      }
      drawing.append(node(r, row, false));
    });
  });
  const box = document.getElementById("drawing");
  const extra = [];
  const st = s.status || {};
  if (st.sentinel) extra.push(el("p", { class: "facts" }, "Sentinels: ", JSON.stringify(st.sentinel)));
  if (d.valkeyCluster) {
    const vc = d.valkeyCluster;
    extra.push(el("p", { class: "facts" }, vc.formed ? "Formed" : "Forming", ` · unowned slots ${vc.unownedSlots ?? vc.unowned_slots ?? 0}`,
      (vc.moves_in_flight || []).length ? ` · moving: ${vc.moves_in_flight.join("; ")}` : ""));
  }
  box.replaceChildren(drawing, ...extra.filter(Boolean));
}

function drawBackups(d) {
  const st = d.summary.status || {};
  const b = st.backup || {};
  const r = st.restore;
  document.getElementById("backup-info").replaceChildren(el("ul", {},
    el("li", {}, "Last completed: ", b.lastCompleted ? `${b.lastCompleted} at ${when(b.lastCompletedAt)}${b.lastBytes ? `, ${b.lastBytes} bytes` : ""}` : "none"),
    b.running ? el("li", {}, `Running: ${b.running}`) : null,
    b.nextScheduledAt ? el("li", {}, `Next scheduled: ${when(b.nextScheduledAt)}`) : null,
    r ? el("li", {}, `Restore from ${r.source}: ${r.phase}${r.message ? ` (${r.message})` : ""}`) : null));
}

// The list's certificate cell: when it expires (red within 14 days), or
// why it cannot be used.
function certificateCell(s) {
  const t = (s.status || {}).tls;
  if (!s.tls) return "—";
  if (!t) return "not read yet";
  if (t.problem) return el("span", { class: "error" }, t.problem);
  if (!t.notAfter) return `${t.issuer}, expiry not known`;
  const days = daysUntil(t.notAfter);
  return el("span", { class: days !== null && days < 14 ? "error" : "", title: when(t.notAfter) }, `expires in ${days} days`);
}

// Days until `t` (RFC 3339), or null.
function daysUntil(t) {
  const at = Date.parse(t);
  return Number.isNaN(at) ? null : Math.floor((at - Date.now()) / 86400000);
}

function drawSecurity(d) {
  const c = d.certificate;
  let cert;
  if (!d.summary.tls) {
    cert = el("p", { class: "muted" }, "TLS is off.");
  } else if (!c) {
    cert = el("p", { class: "muted" }, "The journal holds no certificate of this cluster yet.");
  } else {
    const days = c.notAfter ? daysUntil(c.notAfter) : null;
    const soon = days !== null && days < 14;
    cert = el("ul", { id: "certificate" },
      el("li", {}, `Secret ${c.secret}, issued by ${c.source}`),
      el("li", { class: soon ? "error" : "" }, "Expires: ",
        c.notAfter ? `${when(c.notAfter)} (${days} days)` : "not known (not issued by the operator)"),
      c.fingerprint ? el("li", {}, "SHA-256 ", el("code", {}, c.fingerprint)) : null,
      c.problem ? el("li", { class: "error" }, `Cannot be used: ${c.problem}`) : null,
      el("li", {}, `Served by ${c.currentPods.length ? c.currentPods.join(", ") : "no pod seen yet"}`),
      c.stalePods.length ? el("li", { class: "error" }, `Still serving another certificate: ${c.stalePods.join(", ")}`) : null);
  }
  document.getElementById("certificate-info").replaceChildren(el("h3", {}, "Certificate"), cert);
  let users;
  if (d.usersError) {
    users = el("p", { class: "muted" }, d.usersError);
  } else if (!d.users.length) {
    users = el("p", { class: "muted" }, "No ValkeyUser names this cluster.");
  } else {
    users = el("table", { id: "users" },
      el("thead", {}, el("tr", {}, ["ValkeyUser", "ACL user", "Phase", "Nodes", "Why"].map((h) => el("th", { scope: "col" }, h)))),
      el("tbody", {}, d.users.map((u) => el("tr", { class: u.phase === "Ready" ? "" : "degraded" },
        el("td", {}, u.name), el("td", {}, u.username || "—"), el("td", {}, u.phase || "Pending"),
        el("td", {}, u.nodes || "—"), el("td", { class: "why" }, u.message || "")))));
  }
  document.getElementById("user-table").replaceChildren(el("h3", {}, "Users"), users);
}

function eventItem(row, live) {
  return el("li", {
    id: `seq-${row.seq}`, class: `event ${row.class}${live ? " new" : ""}`, value: row.seq, tabindex: 0,
    dataset: { seq: row.seq, kind: row.kind },
    onclick: () => { history.replaceState(null, "", `#seq-${row.seq}`); highlight(row.seq); },
    onkeydown: (e) => { if (e.key === "Enter") e.currentTarget.click(); },
  },
  el("span", { class: "seq" }, `#${row.seq}`), " ",
  el("time", { datetime: row.at, title: row.at }, when(row.at)), " ",
  el("span", { class: "kind" }, row.kind), " ",
  el("span", { class: "summary" }, row.summary),
  row.cause ? el("span", { class: "cause" }, ` (caused by ${row.cause})`) : null);
}

async function loadPage(before) {
  const q = before ? `?before=${before}&limit=200` : "?limit=200";
  try {
    const page = await get(`${current.base}/journal${q}`);
    if (!before) current.head = page.head;
    const list = document.getElementById("events");
    for (const row of page.events) list.append(eventItem(row, false));
    current.older = page.older;
    document.getElementById("older").hidden = !page.older;
  } catch (e) {
    document.getElementById("events").append(el("li", { class: "error" }, e.message));
  }
}

function addLive(row) {
  if (row.seq <= current.head) return;
  current.head = row.seq;
  current.liveCount += 1;
  document.body.dataset.liveEvents = current.liveCount;
  const list = document.getElementById("events");
  list.prepend(eventItem(row, true));
  const slider = document.getElementById("state-at");
  if (slider) slider.max = row.seq;
  if (["ReplicaPromoted", "IntentSucceeded", "IntentFailed", "NodeRoleObserved", "PodDeleted", "RoleLabelObserved", "ClusterNodeObserved"].includes(row.kind)) {
    later("detail", 300, loadDetail);
  }
  if (["IntentSucceeded", "IntentFailed", "IntentAbandoned", "ReplicaPromoted"].includes(row.kind)) {
    later("story", 1000, loadStory);
  }
}

async function loadStory() {
  for (const [what, id] of [["failovers", "failover-text"], ["reshards", "reshard-text"]]) {
    try {
      const told = await get(`${current.base}/${what}`);
      const box = document.getElementById(id);
      box.textContent = told.text;
      box.dataset.count = Array.isArray(told.rows) ? told.rows.length : 0;
      if (what === "failovers") drawFailoverLinks(told.rows || []);
    } catch (e) {
      document.getElementById(id).textContent = e.message;
    }
  }
}

// A pod as a failover row names it: a name (Replication) or a node (a shard).
function podOf(x) {
  if (!x) return "?";
  return typeof x === "string" ? x : (x.pod || (x.node_id || "?").slice(0, 8));
}

// Each failover, linked to its decision in the journal (`#seq-<n>`: a link
// to share), newest first.
function drawFailoverLinks(rows) {
  const items = rows.filter((r) => r.decided && r.decided.seq).reverse().map((r) =>
    el("li", { id: `failover-${r.decided.seq}` },
      el("a", { href: `#seq-${r.decided.seq}` }, `${podOf(r.old_primary)} → ${podOf(r.new_primary)}`),
      ` · ${r.decided.reason || r.kind || ""} · `,
      el("time", { datetime: r.decided.at, title: r.decided.at }, when(r.decided.at))));
  document.getElementById("failover-links").replaceChildren(...items);
}

async function loadState(at) {
  const box = document.getElementById("state-text");
  try {
    const s = await get(`${current.base}/state?at=${encodeURIComponent(at)}`);
    box.textContent = `# just after seq ${s.seq} (${when(s.at)})\n${s.text}`;
  } catch (e) {
    box.textContent = e.message;
  }
}

async function runAudit() {
  const box = document.getElementById("audit-text");
  box.textContent = "Replaying…";
  try {
    const a = await get(`${current.base}/audit`);
    box.textContent = a.text;
    box.dataset.clean = a.clean;
    box.className = `report ${a.clean ? "clean" : "findings"}`;
  } catch (e) {
    box.textContent = e.message;
  }
}

function highlight(seq) {
  document.querySelectorAll(".event.selected").forEach((n) => n.classList.remove("selected"));
  const item = document.getElementById(`seq-${seq}`);
  if (item) { item.classList.add("selected"); item.focus(); }
}

async function focusHash() {
  const m = location.hash.match(/^#seq-(\d+)$/);
  if (m) {
    const seq = Number(m[1]);
    // Page back until the event is shown.
    while (!document.getElementById(`seq-${seq}`) && current.older && current.older > seq) {
      await loadPage(current.older);
    }
    highlight(seq);
  } else if (location.hash) {
    const target = document.querySelector(location.hash);
    if (target) target.scrollIntoView();
  }
}

// ---- routing --------------------------------------------------------------

function route() {
  const parts = location.pathname.split("/").filter(Boolean).map(decodeURIComponent);
  if (parts[0] === "clusters" && parts.length === 3) return showCluster(parts[1], parts[2]);
  return showClusters();
}

// A link to an event or a section followed within the page.
window.addEventListener("hashchange", () => { if (current) focusHash(); });

route();
