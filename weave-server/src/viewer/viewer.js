// The weave-rs trace viewer. One script for every page: it reads the path, asks the
// server's own Weave protocol routes for the data, and draws the page. No framework, no
// build step, nothing fetched from elsewhere.
'use strict';

// ---------------------------------------------------------------------------------------
// Small helpers

/** An element: h('a', {href: '/', class: 'x'}, 'text', child, ...). */
function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
    else if (k === 'class') el.className = v;
    else el.setAttribute(k, v === true ? '' : v);
  }
  for (const c of children.flat(Infinity)) {
    if (c === null || c === undefined || c === false) continue;
    el.append(c instanceof Node ? c : String(c));
  }
  return el;
}

const app = () => document.getElementById('app');

function show(...nodes) {
  app().replaceChildren(...nodes);
}

function crumbs(...items) {
  const nav = document.getElementById('crumbs');
  const shown = items.filter(Boolean);
  nav.replaceChildren(...shown.flatMap((it, i) => (i ? [h('span', {class: 'sep'}, '/'), it] : [it])));
}

function failure(err) {
  return h('div', {class: 'error-box'}, String(err && err.message ? err.message : err));
}

/** The text of a protocol route's answer: POST with a JSON `body`, or GET without one. */
async function request(path, body, accept) {
  const init = body === undefined
    ? {headers: {'Accept': accept}}
    : {method: 'POST', headers: {'Content-Type': 'application/json', 'Accept': accept}, body: JSON.stringify(body)};
  const r = await fetch(path, init);
  const text = await r.text();
  if (!r.ok) throw new Error(`${path}: ${r.status} ${text}`);
  return text;
}

/** POST a JSON body to a protocol route; the JSON answer. */
async function api(path, body) {
  const text = await request(path, body, 'application/json');
  return text ? JSON.parse(text) : null;
}

/** POST to a streaming route: its JSON lines. */
async function apiLines(path, body) {
  const text = await request(path, body, 'application/jsonl');
  return text.split('\n').filter((l) => l.trim()).map((l) => JSON.parse(l));
}

/** GET a route's JSON. */
async function apiGet(path) {
  return JSON.parse(await request(path, undefined, 'application/json'));
}

const enc = encodeURIComponent;
const projectPath = (e, p) => `/${enc(e)}/${enc(p)}`;
const callPath = (e, p, id) => `${projectPath(e, p)}/r/call/${enc(id)}`;

// ---------------------------------------------------------------------------------------
// A call's figures, as the store derives them (summary.weave)

function weaveSummary(c) {
  return (c.summary && c.summary.weave) || {};
}

function status(c) {
  const s = weaveSummary(c).status;
  if (s) return s;
  if (!c.ended_at) return 'running';
  return c.exception ? 'error' : 'success';
}

function latencyMs(c) {
  const l = weaveSummary(c).latency_ms;
  if (typeof l === 'number') return l;
  if (!c.ended_at) return null;
  return Date.parse(c.ended_at) - Date.parse(c.started_at);
}

function fmtLatency(ms) {
  if (ms === null || ms === undefined) return '';
  if (ms >= 10000) return (ms / 1000).toFixed(1) + ' s';
  if (ms >= 1000) return (ms / 1000).toFixed(2) + ' s';
  return ms + ' ms';
}

function tokens(c) {
  const usage = c.summary && c.summary.usage;
  if (!usage) return null;
  let total = 0;
  for (const u of Object.values(usage)) {
    if (typeof u.total_tokens === 'number') total += u.total_tokens;
    else total += (u.prompt_tokens || u.input_tokens || 0) + (u.completion_tokens || u.output_tokens || 0);
  }
  return total;
}

function cost(c) {
  const costs = weaveSummary(c).costs;
  if (!costs) return null;
  let total = 0;
  for (const m of Object.values(costs)) {
    for (const [k, v] of Object.entries(m)) if (k.endsWith('_total_cost') && typeof v === 'number') total += v;
  }
  return total;
}

function opShortName(opName) {
  const m = /^weave:\/\/\/[^/]+\/[^/]+\/op\/([^:]+):/.exec(opName || '');
  return m ? decodeURIComponent(m[1]) : (opName || '');
}

function callName(c) {
  return c.display_name || opShortName(c.op_name);
}

function fmtTime(t) {
  if (!t) return '';
  const d = new Date(t);
  return d.toISOString().replace('T', ' ').replace('Z', '').slice(0, 23);
}

function badge(s) {
  return h('span', {class: `badge status-${s}`}, s.replace('_', ' '));
}

function preview(obj, max) {
  const parts = Object.entries(obj || {}).map(([k, v]) => `${k}=${cut(JSON.stringify(v), 40)}`);
  return cut(parts.join(', '), max);
}

function cut(s, max) {
  s = s === undefined ? '' : String(s);
  return s.length <= max ? s : s.slice(0, max - 1) + '…';
}

