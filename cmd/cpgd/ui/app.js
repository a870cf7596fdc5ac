// cpgd's status page. It reads the /v1 API of the agent that served it
// (same origin), keeps what it shows current from the status and watch
// streams, and falls back to polling where a stream is not served.
//
// Streams are read with fetch() and a body reader rather than EventSource,
// because EventSource cannot send the Authorization header that an agent
// started with --token requires; the token never goes into a URL the
// server sees.
'use strict';

(() => {
  const TOKEN_KEY = 'cpgd.token';
  const POLL_MS = 2000; // nodes and overlay when no stream says what changed
  const SCOPE_POLL_MS = 5000; // the scope list, and scopes not watched live
  const RETRY_MS = 1000; // before reopening a stream that ended
  const SILENCE_MS = 60000; // a stream this long without a byte is dead
  // Events mark groups to re-count; every REFRESH_MS at most
  // REFRESH_GROUPS of them are, so a busy scope costs the agent a bounded
  // number of calls whatever its rate of joins.
  const REFRESH_MS = 500;
  const REFRESH_GROUPS = 10;
  // A browser holds at most six HTTP/1.1 connections to one host and each
  // open stream keeps one: the node stream and this many scope watches
  // leave two for the page's other calls.
  const MAX_LIVE_SCOPES = 3;
  const MAX_GROUPS_SHOWN = 100;
  const MEMBERS_PAGE = 1000;
  const MAX_MEMBER_PAGES = 5; // past that, a count shows as "≥ 5000"

  class AuthError extends Error {}
  class HTTPError extends Error {
    constructor(status, message) {
      super(message);
      this.status = status;
    }
  }

  let token = '';
  let run = null; // the current run: its AbortController and state
  let renderQueued = false;

  const $ = (id) => document.getElementById(id);

  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v !== undefined && v !== null) node.setAttribute(k, String(v));
    }
    for (const c of children) node.append(c);
    return node;
  }

  function svg(tag, attrs, ...children) {
    const node = document.createElementNS('http://www.w3.org/2000/svg', tag);
    for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, String(v));
    for (const c of children) node.append(c);
    return node;
  }

  function sleep(ms, signal) {
    return new Promise((resolve) => {
      const t = setTimeout(resolve, ms);
      signal.addEventListener('abort', () => { clearTimeout(t); resolve(); }, { once: true });
    });
  }

  function headers(accept) {
    const h = { Accept: accept };
    if (token) h.Authorization = 'Bearer ' + token;
    return h;
  }

  async function failure(resp) {
    let message = resp.status + ' ' + resp.statusText;
    try {
      const body = await resp.json();
      if (body && body.error) message = body.error;
    } catch (_) { /* not JSON: keep the status line */ }
    if (resp.status === 401) return new AuthError(message);
    return new HTTPError(resp.status, message);
  }

  async function getJSON(path, signal) {
    const resp = await fetch(path, { headers: headers('application/json'), signal, cache: 'no-store', credentials: 'same-origin' });
    if (!resp.ok) throw await failure(resp);
    return resp.json();
  }

  // stream reads a server-sent event stream until it ends. onOpen runs once
  // the server has accepted it; onEvent(kind, data, id) for every event.
  async function stream(path, signal, onOpen, onEvent) {
    const resp = await fetch(path, { headers: headers('text/event-stream'), signal, cache: 'no-store', credentials: 'same-origin' });
    if (!resp.ok) throw await failure(resp);
    onOpen();
    const reader = resp.body.pipeThrough(new TextDecoderStream()).getReader();
    // A connection that died without closing (a laptop that slept, a
    // network that changed) would leave the page showing old news as live:
    // an agent sends a heartbeat every 15 s by default, so a stream silent
    // for much longer is dropped and opened again.
    let heard = Date.now();
    const watchdog = setInterval(() => {
      if (Date.now() - heard > SILENCE_MS) reader.cancel().catch(() => {});
    }, SILENCE_MS / 4);
    try {
      await readEvents(reader, onEvent, () => { heard = Date.now(); });
    } finally {
      clearInterval(watchdog);
    }
  }

  // readEvents parses a server-sent event stream: "field: value" lines, an
  // empty line ending each event, ":" starting a comment (the heartbeat).
  // onData runs on every chunk read, heartbeats included.
  async function readEvents(reader, onEvent, onData) {
    let buffered = '';
    let kind = '';
    let data = [];
    let id = null;
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return;
      onData();
      buffered += value;
      let nl;
      while ((nl = buffered.indexOf('\n')) >= 0) {
        let line = buffered.slice(0, nl);
        buffered = buffered.slice(nl + 1);
        if (line.endsWith('\r')) line = line.slice(0, -1);
        if (line === '') {
          if (kind || data.length) onEvent(kind || 'message', data.join('\n'), id);
          kind = '';
          data = [];
          continue;
        }
        if (line.startsWith(':')) continue; // a heartbeat comment
        const colon = line.indexOf(':');
        const field = colon < 0 ? line : line.slice(0, colon);
        let val = colon < 0 ? '' : line.slice(colon + 1);
        if (val.startsWith(' ')) val = val.slice(1);
        if (field === 'event') kind = val;
        else if (field === 'data') data.push(val);
        else if (field === 'id') id = val;
      }
    }
  }

  function parse(data) {
    try {
      return JSON.parse(data);
    } catch (_) {
      return null;
    }
  }

  // ---- state and what it is shown as ----

  function newState() {
    return {
      nodes: new Map(), // name -> node as /v1/nodes shows it
      nodesMode: 'connecting',
      nodesLoaded: false,
      overlay: null,
      scopes: new Map(), // name -> {groups: Map(name -> {count, more, nodes}), live, watching, totals}
      scopesLoaded: false,
      error: '',
      wakeOverlay: null, // ends the overlay's wait: a node changed
    };
  }

  function queueRender() {
    if (renderQueued) return;
    renderQueued = true;
    setTimeout(() => {
      renderQueued = false;
      render();
    }, 30);
  }

  function render() {
    if (!run) return;
    const st = run.state;
    const self = st.overlay ? st.overlay.name || '' : '';
    $('self').textContent = self ? 'node ' + self : '';
    document.title = self ? 'cpgd ' + self : 'cpgd status';
    renderNodes(st, self);
    renderOverlay(st, self);
    renderScopes(st);
    const live = [...st.scopes.values()].filter((s) => s.live).length;
    const polled = st.scopes.size - live;
    let conn = 'nodes: ' + st.nodesMode + ' · scopes: ' + live + ' live' + (polled ? ', ' + polled + ' polled every ' + SCOPE_POLL_MS / 1000 + ' s' : '');
    if (st.error) conn += ' · ' + st.error;
    $('conn').textContent = conn;
    if (st.nodesLoaded && st.overlay && st.scopesLoaded) document.body.dataset.state = 'ready';
  }

  function renderNodes(st, self) {
    const body = $('nodes').tBodies[0];
    const rows = [...st.nodes.values()].sort((a, b) => a.name.localeCompare(b.name)).map((n) => {
      const rtt = n.rtt_ms > 0 ? n.rtt_ms.toFixed(n.rtt_ms < 10 ? 2 : 1) + ' ms' : '—';
      return el('tr', { 'data-node': n.name, 'data-status': n.status, class: n.name === self ? 'is-self' : null },
        el('td', {}, n.name + (n.name === self ? ' (this node)' : '')),
        el('td', {}, el('span', { class: 'badge ' + n.status }, n.status)),
        el('td', { class: 'num' }, n.name === self ? '—' : rtt),
        el('td', {}, n.http || ''),
        el('td', {}, n.gossip || ''));
    });
    body.replaceChildren(...rows);
    $('nodes-alone').hidden = !(st.nodesLoaded && st.nodes.size === 0);
    $('nodes-mode').textContent = '(' + st.nodesMode + ')';
  }

  function label(name) {
    return name.length > 18 ? name.slice(0, 17) + '…' : name;
  }

  // renderOverlay draws this node in the centre, its active peers on the
  // inner ring (the link solid when eager, dashed when lazy) and its
  // passive peers on the outer ring.
  function renderOverlay(st, self) {
    const g = $('overlay');
    const o = st.overlay;
    if (!o) return;
    const eager = new Set(o.eager || []);
    const lazy = new Set(o.lazy || []);
    const active = o.active || [];
    const passive = o.passive || [];
    const parts = [
      svg('circle', { class: 'ring', cx: 0, cy: 0, r: 130 }),
      svg('circle', { class: 'ring', cx: 0, cy: 0, r: 225 }),
    ];
    // place returns a peer's position on a ring and where its label goes:
    // further out along the same ray, so it never sits on a link.
    const place = (i, n, r, turn, labelGap) => {
      const a = -Math.PI / 2 + turn + (2 * Math.PI * i) / Math.max(n, 1);
      const at = (d) => [Math.round(d * Math.cos(a)), Math.round(d * Math.sin(a))];
      const [lx, ly] = at(r + labelGap);
      const c = Math.cos(a);
      const anchor = c > 0.3 ? 'start' : c < -0.3 ? 'end' : 'middle';
      return [...at(r), lx, ly + 5, anchor];
    };
    const nodes = [];
    active.forEach((p, i) => {
      const [x, y, lx, ly, anchor] = place(i, active.length, 130, 0, 20);
      const kind = eager.has(p.name) ? 'eager' : lazy.has(p.name) ? 'lazy' : 'link';
      parts.push(svg('line', { class: kind, x1: 0, y1: 0, x2: x, y2: y }));
      nodes.push(svg('g', { 'data-peer': p.name, 'data-view': 'active', 'data-link': kind },
        svg('title', {}, p.name + ' (active, ' + kind + ') ' + p.addr),
        svg('circle', { class: 'active', cx: x, cy: y, r: 11 }),
        svg('text', { x: lx, y: ly, 'text-anchor': anchor }, label(p.name))));
    });
    passive.forEach((p, i) => {
      const [x, y, lx, ly, anchor] = place(i, passive.length, 225, Math.PI / Math.max(passive.length, 2), 16);
      nodes.push(svg('g', { 'data-peer': p.name, 'data-view': 'passive' },
        svg('title', {}, p.name + ' (passive) ' + p.addr),
        svg('circle', { class: 'passive', cx: x, cy: y, r: 8 }),
        svg('text', { x: lx, y: ly, 'text-anchor': anchor }, label(p.name))));
    });
    nodes.push(svg('g', { 'data-peer': self || 'this node', 'data-view': 'self' },
      svg('circle', { class: 'self', cx: 0, cy: 0, r: 34 }),
      svg('text', { class: 'self', x: 0, y: 5, 'text-anchor': 'middle' }, label(self || 'this node'))));
    g.replaceChildren(...parts, ...nodes);
    g.dataset.active = String(active.length);
    g.dataset.passive = String(passive.length);
  }

  const plural = (n, word) => n + ' ' + word + (n === 1 ? '' : 's');

  function renderScopes(st) {
    const box = $('scopes');
    if (st.scopes.size === 0) {
      box.replaceChildren(el('p', { class: 'muted' }, st.scopesLoaded ? 'no scope yet: nothing has joined' : 'loading…'));
      return;
    }
    const sections = [...st.scopes.entries()].sort(([a], [b]) => a.localeCompare(b)).map(([name, sc]) => {
      const groups = [...sc.groups.entries()].sort(([a], [b]) => a.localeCompare(b));
      const rows = groups.slice(0, MAX_GROUPS_SHOWN).map(([g, info]) => el('tr', { 'data-group': g, 'data-count': info.count ?? '' },
        el('td', {}, g),
        el('td', { class: 'num' }, info.pattern ? 'pattern' : info.count === undefined ? '…' : (info.more ? '≥ ' : '') + info.count),
        el('td', {}, (info.nodes || []).join(', '))));
      const table = el('table', { class: 'groups' },
        el('thead', {}, el('tr', {}, el('th', {}, 'group'), el('th', {}, 'members'), el('th', {}, 'on nodes'))),
        el('tbody', {}, ...rows));
      const more = groups.length > MAX_GROUPS_SHOWN ? el('p', { class: 'muted' }, (groups.length - MAX_GROUPS_SHOWN) + ' more groups not shown') : '';
      const how = sc.live ? el('span', { class: 'live' }, ' ● live') : el('span', { class: 'muted' }, ' polled');
      const totals = sc.totals ? ' ' + plural(sc.totals.groups, 'group') + ', ' + plural(sc.totals.members, 'member') : '';
      return el('div', { class: 'scope', 'data-scope': name },
        el('h3', {}, name, el('span', { class: 'muted' }, totals), how), table, more);
    });
    box.replaceChildren(...sections);
  }

  // ---- the loops that keep the state current ----

  function setError(st, e) {
    st.error = e ? 'error: ' + e.message : '';
    queueRender();
  }

  // stops handles what every loop shares: an aborted run stops, a
  // refused token asks for another. It returns true when the loop must end.
  function stops(signal, e) {
    if (signal.aborted) return true;
    if (e instanceof AuthError) {
      askToken(token ? 'the agent refused this token: ' + e.message : '');
      return true;
    }
    return false;
  }

  function applyNode(st, n) {
    if (n && typeof n.name === 'string') st.nodes.set(n.name, n);
  }

  async function pollNodes(signal, st) {
    st.nodesMode = 'polled every ' + POLL_MS / 1000 + ' s';
    while (!signal.aborted) {
      try {
        const { nodes } = await getJSON('v1/nodes', signal);
        st.nodes = new Map((nodes || []).map((n) => [n.name, n]));
        st.nodesLoaded = true;
        setError(st, null);
      } catch (e) {
        if (stops(signal, e)) return;
        setError(st, e);
      }
      await sleep(POLL_MS, signal);
    }
  }

  // watchNodes follows GET /v1/nodes/watch: the nodes known now (event
  // "node" each, then "synced"), then status changes. Where the agent does
  // not serve the stream, it polls GET /v1/nodes instead.
  async function watchNodes(signal, st) {
    while (!signal.aborted) {
      let snapshot = null;
      try {
        await stream('v1/nodes/watch', signal, () => {
          snapshot = new Map();
          st.nodesMode = 'live';
          setError(st, null);
        }, (kind, data) => {
          const n = parse(data);
          if (kind === 'node') {
            if (snapshot && n) snapshot.set(n.name, n);
          } else if (kind === 'synced') {
            st.nodes = snapshot || st.nodes;
            snapshot = null;
            st.nodesLoaded = true;
            wakeOverlay(st);
          } else if (['up', 'suspect', 'dead', 'refuted', 'left'].includes(kind)) {
            applyNode(st, n);
            wakeOverlay(st);
          }
          queueRender();
        });
      } catch (e) {
        if (stops(signal, e)) return;
        if (e instanceof HTTPError && (e.status === 404 || e.status === 405 || refused(e))) {
          await pollNodes(signal, st);
          return;
        }
        setError(st, e);
      }
      st.nodesMode = 'reconnecting';
      queueRender();
      await sleep(RETRY_MS, signal);
    }
  }

  function wakeOverlay(st) {
    if (st.wakeOverlay) st.wakeOverlay();
  }

  async function pollOverlay(signal, st) {
    while (!signal.aborted) {
      await loadOverlay(signal, st);
      await Promise.race([sleep(POLL_MS, signal), new Promise((r) => { st.wakeOverlay = r; })]);
    }
  }

  async function loadOverlay(signal, st) {
    try {
      st.overlay = await getJSON('v1/overlay', signal);
      queueRender();
    } catch (e) {
      if (stops(signal, e)) return;
      setError(st, e);
    }
  }

  const scopePath = (scope, rest) => 'v1/scopes/' + encodeURIComponent(scope) + '/' + rest;

  // countGroup counts a group's members, page by page.
  async function countGroup(signal, scope, group) {
    let count = 0;
    const nodes = new Set();
    let after = '';
    for (let page = 0; page < MAX_MEMBER_PAGES; page++) {
      const q = '?name=' + encodeURIComponent(group) + '&limit=' + MEMBERS_PAGE + (after ? '&after=' + encodeURIComponent(after) : '');
      const body = await getJSON(scopePath(scope, 'members' + q), signal);
      for (const m of body.members || []) nodes.add(m.node);
      count += (body.members || []).length;
      if (!body.next) return { count, more: false, nodes: [...nodes].sort() };
      after = body.next;
    }
    return { count, more: true, nodes: [...nodes].sort() };
  }

  async function refreshGroup(signal, st, scope, group) {
    const sc = st.scopes.get(scope);
    if (!sc) return;
    const isPattern = /[*?]/.test(group);
    try {
      const info = isPattern ? { pattern: true } : await countGroup(signal, scope, group);
      sc.groups.set(group, info);
    } catch (e) {
      if (e instanceof HTTPError && e.status === 404) sc.groups.delete(group); // its last member left
      else throw e;
    }
    queueRender();
  }

  // refreshScope re-lists a scope's groups and counts their members.
  async function refreshScope(signal, st, scope) {
    const sc = st.scopes.get(scope);
    if (!sc) return;
    try {
      const [{ groups }, totals] = await Promise.all([
        getJSON(scopePath(scope, 'groups'), signal),
        getJSON(scopePath(scope, 'digest'), signal).catch(() => null),
      ]);
      sc.totals = totals;
      const listed = new Set(groups || []);
      for (const g of [...sc.groups.keys()]) if (!listed.has(g)) sc.groups.delete(g);
      const shown = [...listed].sort().slice(0, MAX_GROUPS_SHOWN);
      for (const g of listed) if (!sc.groups.has(g)) sc.groups.set(g, {});
      queueRender();
      // A few counts at a time, so a big scope does not take every
      // connection the browser has for this host.
      for (let i = 0; i < shown.length; i += 2) {
        await Promise.all(shown.slice(i, i + 2).map((g) => refreshGroup(signal, st, scope, g)));
      }
    } catch (e) {
      if (e instanceof HTTPError && e.status === 404) {
        st.scopes.delete(scope);
        queueRender();
        return;
      }
      throw e;
    }
  }

  // refused says whether the agent turned a stream down for now (too many
  // watches: 429, or shutting down: 503): the page then polls instead.
  const refused = (e) => e instanceof HTTPError && (e.status === 429 || e.status === 503);

  // watchScope keeps a scope current from its watch stream: the pattern
  // "*" selects every group (a star takes one character or more, and no
  // group name is empty). A join or leave marks its group to be re-counted;
  // whenever the stream (re)opens, the whole scope is re-listed, so nothing
  // that happened while it was closed is missed.
  async function watchScope(signal, st, scope) {
    const sc = st.scopes.get(scope);
    const dirty = new Set();
    const flush = async () => {
      while (!signal.aborted && st.scopes.get(scope) === sc && !sc.polled) {
        const batch = [...dirty].slice(0, REFRESH_GROUPS);
        batch.forEach((g) => dirty.delete(g));
        try {
          for (let i = 0; i < batch.length; i += 2) {
            await Promise.all(batch.slice(i, i + 2).map((g) => refreshGroup(signal, st, scope, g)));
          }
          if (batch.length > 0) sc.totals = await getJSON(scopePath(scope, 'digest'), signal);
        } catch (e) {
          if (stops(signal, e)) return;
          setError(st, e);
        }
        await sleep(REFRESH_MS, signal);
      }
    };
    flush();
    while (!signal.aborted && st.scopes.get(scope) === sc) {
      try {
        await stream(scopePath(scope, 'watch?pattern=' + encodeURIComponent('*')), signal, () => {
          sc.live = true;
          dirty.clear();
          refreshScope(signal, st, scope).catch((e) => { if (!stops(signal, e)) setError(st, e); });
        }, (kind, data) => {
          const ev = parse(data);
          if ((kind === 'join' || kind === 'leave') && ev && typeof ev.group === 'string') {
            if (!sc.groups.has(ev.group)) sc.groups.set(ev.group, {});
            dirty.add(ev.group);
          }
        });
      } catch (e) {
        if (stops(signal, e)) return;
        if (e instanceof HTTPError && e.status === 404) {
          st.scopes.delete(scope);
          queueRender();
          return;
        }
        if (refused(e)) {
          sc.live = false;
          sc.polled = true; // pollScopes re-lists it from now on
          await refreshScope(signal, st, scope).catch((e) => { if (!stops(signal, e)) setError(st, e); });
          return;
        }
        setError(st, e);
      }
      sc.live = false;
      queueRender();
      await sleep(RETRY_MS, signal);
    }
    sc.live = false;
  }

  // pollScopes follows the scope list (it has no stream) and keeps the
  // first few scopes watched live and the others re-listed on each round.
  async function pollScopes(signal, st) {
    while (!signal.aborted) {
      try {
        const { scopes } = await getJSON('v1/scopes', signal);
        const listed = [...(scopes || [])].sort();
        for (const s of [...st.scopes.keys()]) if (!listed.includes(s)) st.scopes.delete(s);
        for (const s of listed) if (!st.scopes.has(s)) st.scopes.set(s, { groups: new Map(), live: false, watching: false, polled: false });
        st.scopesLoaded = true;
        queueRender();
        let watching = [...st.scopes.values()].filter((s) => s.watching).length;
        for (const s of listed) {
          const sc = st.scopes.get(s);
          if (sc.watching && !sc.polled) continue;
          if (!sc.watching && watching < MAX_LIVE_SCOPES) {
            sc.watching = true;
            watching++;
            watchScope(signal, st, s);
          } else {
            await refreshScope(signal, st, s);
          }
        }
        setError(st, null);
      } catch (e) {
        if (stops(signal, e)) return;
        setError(st, e);
      }
      await sleep(SCOPE_POLL_MS, signal);
    }
  }

  // ---- start, token ----

  function start() {
    if (run) run.controller.abort();
    const controller = new AbortController();
    const st = newState();
    run = { controller, state: st };
    $('token-form').hidden = true;
    $('main').hidden = false;
    $('forget-token').hidden = !token;
    queueRender();
    const signal = controller.signal;
    watchNodes(signal, st);
    pollOverlay(signal, st);
    pollScopes(signal, st);
  }

  function askToken(problem) {
    if (run) run.controller.abort();
    run = null;
    $('main').hidden = true;
    $('token-form').hidden = false;
    $('conn').textContent = 'token needed';
    document.body.dataset.state = 'token';
    const err = $('token-error');
    err.textContent = problem || '';
    err.hidden = !problem;
    $('token-input').focus();
  }

  function init() {
    // #token=... hands the page a token without sending it to the server
    // (a fragment never leaves the browser); it is then dropped from the
    // address bar and history.
    const m = /^#token=(.+)$/.exec(location.hash);
    if (m) {
      try {
        sessionStorage.setItem(TOKEN_KEY, decodeURIComponent(m[1]));
      } catch (_) { /* not URL-encoded: the form will ask */ }
      history.replaceState(null, '', location.pathname + location.search);
    }
    token = sessionStorage.getItem(TOKEN_KEY) || '';
    $('token-form').addEventListener('submit', (ev) => {
      ev.preventDefault();
      token = $('token-input').value.trim();
      $('token-input').value = '';
      sessionStorage.setItem(TOKEN_KEY, token);
      start();
    });
    // A hidden tab lets its streams go: each holds one of the few
    // connections a browser keeps to this host (so two open tabs would
    // starve each other) and one of the agent's watch slots.
    document.addEventListener('visibilitychange', () => {
      if (document.hidden && run) {
        run.controller.abort();
        run = null;
        $('conn').textContent = 'paused while the tab is hidden';
      } else if (!document.hidden && !run && $('token-form').hidden) {
        start();
      }
    });
    $('forget-token').addEventListener('click', () => {
      sessionStorage.removeItem(TOKEN_KEY);
      token = '';
      start();
    });
    if (document.hidden) $('conn').textContent = 'paused while the tab is hidden';
    else start();
  }

  init();
})();
