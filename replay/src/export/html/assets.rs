//! The page's stylesheet and script, inlined: the report loads nothing.
//!
//! The lane colours are part of the page's contract (the legend names
//! them, and the report's test looks for them in a screenshot):
//! primary `#1d4ed8`, replica `#16a34a`, role unknown `#cbd5e1`, down
//! `#dc2626`. Nothing else on the page is painted in the first two.
//!
//! The script only adds comfort — clicking a decision marker copies the
//! decision's details under the chart and opens its row; the page reads
//! the same without it. It marks `<html data-ready="true">` once it ran.

/// The stylesheet.
pub const CSS: &str = r#"
:root {
  --primary: #1d4ed8; --replica: #16a34a; --unknown: #cbd5e1; --down: #dc2626; --track: #eef2f6;
  --failover: #ea580c; --switchover: #7c3aed; --observed: #a16207; --shard: #c026d3; --decision: #334155; --operator: #64748b;
  --migration: #0d9488;
  --ink: #0f172a; --muted: #64748b; --line: #e2e8f0; --soft: #f8fafc; --link: #2563eb;
  --ok: #15803d; --bad: #b91c1c; --warn: #b45309;
}
* { box-sizing: border-box; }
html { scroll-behavior: smooth; }
body { margin: 0; font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif; color: var(--ink); background: #fff; }
a { color: var(--link); text-decoration: none; }
a:hover { text-decoration: underline; }
code { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, "DejaVu Sans Mono", monospace; font-size: 12.5px; }
header.top { padding: 14px 24px 0; border-bottom: 1px solid var(--line); background: var(--soft); }
h1 { font-size: 20px; margin: 0 0 10px; font-weight: 500; }
h1 .brand { font-weight: 700; }
h1 .name { font-weight: 700; margin-left: 4px; }
dl.facts { display: grid; grid-template-columns: repeat(auto-fill, minmax(200px, 1fr)); gap: 6px 20px; margin: 0 0 8px; }
dl.facts div { min-width: 0; }
dl.facts dt { font-size: 11px; text-transform: uppercase; letter-spacing: .05em; color: var(--muted); }
dl.facts dd { margin: 0; overflow-wrap: anywhere; }
nav { display: flex; gap: 20px; padding: 6px 0 10px; font-weight: 500; }
nav a { color: var(--ink); }
main { padding: 0 24px 16px; }
section { margin-top: 20px; }
h2 { font-size: 17px; margin: 0 0 8px; padding-bottom: 4px; border-bottom: 1px solid var(--line); }
h2 .count { font-size: 12px; font-weight: 500; color: var(--muted); background: var(--soft); border: 1px solid var(--line); border-radius: 10px; padding: 0 7px; vertical-align: 2px; }
.legend { display: flex; flex-wrap: wrap; gap: 4px 18px; font-size: 12.5px; color: #334155; margin: 0 0 8px; }
.legend span { display: inline-flex; align-items: center; gap: 6px; }
.swatch { width: 22px; height: 12px; border-radius: 2px; display: inline-block; }
.swatch.role-primary { background: var(--primary); }
.swatch.role-replica { background: var(--replica); }
.swatch.role-unknown { background: var(--unknown); }
.swatch.role-down { background: var(--down); }
.swatch.role-absent { background: var(--track); border: 1px solid #cfd8e3; }
.rule { width: 3px; height: 16px; display: inline-block; background: var(--failover); }
.rule.kind-planned { background: var(--switchover); }
.rule.kind-observed { background: var(--observed); }
.rule.shard { background: var(--shard); }
.rule.shard.kind-election { background: repeating-linear-gradient(var(--shard) 0 2px, transparent 2px 5px); }
.rule.operator { width: 2px; background: repeating-linear-gradient(var(--operator) 0 2px, transparent 2px 5px); }
.bar { width: 22px; height: 7px; border-radius: 1px; display: inline-block; background: var(--migration); }
.bar.outcome-failed { background: var(--bad); }
.bar.outcome-ambiguous { background: var(--warn); }
.bar.outcome-pending { background: repeating-linear-gradient(90deg, var(--migration) 0 3px, transparent 3px 6px); }
.diamond { width: 10px; height: 10px; transform: rotate(45deg); background: var(--decision); display: inline-block; margin: 0 3px; }
.diamond.changes-primary { background: var(--failover); }
.diamond.questioned { border: 2px solid var(--bad); }
figure.chart { margin: 0; border: 1px solid var(--line); border-radius: 6px; padding: 6px 6px 2px; }
figcaption { font-size: 12px; color: var(--muted); padding: 2px 4px 4px; }
svg { display: block; }
svg text { font-family: inherit; }
svg .lane-name { font-size: 13px; text-anchor: end; fill: var(--ink); }
svg .decisions-lane .lane-name { fill: var(--muted); font-style: italic; }
svg .tick { font-size: 11px; fill: var(--muted); }
svg .grid { stroke: var(--line); stroke-width: 1; }
svg .track { fill: var(--track); }
svg .role-primary { fill: var(--primary); }
svg .role-replica { fill: var(--replica); }
svg .role-unknown { fill: var(--unknown); }
svg .role-down { fill: var(--down); }
svg .track-line { stroke: var(--line); stroke-width: 2; }
svg .marker-failover line { stroke: var(--failover); stroke-width: 2.5; }
svg .marker-failover text { fill: var(--failover); font-size: 12px; font-weight: 700; paint-order: stroke; stroke: #fff; stroke-width: 4px; stroke-linejoin: round; }
svg .marker-failover text .to { font-weight: 500; }
svg .marker-failover.kind-planned line { stroke: var(--switchover); stroke-dasharray: 7 3; }
svg .marker-failover.kind-planned text { fill: var(--switchover); }
svg .marker-failover.kind-observed line { stroke: var(--observed); stroke-dasharray: 2 3; }
svg .marker-failover.kind-observed text { fill: var(--observed); }
svg .marker-shard line { stroke: var(--shard); stroke-width: 2.5; stroke-dasharray: 10 3 2 3; }
svg .marker-shard text { fill: var(--shard); font-size: 12px; font-weight: 700; paint-order: stroke; stroke: #fff; stroke-width: 4px; stroke-linejoin: round; }
svg .marker-shard text .to { font-weight: 500; }
svg .marker-shard.kind-election line { stroke-dasharray: 2 3; }
svg .migrations-lane .lane-name { fill: var(--muted); font-style: italic; }
svg .marker-migration rect { fill: var(--migration); }
svg .marker-migration line { stroke: var(--ink); stroke-width: 1.5; }
svg .marker-migration.outcome-failed rect { fill: var(--bad); }
svg .marker-migration.outcome-ambiguous rect { fill: var(--warn); }
svg .marker-migration.outcome-pending rect, svg .marker-migration.outcome-abandoned rect { fill: var(--migration); fill-opacity: .35; }
svg .marker-operator line { stroke: var(--operator); stroke-width: 1.5; stroke-dasharray: 2 3; }
svg .marker-operator path { fill: var(--operator); }
svg .marker-decision { fill: var(--decision); stroke: #fff; stroke-width: 1.5; cursor: pointer; }
svg .marker-decision.changes-primary { fill: var(--failover); }
svg .marker-decision.questioned { stroke: var(--bad); stroke-width: 3; }
svg .marker-decision:hover, svg .marker-decision.selected { stroke: var(--ink); stroke-width: 3; }
svg .marker-link:focus { outline: none; }
svg .marker-link:focus .marker-decision { stroke: var(--ink); stroke-width: 3; }
.panel { margin-top: 10px; border: 1px solid var(--line); border-left: 4px solid var(--failover); border-radius: 6px; padding: 8px 14px; background: var(--soft); }
.panel h3 { margin: 0 0 2px; font-size: 15px; }
.panel .hint { color: var(--muted); margin: 0; }
.panel .decision-body { padding: 0; }
table { border-collapse: collapse; font-size: 13px; }
th, td { text-align: left; vertical-align: top; padding: 5px 8px; border-bottom: 1px solid var(--line); }
th { font-size: 11px; text-transform: uppercase; letter-spacing: .04em; color: var(--muted); font-weight: 600; background: var(--soft); }
.scroll { overflow-x: auto; }
table.failovers { width: 100%; font-size: 12.5px; }
table.failovers td { min-width: 84px; }
table.failovers td.decided { min-width: 220px; }
table.failovers td.pair { white-space: nowrap; }
table.failovers td:first-child { min-width: 0; }
table.failovers td.candidates { min-width: 210px; }
ul.plain b { white-space: nowrap; }
table.events { width: 100%; }
table.migrations { width: 100%; font-size: 12.5px; }
table.migrations td.pair { white-space: nowrap; }
ul.phases li.paused { background: #fef3c7; }
h3 { font-size: 15px; margin: 14px 0 4px; }
table.events td:nth-child(2), table.events td:nth-child(5) { white-space: nowrap; }
.what { color: #475569; font-size: 12px; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
td.yes { color: var(--ok); }
td.no { color: var(--bad); }
tr.chosen td, li.chosen { background: #fff1e6; }
tr.chosen td:last-child { color: var(--failover); font-weight: 700; }
ul.plain { list-style: none; padding: 0; margin: 0; }
ul.plain li { padding: 1px 4px; border-radius: 3px; }
.ok { color: var(--ok); font-weight: 600; }
.bad { color: var(--bad); font-weight: 600; }
.warn { color: var(--warn); font-weight: 600; }
.none { color: var(--muted); }
.note { color: #475569; }
.more { color: var(--muted); }
.badge { display: inline-block; padding: 0 9px; border-radius: 10px; font-weight: 600; }
.badge.ok { background: #dcfce7; color: var(--ok); }
.badge.bad { background: #fee2e2; color: var(--bad); }
.banner { background: #fee2e2; border: 1px solid #fecaca; padding: 8px 12px; border-radius: 6px; color: var(--bad); }
.verdict { font-weight: 600; padding: 8px 12px; border-radius: 6px; margin: 0 0 8px; }
.verdict.ok { background: #f0fdf4; color: var(--ok); }
.verdict.bad { background: #fef2f2; color: var(--bad); }
table.checks { margin-bottom: 8px; }
.finding { border-left: 4px solid var(--bad); padding: 4px 12px; margin: 8px 0; background: #fffafa; }
.finding p { margin: 2px 0; }
.finding .check { font-family: ui-monospace, monospace; font-weight: 700; color: var(--bad); }
.side ul { margin: 2px 0 6px; padding-left: 22px; }
.side li .what { margin-bottom: 2px; }
.decision-list { border: 1px solid var(--line); border-radius: 6px; overflow: hidden; }
.decision-head, details.decision > summary { display: grid; grid-template-columns: 70px 100px 40px minmax(0, 1fr) 200px 200px; gap: 10px; padding: 6px 10px; align-items: baseline; }
.decision-head { font-size: 11px; text-transform: uppercase; letter-spacing: .04em; color: var(--muted); background: var(--soft); font-weight: 600; }
details.decision { border-top: 1px solid var(--line); }
details.decision > summary { cursor: pointer; list-style: none; }
details.decision > summary::-webkit-details-marker { display: none; }
details.decision > summary > span:first-child::before { content: "▸ "; color: var(--muted); }
details.decision[open] > summary > span:first-child::before { content: "▾ "; }
details.decision > summary:hover { background: var(--soft); }
details.decision[open] > summary { background: #eff4ff; }
details.decision.changes-primary > summary > span:first-child { color: var(--failover); font-weight: 700; }
details.decision.questioned > summary { box-shadow: inset 4px 0 0 var(--bad); }
.decision-body { padding: 4px 14px 10px 34px; }
.after { color: #475569; margin: 4px 0 6px; }
.reason { margin: 6px 0 8px; }
.reason p { margin: 0; }
.reason .code { font-family: ui-monospace, monospace; font-weight: 700; }
.reason .fields { color: var(--muted); margin-left: 6px; }
.reason .sentence { margin: 2px 0 6px; }
table.candidates caption { text-align: left; font-size: 12px; color: var(--muted); padding: 2px 0; }
table.candidates, table.intents { margin: 4px 0 8px; background: #fff; }
table.events td:first-child { text-align: right; font-variant-numeric: tabular-nums; color: var(--muted); }
tr.ev-decision td { background: #f5f7ff; }
tr.ev-outcome td { color: #334155; }
tr.ev-record td { background: #fffbeb; }
tr.gap td { text-align: center; color: var(--muted); font-style: italic; background: var(--soft); }
:target { scroll-margin-top: 12px; }
tr:target td, details:target > summary, .finding:target { background: #fef9c3; }
footer { padding: 12px 24px 24px; color: var(--muted); font-size: 12px; border-top: 1px solid var(--line); }
@media print { nav, .panel .hint { display: none; } .scroll { overflow: visible; } }
"#;

/// The script.
pub const SCRIPT: &str = r#"
(function () {
  'use strict';
  var doc = document;
  var panel = doc.getElementById('decision-panel');
  var markers = doc.querySelectorAll('.marker-decision');
  function select(seq) {
    for (var i = 0; i < markers.length; i++) {
      markers[i].classList.toggle('selected', markers[i].getAttribute('data-seq') === seq);
    }
  }
  function show(seq, open) {
    var d = doc.getElementById('decision-' + seq);
    if (!d) { return false; }
    select(seq);
    if (panel) {
      panel.textContent = '';
      var h = doc.createElement('h3');
      var a = doc.createElement('a');
      a.href = '#decision-' + seq;
      a.textContent = 'Decision #' + seq;
      h.appendChild(a);
      h.appendChild(doc.createTextNode(' at ' + (d.getAttribute('data-when') || '') + ' UTC'));
      panel.appendChild(h);
      var body = d.querySelector('.decision-body');
      if (body) { panel.appendChild(body.cloneNode(true)); }
      panel.setAttribute('data-seq', seq);
    }
    if (open) { d.open = true; }
    return true;
  }
  for (var i = 0; i < markers.length; i++) {
    markers[i].addEventListener('click', function (ev) {
      ev.preventDefault();
      show(this.getAttribute('data-seq'), true);
    });
  }
  var rows = doc.querySelectorAll('details.decision');
  for (var j = 0; j < rows.length; j++) {
    rows[j].addEventListener('toggle', function () {
      if (this.open) { show(this.getAttribute('data-seq'), false); }
    });
  }
  function fromHash() {
    var m = /^#decision-(\d+)$/.exec(window.location.hash);
    return m ? show(m[1], true) : false;
  }
  window.addEventListener('hashchange', fromHash);
  if (!fromHash()) {
    var chart = doc.getElementById('chart');
    var seq = chart && chart.getAttribute('data-default-decision');
    if (seq) { show(seq, false); }
  }
  doc.documentElement.setAttribute('data-markers', String(markers.length));
  doc.documentElement.setAttribute('data-ready', 'true');
})();
"#;