// ---------------------------------------------------------------------------------------
// JSON, readable: collapsible, long strings and big arrays cut with a way to see all

const LONG_STRING = 300;
const BIG_ARRAY = 50;

function jsonView(value, depth = 0) {
  if (value === null) return h('span', {class: 'j-null'}, 'null');
  if (typeof value === 'string') return jsonString(value);
  if (typeof value === 'number') return h('span', {class: 'j-num'}, String(value));
  if (typeof value === 'boolean') return h('span', {class: 'j-bool'}, String(value));
  const isArray = Array.isArray(value);
  const entries = isArray ? value.map((v, i) => [i, v]) : Object.entries(value);
  if (entries.length === 0) return h('span', {class: 'j-empty'}, isArray ? '[]' : '{}');
  const n = entries.length;
  const label = isArray ? `[${n} ${n === 1 ? 'item' : 'items'}]` : `{${n} ${n === 1 ? 'key' : 'keys'}}`;
  const body = h('div', {class: 'j-body'});
  const renderEntries = (from, to) => {
    for (const [k, v] of entries.slice(from, to)) {
      body.append(h('div', {class: 'j-entry'},
        h('span', {class: isArray ? 'j-index' : 'j-key'}, isArray ? `${k}` : `${k}`), ': ', jsonView(v, depth + 1)));
    }
  };
  const limit = isArray ? BIG_ARRAY : 500;
  renderEntries(0, limit);
  if (entries.length > limit) {
    const more = h('button', {class: 'link j-more', onclick: () => {
      more.remove();
      renderEntries(limit, entries.length);
    }}, `show ${entries.length - limit} more`);
    body.append(more);
  }
  const d = h('details', {class: 'j-node', open: depth < 2}, h('summary', {}, label), body);
  return d;
}

function jsonString(s) {
  if (s.startsWith('weave:///')) {
    const link = refLink(s);
    if (link) return h('a', {class: 'j-ref', href: link}, s);
  }
  if (s.length <= LONG_STRING) return h('span', {class: 'j-str'}, JSON.stringify(s));
  const span = h('span', {class: 'j-str'}, JSON.stringify(s.slice(0, LONG_STRING)).slice(0, -1) + '…"');
  const btn = h('button', {class: 'link j-more', onclick: () => {
    span.textContent = JSON.stringify(s);
    btn.remove();
  }}, `show all ${s.length} characters`);
  return h('span', {}, span, ' ', btn);
}

/** The viewer's page for a ref, when it has one. */
function refLink(ref) {
  const m = /^weave:\/\/\/([^/]+)\/([^/]+)\/(object|op|call)\/([^:/]+)(?::([^/]+))?/.exec(ref);
  if (!m) return null;
  const [, e, p, kind, name, digest] = m;
  if (kind === 'call') return `/${e}/${p}/r/call/${name}`;
  if (!digest) return null;
  return `/${e}/${p}/weave/${kind === 'op' ? 'ops' : 'objects'}/${name}/versions/${digest}`;
}

// ---------------------------------------------------------------------------------------
// Pages

async function projectsPage() {
  crumbs(h('span', {}, 'Projects'));
  document.title = 'Projects · Weave';
  const res = await apiGet('/weave-rs/projects');
  if (!res.projects.length) {
    show(h('h1', {}, 'Projects'), h('p', {class: 'muted'}, 'No calls yet: run a traced program (cargo run --example quickstart).'));
    return;
  }
  const rows = res.projects.map((p) => {
    const [e, ...rest] = p.project_id.split('/');
    const name = rest.join('/');
    return h('tr', {},
      h('td', {}, h('a', {href: `${projectPath(e, name)}/weave`}, p.project_id)),
      h('td', {class: 'num'}, p.calls.toLocaleString('en-US')),
      h('td', {}, fmtTime(p.last_call_at)));
  });
  show(h('h1', {}, 'Projects'),
    h('table', {class: 'grid', id: 'projects'},
      h('thead', {}, h('tr', {}, h('th', {}, 'Project'), h('th', {class: 'num'}, 'Calls'), h('th', {}, 'Latest call (UTC)'))),
      h('tbody', {}, rows)));
}

const PAGE_SIZE = 50;
const COUNT_CAP = 10000;
const AGES = {'': 'any time', '15m': 'last 15 minutes', '1h': 'last hour', '24h': 'last 24 hours', '7d': 'last 7 days'};
const AGE_MS = {'15m': 9e5, '1h': 3.6e6, '24h': 8.64e7, '7d': 6.048e8};

function projectNav(e, p, here) {
  crumbs(h('a', {href: '/'}, 'Projects'), h('a', {href: `${projectPath(e, p)}/weave`}, `${e}/${p}`),
    here ? h('span', {}, here) : null);
  return h('div', {class: 'tabs'},
    h('a', {href: `${projectPath(e, p)}/weave/calls`, class: here === 'Calls' ? 'active' : ''}, 'Calls'),
    h('a', {href: `${projectPath(e, p)}/weave/objects`, class: here === 'Objects' ? 'active' : ''}, 'Objects'));
}

/** The calls query the page's filters make (the protocol's CallsQueryReq). */
function callsQuery(projectId, f) {
  const req = {project_id: projectId, include_costs: true};
  const filter = {};
  if (f.op) {
    filter.op_names = f.op.includes(':') ? [f.op] : [`weave:///${projectId}/op/${f.op}:*`, f.op];
  }
  if (f.roots) filter.trace_roots_only = true;
  if (Object.keys(filter).length) req.filter = filter;
  const conds = [];
  if (f.status) conds.push({$eq: [{$getField: 'summary.weave.status'}, {$literal: f.status}]});
  if (f.since && AGE_MS[f.since]) {
    conds.push({$gte: [{$getField: 'started_at'}, {$literal: new Date(Date.now() - AGE_MS[f.since]).toISOString()}]});
  }
  // A range typed in (UTC): from / to, either or both.
  const instant = (v) => {
    const d = new Date(v.endsWith('Z') ? v : v + 'Z');
    return isNaN(d) ? null : d.toISOString();
  };
  if (f.from && instant(f.from)) conds.push({$gte: [{$getField: 'started_at'}, {$literal: instant(f.from)}]});
  if (f.to && instant(f.to)) conds.push({$lte: [{$getField: 'started_at'}, {$literal: instant(f.to)}]});
  if (f.q) {
    const has = (field) => ({$contains: {input: {$getField: field}, substr: {$literal: f.q}, case_insensitive: true}});
    conds.push({$or: [has('inputs'), has('output')]});
  }
  return {req, conds};
}

function withConds(req, conds) {
  const r = Object.assign({}, req);
  if (conds.length === 1) r.query = {$expr: conds[0]};
  else if (conds.length > 1) r.query = {$expr: {$and: conds}};
  return r;
}

/** Calls before (older than) or after `cursor` in start order: keyset paging, so a page deep
 * in a million calls does not re-read the calls before it. Written as a range on the start
 * (which the store's start index answers) minus the cursor's own start at or past its id. */
function cursorCond(cursor, older) {
  const at = {$literal: cursor.started_at};
  const startedAt = {$getField: 'started_at'};
  return {$and: [
    {[older ? '$lte' : '$gte']: [startedAt, at]},
    {$not: [{$and: [
      {$eq: [startedAt, at]},
      {[older ? '$gte' : '$lte']: [{$getField: 'id'}, {$literal: cursor.id}]},
    ]}]},
  ]};
}

async function callsPage(e, p) {
  const projectId = `${e}/${p}`;
  document.title = `Calls · ${projectId} · Weave`;
  const params = new URLSearchParams(location.search);
  const f = {
    op: params.get('op') || '',
    status: params.get('status') || '',
    roots: params.get('roots') === '1',
    since: params.get('since') || '',
    q: params.get('q') || '',
    sort: params.get('sort') || 'newest',
    from: params.get('from') || '',
    to: params.get('to') || '',
  };
  const tabs = projectNav(e, p, 'Calls');
  const setParam = (k, v) => {
    const ps = new URLSearchParams(location.search);
    if (v) ps.set(k, v); else ps.delete(k);
    history.pushState(null, '', `${location.pathname}?${ps}`);
    route();
  };
  let searchTimer = null;
  const controls = h('form', {class: 'filters', id: 'filters', onsubmit: (ev) => ev.preventDefault()},
    h('label', {}, 'Op ', h('input', {name: 'op', value: f.op, placeholder: 'any op', size: 14,
      onchange: (ev) => setParam('op', ev.target.value.trim())})),
    h('label', {}, 'Status ', h('select', {name: 'status', onchange: (ev) => setParam('status', ev.target.value)},
      ['', 'success', 'error', 'running', 'descendant_error'].map((s) =>
        h('option', {value: s, selected: s === f.status}, s ? s.replace('_', ' ') : 'any')))),
    h('label', {}, h('input', {type: 'checkbox', name: 'roots', checked: f.roots,
      onchange: (ev) => setParam('roots', ev.target.checked ? '1' : '')}), ' roots only'),
    h('label', {}, 'Started ', h('select', {name: 'since', onchange: (ev) => setParam('since', ev.target.value)},
      Object.entries(AGES).map(([k, v]) => h('option', {value: k, selected: k === f.since}, v)))),
    h('label', {}, 'From ', h('input', {type: 'datetime-local', step: 1, name: 'from', value: f.from,
      title: 'UTC', onchange: (ev) => setParam('from', ev.target.value)})),
    h('label', {}, 'to ', h('input', {type: 'datetime-local', step: 1, name: 'to', value: f.to,
      title: 'UTC', onchange: (ev) => setParam('to', ev.target.value)}), ' UTC'),
    h('label', {}, 'Sort ', h('select', {name: 'sort', onchange: (ev) => setParam('sort', ev.target.value)},
      [['newest', 'newest first'], ['oldest', 'oldest first'], ['slowest', 'slowest first']].map(([k, v]) =>
        h('option', {value: k, selected: k === f.sort}, v)))),
    h('input', {name: 'q', type: 'search', value: f.q, placeholder: 'search inputs and outputs', size: 26,
      oninput: (ev) => {
        clearTimeout(searchTimer);
        searchTimer = setTimeout(() => setParam('q', ev.target.value.trim()), 400);
      }}));
  const count = h('span', {class: 'muted', id: 'count'}, '');
  const tbody = h('tbody', {});
  const pager = h('div', {class: 'pager'});
  show(tabs, controls, h('div', {class: 'toolbar'}, count),
    h('table', {class: 'grid calls', id: 'calls'},
      h('thead', {}, h('tr', {}, ['Started (UTC)', 'Op', 'Status', 'Latency', 'Tokens', 'Cost', 'Inputs']
        .map((t) => h('th', {class: ['Latency', 'Tokens', 'Cost'].includes(t) ? 'num' : ''}, t)))),
      tbody), pager);

  const {req, conds} = callsQuery(projectId, f);
  // Counted up to COUNT_CAP: an exact count of a million calls reads every one of them.
  api('/calls/query_stats', Object.assign(withConds({project_id: projectId, filter: req.filter}, conds), {limit: COUNT_CAP + 1}))
    .then((s) => {
      count.textContent = s.count > COUNT_CAP
        ? `more than ${COUNT_CAP.toLocaleString('en-US')} calls`
        : `${s.count.toLocaleString('en-US')} calls`;
    })
    .catch(() => {});

  const row = (c, fresh) => h('tr', {class: fresh ? 'fresh' : '', 'data-id': c.id,
    onclick: (ev) => { if (!ev.target.closest('a')) location.href = callPath(e, p, c.id); }},
  h('td', {class: 'nowrap'}, fmtTime(c.started_at)),
  h('td', {}, h('a', {href: callPath(e, p, c.id)}, callName(c))),
  h('td', {}, badge(status(c))),
  h('td', {class: 'num'}, fmtLatency(latencyMs(c))),
  h('td', {class: 'num'}, tokens(c) ?? ''),
  h('td', {class: 'num'}, cost(c) === null ? '' : '$' + cost(c).toFixed(4)),
  h('td', {class: 'preview'}, preview(c.inputs, 90)));

  const keyset = f.sort !== 'slowest';
  const older = f.sort === 'newest';
  // The page's position: a cursor (keyset) or an offset (slowest first).
  const stack = [];
  let page = [];
  const load = async (cursor, offset) => {
    const pageConds = conds.slice();
    if (cursor) pageConds.push(cursorCond(cursor, older));
    const r = withConds(req, pageConds);
    r.limit = PAGE_SIZE + 1;
    if (keyset) r.sort_by = [{field: 'started_at', direction: older ? 'desc' : 'asc'}];
    else {
      r.sort_by = [{field: 'summary.weave.latency_ms', direction: 'desc'}];
      r.offset = offset || 0;
    }
    const calls = await apiLines('/calls/stream_query', r);
    page = calls.slice(0, PAGE_SIZE);
    tbody.replaceChildren(...page.map((c) => row(c, false)));
    if (!page.length) tbody.append(h('tr', {}, h('td', {colspan: 7, class: 'muted'}, 'No calls match.')));
    pager.replaceChildren(
      h('button', {id: 'newer', disabled: !stack.length, onclick: () => {
        stack.pop();
        const prev = stack[stack.length - 1];
        load(prev && prev.cursor, prev && prev.offset);
      }}, older ? '← Newer' : '← Back'),
      h('button', {id: 'older', disabled: calls.length <= PAGE_SIZE, onclick: () => {
        const last = page[page.length - 1];
        const next = keyset ? {cursor: {started_at: last.started_at, id: last.id}} : {offset: (offset || 0) + PAGE_SIZE};
        stack.push(next);
        load(next.cursor, next.offset);
      }}, older ? 'Older →' : 'Next →'));
  };
  await load(null, 0);

  // New calls appear while the page is open (the first page of newest-first).
  if (f.sort === 'newest') {
    const tick = async () => {
      if (!document.body.contains(tbody)) return;
      if (!stack.length && page.length) {
        const newest = page[0];
        const r = withConds(req, conds.concat([cursorCond({started_at: newest.started_at, id: newest.id}, false)]));
        r.sort_by = [{field: 'started_at', direction: 'desc'}];
        r.limit = PAGE_SIZE;
        try {
          const fresh = await apiLines('/calls/stream_query', r);
          if (fresh.length && document.body.contains(tbody)) {
            page = fresh.concat(page).slice(0, PAGE_SIZE);
            for (const c of fresh.slice().reverse()) tbody.prepend(row(c, true));
            while (tbody.children.length > PAGE_SIZE) tbody.lastChild.remove();
          }
        } catch (_) { /* the next tick tries again */ }
      } else if (!stack.length && !page.length) {
        await load(null, 0);
      }
      setTimeout(tick, 2000);
    };
    setTimeout(tick, 2000);
  }
}

async function tracePage(e, p, id) {
  const projectId = `${e}/${p}`;
  const tabs = projectNav(e, p, 'Trace');
  const read = await api('/call/read', {project_id: projectId, id, include_costs: true});
  if (!read.call) {
    show(tabs, failure(`No call ${id} in ${projectId} (deleted, or never written).`));
    return;
  }
  const calls = await apiLines('/calls/stream_query', {
    project_id: projectId,
    filter: {trace_ids: [read.call.trace_id]},
    sort_by: [{field: 'started_at', direction: 'asc'}],
    columns: ['id', 'trace_id', 'parent_id', 'op_name', 'display_name', 'started_at', 'ended_at', 'exception', 'summary'],
  });
  const byId = new Map(calls.map((c) => [c.id, c]));
  const kids = new Map();
  const roots = [];
  for (const c of calls) {
    if (c.parent_id && byId.has(c.parent_id)) {
      if (!kids.has(c.parent_id)) kids.set(c.parent_id, []);
      kids.get(c.parent_id).push(c);
    } else roots.push(c);
  }
  const t0 = Math.min(...calls.map((c) => Date.parse(c.started_at)));
  const tEnd = Math.max(...calls.map((c) => Date.parse(c.ended_at || c.started_at)), t0 + 1);
  const span = Math.max(tEnd - t0, 1);
  const root = roots[0] || read.call;
  document.title = `${callName(root)} · Trace · Weave`;

  const tree = h('div', {class: 'tree', id: 'tree'});
  const detail = h('div', {class: 'detail', id: 'detail'});
  const collapsed = new Set();
  // Big traces open collapsed below their first level.
  if (calls.length > 500) for (const [pid] of kids) if (byId.get(pid).parent_id) collapsed.add(pid);
  let selected = id;
  // The ancestors of the selected call are open.
  for (let c = byId.get(id); c && c.parent_id; c = byId.get(c.parent_id)) collapsed.delete(c.parent_id);

  const drawTree = () => {
    const rows = [];
    const stack = roots.slice().reverse().map((c) => [c, 0]);
    while (stack.length) {
      const [c, depth] = stack.pop();
      const children = kids.get(c.id) || [];
      const open = !collapsed.has(c.id);
      const st = status(c);
      const start = Date.parse(c.started_at) - t0;
      const dur = c.ended_at ? Date.parse(c.ended_at) - Date.parse(c.started_at) : tEnd - Date.parse(c.started_at);
      rows.push(h('div', {class: `node${c.id === selected ? ' selected' : ''}`, 'data-id': c.id, 'data-status': st,
        onclick: (ev) => {
          if (ev.target.classList.contains('toggle')) return;
          select(c.id);
        }},
      h('div', {class: 'label', style: `padding-left:${depth * 16 + 4}px`},
        children.length
          ? h('span', {class: 'toggle', title: open ? 'collapse' : 'expand', onclick: () => {
            if (open) collapsed.add(c.id); else collapsed.delete(c.id);
            drawTree();
          }}, open ? '▾' : '▸')
          : h('span', {class: 'toggle-none'}, ''),
        h('span', {class: 'name'}, callName(c)),
        h('span', {class: `dot status-${st}`, title: st}),
        children.length ? h('span', {class: 'muted small'}, ` ${children.length}`) : null),
      h('div', {class: 'bar-area'},
        h('div', {class: `bar status-${st}`, title: `${callName(c)}: ${fmtLatency(latencyMs(c))}`,
          style: `left:${(start / span * 100).toFixed(3)}%;width:max(2px,${(dur / span * 100).toFixed(3)}%)`})),
      h('div', {class: 'lat num'}, fmtLatency(latencyMs(c)))));
      if (open) for (const k of children.slice().reverse()) stack.push([k, depth + 1]);
    }
    tree.replaceChildren(h('div', {class: 'tree-head'}, h('span', {}, 'Call'),
      h('span', {class: 'muted'}, `0 — ${fmtLatency(span)}`), h('span', {})), ...rows);
  };

  const select = (cid) => {
    selected = cid;
    history.replaceState(null, '', callPath(e, p, cid));
    drawTree();
    drawDetail(e, p, cid, byId, kids, detail);
  };

  show(tabs, h('h1', {}, callName(root), ' ', badge(status(root)),
    h('span', {class: 'muted small'}, ` trace ${root.trace_id} · ${calls.length} calls · ${fmtLatency(latencyMs(root))}`)),
  h('div', {class: 'trace'}, tree, detail));
  drawTree();
  await drawDetail(e, p, id, byId, kids, detail, read.call);
}

const REACTIONS = ['👍', '👎', '❤️', '🎉', '🤔', '🚀'];

async function drawDetail(e, p, id, byId, kids, el, given) {
  const projectId = `${e}/${p}`;
  el.replaceChildren(h('p', {class: 'muted'}, 'Loading…'));
  let c = given;
  try {
    if (!c) c = (await api('/call/read', {project_id: projectId, id, include_costs: true})).call;
  } catch (err) {
    el.replaceChildren(failure(err));
    return;
  }
  if (!c) {
    el.replaceChildren(failure(`No call ${id}.`));
    return;
  }
  const parent = c.parent_id && byId.get(c.parent_id);
  const children = kids.get(c.id) || [];
  const facts = h('table', {class: 'facts'},
    fact('Status', badge(status(c))),
    fact('Op', h('span', {}, opShortName(c.op_name), ' ', refLink(c.op_name)
      ? h('a', {class: 'small', href: refLink(c.op_name)}, 'version') : null)),
    fact('Id', h('code', {}, c.id)),
    fact('Started', fmtTime(c.started_at) + ' UTC'),
    c.ended_at ? fact('Latency', fmtLatency(latencyMs(c))) : fact('Ended', 'running'),
    c.parent_id ? fact('Parent', h('a', {href: callPath(e, p, c.parent_id), class: 'call-link', 'data-id': c.parent_id},
      parent ? callName(parent) : c.parent_id)) : null,
    children.length ? fact('Children', h('span', {}, children.map((k, i) => [i ? ', ' : '',
      h('a', {href: callPath(e, p, k.id), class: 'call-link', 'data-id': k.id}, callName(k))]))) : null,
    c.thread_id ? fact('Thread', c.thread_id) : null);
  const parts = [h('h2', {}, callName(c)), facts];
  parts.push(h('h3', {}, 'Inputs'), jsonView(c.inputs));
  if (c.ended_at) parts.push(h('h3', {}, 'Output'), jsonView(c.output));
  if (c.exception) parts.push(h('h3', {class: 'err'}, 'Exception'), exceptionView(c.exception));
  const summary = c.summary || {};
  const usage = summary.usage;
  if (usage && Object.keys(usage).length) parts.push(h('h3', {}, 'Usage and costs'), usageTable(usage, weaveSummary(c).costs));
  if (c.attributes && Object.keys(c.attributes).length) parts.push(h('h3', {}, 'Attributes'), jsonView(c.attributes));
  const rest = Object.fromEntries(Object.entries(summary).filter(([k]) => k !== 'usage' && k !== 'weave'));
  if (Object.keys(rest).length) parts.push(h('h3', {}, 'Summary'), jsonView(rest));
  const fb = h('div', {class: 'feedback', id: 'feedback'});
  parts.push(h('h3', {}, 'Feedback'), fb);
  const code = h('div', {class: 'code'});
  if (refLink(c.op_name)) parts.push(h('h3', {}, 'Code'), code);
  el.replaceChildren(...parts);
  for (const a of el.querySelectorAll('a.call-link')) {
    a.addEventListener('click', (ev) => {
      if (byId.has(a.dataset.id)) {
        ev.preventDefault();
        document.querySelector(`.node[data-id="${a.dataset.id}"]`)?.click();
      }
    });
  }
  drawFeedback(projectId, c.id, fb);
  if (refLink(c.op_name)) drawCode(projectId, c.op_name, code);
}

function fact(k, v) {
  return h('tr', {}, h('th', {}, k), h('td', {}, v));
}

function usageTable(usage, costs) {
  const cols = new Set();
  for (const u of Object.values(usage)) for (const k of Object.keys(u)) cols.add(k);
  const keys = [...cols];
  return h('table', {class: 'grid small'},
    h('thead', {}, h('tr', {}, h('th', {}, 'Model'), keys.map((k) => h('th', {class: 'num'}, k.replace(/_/g, ' '))),
      costs ? h('th', {class: 'num'}, 'cost') : null)),
    h('tbody', {}, Object.entries(usage).map(([model, u]) => {
      let total = null;
      if (costs && costs[model]) {
        total = 0;
        for (const [k, v] of Object.entries(costs[model])) if (k.endsWith('_total_cost')) total += v;
      }
      return h('tr', {}, h('td', {}, model), keys.map((k) => h('td', {class: 'num'}, u[k] ?? '')),
        costs ? h('td', {class: 'num'}, total === null ? '' : '$' + total.toFixed(6)) : null);
    })));
}

/** An exception as the SDKs store it, the traceback as Python prints it. */
function exceptionView(text) {
  let e;
  try { e = JSON.parse(text); } catch (_) { return h('pre', {class: 'exception'}, text); }
  if (!e || typeof e !== 'object') return h('pre', {class: 'exception'}, text);
  const lines = [];
  if (Array.isArray(e.traceback) && e.traceback.length) {
    lines.push('Traceback (most recent call last):');
    for (const f of e.traceback) {
      if (f && typeof f === 'object') {
        lines.push(`  File "${f.filename}", line ${f.line_number ?? '?'}, in ${f.function_name}`);
        if (f.text) lines.push(`    ${String(f.text).trim()}`);
      } else lines.push(String(f));
    }
  } else if (typeof e.traceback === 'string') lines.push(e.traceback);
  lines.push(`${e.type || 'Exception'}: ${e.message ?? ''}`);
  return h('pre', {class: 'exception'}, lines.join('\n'));
}

async function drawFeedback(projectId, callId, el) {
  const ref = `weave:///${projectId}/call/${callId}`;
  const redraw = () => drawFeedback(projectId, callId, el);
  let rows = [];
  try {
    rows = (await api('/feedback/query', {
      project_id: projectId,
      query: {$expr: {$eq: [{$getField: 'weave_ref'}, {$literal: ref}]}},
      sort_by: [{field: 'created_at', direction: 'asc'}],
    })).result;
  } catch (err) {
    el.replaceChildren(failure(err));
    return;
  }
  const add = async (type, payload) => {
    try {
      await api('/feedback/create', {project_id: projectId, weave_ref: ref, feedback_type: type, payload});
      redraw();
    } catch (err) {
      el.append(failure(err));
    }
  };
  const reactions = rows.filter((r) => r.feedback_type === 'wandb.reaction.1');
  const notes = rows.filter((r) => r.feedback_type === 'wandb.note.1');
  const other = rows.filter((r) => !['wandb.reaction.1', 'wandb.note.1'].includes(r.feedback_type));
  const counts = {};
  for (const r of reactions) counts[r.payload.emoji] = (counts[r.payload.emoji] || 0) + 1;
  const note = h('textarea', {rows: 2, placeholder: 'Add a note', id: 'note-text'});
  el.replaceChildren(
    h('div', {class: 'reactions', id: 'reactions'},
      Object.entries(counts).map(([emoji, n]) => h('span', {class: 'reaction', 'data-emoji': emoji}, `${emoji} ${n}`))),
    h('div', {class: 'react-buttons'}, REACTIONS.map((emoji) =>
      h('button', {class: 'react', 'data-emoji': emoji, title: `react ${emoji}`,
        onclick: () => add('wandb.reaction.1', {emoji})}, emoji))),
    h('ul', {class: 'notes', id: 'notes'}, notes.map((n) =>
      h('li', {}, n.payload.note, ' ', h('span', {class: 'muted small'}, fmtTime(n.created_at))))),
    other.length ? h('div', {}, other.map((o) => h('div', {class: 'small'}, h('code', {}, o.feedback_type), ' ', jsonView(o.payload, 2)))) : null,
    h('div', {class: 'note-form'}, note, h('button', {id: 'add-note', onclick: () => {
      const text = note.value.trim();
      if (text) add('wandb.note.1', {note: text});
    }}, 'Add note')));
}

async function drawCode(projectId, opRef, el) {
  const m = /^weave:\/\/\/[^/]+\/[^/]+\/op\/([^:]+):(.+)$/.exec(opRef);
  if (!m) return;
  try {
    const obj = (await api('/obj/read', {project_id: projectId, object_id: decodeURIComponent(m[1]), digest: m[2]})).obj;
    const files = (obj && obj.val && obj.val.files) || {};
    const name = Object.keys(files)[0];
    if (!name) {
      el.replaceChildren(h('p', {class: 'muted'}, 'No code was saved with this op.'));
      return;
    }
    const code = await request('/files/content', {project_id: projectId, digest: files[name]}, '*/*');
    el.replaceChildren(h('div', {class: 'muted small'}, name), h('pre', {class: 'source'}, code));
  } catch (err) {
    el.replaceChildren(h('p', {class: 'muted'}, `The op's code could not be read: ${err.message}`));
  }
}

async function objectsPage(e, p) {
  const projectId = `${e}/${p}`;
  document.title = `Objects · ${projectId} · Weave`;
  const tabs = projectNav(e, p, 'Objects');
  const res = await api('/objs/query', {project_id: projectId, filter: {latest_only: true}, metadata_only: true,
    sort_by: [{field: 'created_at', direction: 'desc'}]});
  const rows = res.objs.map((o) => h('tr', {},
    h('td', {}, h('a', {href: `${projectPath(e, p)}/weave/${o.kind === 'op' ? 'ops' : 'objects'}/${enc(o.object_id)}/versions/${o.digest}`}, o.object_id)),
    h('td', {}, o.kind === 'op' ? 'op' : (o.base_object_class || o.val?._type || 'object')),
    h('td', {class: 'num'}, `v${o.version_index}`),
    h('td', {}, fmtTime(o.created_at))));
  show(tabs, h('table', {class: 'grid', id: 'objects'},
    h('thead', {}, h('tr', {}, h('th', {}, 'Name'), h('th', {}, 'Kind'), h('th', {class: 'num'}, 'Latest'), h('th', {}, 'Created (UTC)'))),
    h('tbody', {}, rows.length ? rows : h('tr', {}, h('td', {colspan: 4, class: 'muted'}, 'No objects published yet.')))));
}

async function objectPage(e, p, kind, name, digest) {
  const projectId = `${e}/${p}`;
  const tabs = projectNav(e, p, 'Objects');
  document.title = `${name} · Weave`;
  const obj = (await api('/obj/read', {project_id: projectId, object_id: name, digest})).obj;
  const versions = (await api('/objs/query', {project_id: projectId, filter: {object_ids: [name]}, metadata_only: true,
    sort_by: [{field: 'created_at', direction: 'desc'}]})).objs;
  const kindPath = kind === 'ops' ? 'ops' : 'objects';
  const parts = [tabs,
    h('h1', {}, name, ' ', h('span', {class: 'muted small'}, `v${obj.version_index} · ${obj.digest}`)),
    h('div', {class: 'versions'}, 'Versions: ', versions.map((v, i) => [i ? ' · ' : '',
      v.digest === obj.digest ? h('strong', {}, `v${v.version_index}`)
        : h('a', {href: `${projectPath(e, p)}/weave/${kindPath}/${enc(name)}/versions/${v.digest}`}, `v${v.version_index}`)]))];
  const rowsRef = obj.val && typeof obj.val.rows === 'string' && /^weave:\/\/\/[^/]+\/[^/]+\/table\/([0-9a-zA-Z]+)/.exec(obj.val.rows);
  if (rowsRef) {
    const table = h('div', {id: 'dataset'});
    parts.push(h('h3', {}, 'Rows'), table);
    drawRows(projectId, rowsRef[1], table, 0);
  }
  parts.push(h('h3', {}, kind === 'ops' ? 'Op' : 'Value'), jsonView(obj.val));
  if (kind === 'ops') {
    const code = h('div', {class: 'code'});
    parts.push(h('h3', {}, 'Code'), code);
    drawCode(projectId, `weave:///${projectId}/op/${name}:${obj.digest}`, code);
  }
  show(...parts);
}

async function drawRows(projectId, digest, el, offset) {
  const ROWS = 100;
  const res = await api('/table/query', {project_id: projectId, digest, limit: ROWS + 1, offset});
  const rows = res.rows.slice(0, ROWS).map((r) => r.val);
  const cols = [];
  for (const r of rows) if (r && typeof r === 'object') for (const k of Object.keys(r)) if (!cols.includes(k)) cols.push(k);
  const cell = (v) => {
    if (v === null || v === undefined) return '';
    if (typeof v === 'object') return jsonView(v, 3);
    return cut(typeof v === 'string' ? v : JSON.stringify(v), 200);
  };
  el.replaceChildren(
    h('table', {class: 'grid rows'},
      h('thead', {}, h('tr', {}, h('th', {class: 'num'}, '#'), cols.map((c) => h('th', {}, c)))),
      h('tbody', {}, rows.map((r, i) => h('tr', {}, h('td', {class: 'num muted'}, offset + i),
        cols.map((c) => h('td', {}, cell(r && typeof r === 'object' ? r[c] : r))))))),
    h('div', {class: 'pager'},
      h('button', {disabled: offset === 0, onclick: () => drawRows(projectId, digest, el, Math.max(0, offset - ROWS))}, '← Previous'),
      h('button', {disabled: res.rows.length <= ROWS, onclick: () => drawRows(projectId, digest, el, offset + ROWS)}, 'Next →')));
}

// ---------------------------------------------------------------------------------------
// Routing

async function route() {
  const parts = location.pathname.split('/').filter(Boolean).map(decodeURIComponent);
  try {
    if (parts.length === 0) return await projectsPage();
    const [e, p, ...rest] = parts;
    if (rest[0] === 'weave' && (rest.length === 1 || (rest.length === 2 && rest[1] === 'calls'))) return await callsPage(e, p);
    if (rest[0] === 'r' && rest[1] === 'call' && rest[2]) return await tracePage(e, p, rest[2]);
    if (rest[0] === 'weave' && rest[1] === 'objects' && rest.length === 2) return await objectsPage(e, p);
    if (rest[0] === 'weave' && (rest[1] === 'objects' || rest[1] === 'ops') && rest[3] === 'versions') {
      return await objectPage(e, p, rest[1], rest[2], rest[4]);
    }
    show(failure(`No page at ${location.pathname}`));
  } catch (err) {
    show(failure(err));
  } finally {
    document.body.dataset.ready = '1';
  }
}

window.addEventListener('popstate', route);
route();
