// balance-manager dashboard: plain JavaScript, no build step.
//
// The page loads the whole state once (/api/balances, /api/events, /api/status),
// then follows the server's event stream (/api/stream, Server-Sent Events). Every
// event has an id "<run>.<number>": after a reconnect the browser sends the last
// one it saw and the server replays what was missed, or sends "reset" when it
// cannot (then the page reloads the state). Amounts arrive as exact decimal
// strings and are shown as the server wrote them; only the chart turns them into
// numbers, because drawing needs no more than double precision.
"use strict";

(() => {
  const MAX_LOG = 300;
  const RECENT_ROWS = 500;

  const state = {
    run: null,
    snapshotNumber: 0, // rows in the table are as of this event number
    lastSeen: 0, // highest event number handled in this run
    lastLogged: 0,
    rows: new Map(),
    recentRows: [], // [number, row] of the latest balance events (re-applied after a reload)
    status: null,
    connection: "connecting",
    lastStatusAt: 0,
    stallAfter: 5,
    source: null,
    es: null,
    loading: null,
    history: { asset: null, hours: 24, raw: null, chart: null, zoomed: false },
    portfolio: {
      quote: "USD", available: null, reason: null, data: null, error: null,
      lastFetch: 0, fetchedSource: null, busy: false, again: false,
      historyAt: 0, historyWanted: false, historyTimer: null,
      hours: 24, raw: null, chart: null, zoomed: false,
    },
  };

  const $ = (id) => document.getElementById(id);

  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(attrs || {})) {
      if (value === null || value === undefined || value === false) continue;
      if (key === "class") node.className = value;
      else if (key === "text") node.textContent = value;
      else node.setAttribute(key, value === true ? "" : String(value));
    }
    for (const child of children) {
      if (child === null || child === undefined) continue;
      node.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return node;
  }

  async function getJSON(url) {
    const response = await fetch(url, { credentials: "same-origin", cache: "no-store" });
    if (!response.ok) {
      let detail = `HTTP ${response.status}`;
      try {
        const body = await response.json();
        if (body && body.error) detail += `: ${body.error.message}`;
      } catch (_) { /* not JSON */ }
      throw new Error(`${url}: ${detail}`);
    }
    return response.json();
  }

  function parseId(id) {
    const dot = String(id).lastIndexOf(".");
    return { run: String(id).slice(0, dot), number: Number(String(id).slice(dot + 1)) };
  }

  // -- formatting ------------------------------------------------------------------

  function formatAge(seconds) {
    if (seconds === null || seconds === undefined) return "—";
    if (seconds < 10) return `${seconds.toFixed(1)} s`;
    if (seconds < 120) return `${Math.round(seconds)} s`;
    if (seconds < 7200) return `${Math.round(seconds / 60)} min`;
    if (seconds < 172800) return `${Math.round(seconds / 3600)} h`;
    return `${Math.round(seconds / 86400)} d`;
  }

  function formatTime(unix) {
    if (unix === null || unix === undefined) return "";
    return new Date(unix * 1000).toLocaleTimeString([], { hour12: false });
  }

  const SOURCE_WORDS = {
    websocket: "websocket (live stream)",
    rest: "REST (polling while the stream is down)",
    cache: "cache: no live source, values not confirmed",
  };

  // -- connection ----------------------------------------------------------------------

  const CONNECTION_TEXT = {
    connecting: "Connecting…",
    live: "Live: updates are pushed",
    reconnecting: "Reconnecting… values may be out of date",
    stalled: "Not updating: no news from the server",
    lost: "Disconnected: values may be out of date",
  };

  function setConnection(value, detail) {
    state.connection = value;
    const badge = $("connection");
    badge.dataset.state = value;
    badge.textContent = CONNECTION_TEXT[value] + (detail ? ` (${detail})` : "");
    $("balance-table").dataset.connection = value;
    renderTable();
    renderPortfolio();
  }

  function connect(eventId) {
    if (state.es) state.es.close();
    const es = new EventSource(`/api/stream?last_event_id=${encodeURIComponent(eventId)}`);
    state.es = es;
    es.onopen = () => {
      state.lastStatusAt = Date.now();
      if (state.connection !== "live") setConnection("live");
    };
    es.onerror = () => {
      if (es !== state.es) return;
      if (es.readyState === EventSource.CLOSED) {
        // The server refused the stream (stopping, or too many): start again later.
        setConnection("lost");
        es.close();
        window.setTimeout(() => start(), 2000);
      } else {
        setConnection("reconnecting");
      }
    };
    for (const kind of ["balance", "source", "connection", "validation", "alert"]) {
      es.addEventListener(kind, (message) => onEvent(JSON.parse(message.data)));
    }
    es.addEventListener("status", (message) => {
      state.lastStatusAt = Date.now();
      if (state.connection !== "live") setConnection("live");
      applyStatus(JSON.parse(message.data));
    });
    es.addEventListener("reset", (message) => onReset(JSON.parse(message.data)));
  }

  function watchdog() {
    if (state.stallAfter > 0 && state.connection === "live" &&
        Date.now() - state.lastStatusAt > state.stallAfter * 1000) {
      setConnection("stalled", `nothing for ${Math.round(state.stallAfter)} s`);
    }
  }

  // -- state ---------------------------------------------------------------------------

  async function loadSnapshot() {
    const [balances, events, status] = await Promise.all([
      getJSON("/api/balances"),
      getJSON("/api/events?limit=200"),
      getJSON("/api/status"),
    ]);
    const id = parseId(balances.event_id);
    if (id.run !== state.run) {
      state.run = id.run;
      state.lastSeen = 0;
      state.lastLogged = 0;
      state.recentRows = [];
      $("event-log").replaceChildren();
    }
    state.snapshotNumber = id.number;
    state.lastSeen = Math.max(state.lastSeen, id.number);
    state.rows = new Map(balances.balances.map((row) => [row.asset, row]));
    for (const [number, row] of state.recentRows) {
      if (number > id.number) state.rows.set(row.asset, row);
    }
    renderExchange(balances);
    applyStatus(status);
    for (const event of events.events) addLog(event);
    renderTable();
    updateAssetChoices();
    return balances.event_id;
  }

  async function start() {
    if (state.loading) return state.loading;
    state.loading = (async () => {
      try {
        const eventId = await loadSnapshot();
        connect(eventId);
      } catch (error) {
        // A failed fetch is a failure, never a silent zero: say so and retry.
        setConnection("lost", error.message);
        addPageLog(`could not load the state: ${error.message}`);
        window.setTimeout(() => start(), 2000);
      } finally {
        state.loading = null;
      }
    })();
    return state.loading;
  }

  function onEvent(event) {
    const id = parseId(event.id);
    if (id.run !== state.run || id.number <= state.lastSeen) return; // already handled
    state.lastSeen = id.number;
    addLog(event);
    if (event.type === "source" || event.type === "connection") portfolioOnSource();
    if (event.type === "balance") {
      state.recentRows.push([id.number, event.row]);
      if (state.recentRows.length > RECENT_ROWS) state.recentRows.shift();
      if (id.number > state.snapshotNumber) {
        state.rows.set(event.row.asset, event.row);
        renderTable();
        updateAssetChoices();
        appendHistoryPoint(event);
        portfolioOnBalance();
      }
    }
  }

  async function onReset(data) {
    const id = parseId(data.event_id);
    addPageLog(`reloading the state (${data.reason})`);
    if (id.run !== state.run) state.run = null; // another run: its log starts afresh
    try {
      await loadSnapshot();
      state.lastSeen = Math.max(state.lastSeen, id.number);
      loadHistory();
      state.portfolio.historyWanted = true;
    } catch (error) {
      setConnection("lost", error.message);
      window.setTimeout(() => start(), 2000);
    }
  }

  function applyStatus(status) {
    state.status = status;
    if (status.dashboard) state.stallAfter = Number(status.dashboard.stall_after) || 0;
    const serving = $("serving");
    serving.dataset.source = status.source;
    serving.textContent = `serving: ${status.source}`;
    serving.title = SOURCE_WORDS[status.source] || status.source;
    for (const [asset, fresh] of Object.entries(status.freshness || {})) {
      const row = state.rows.get(asset);
      if (!row) continue;
      row.age = fresh.age;
      row.state = fresh.state;
      row.reason = fresh.reason;
      if (fresh.source) row.source = fresh.source;
    }
    renderTable();
    renderSources(status);
    renderAlerts(status.alerts || []);
    portfolioOnStatus(status);
  }

  function renderAlerts(alerts) {
    // The alerts firing now (from /api/status and each status push), oldest first.
    $("alerts").hidden = alerts.length === 0;
    $("alert-list").replaceChildren(...alerts.map((alert) => el(
      "li",
      { "data-severity": alert.severity, "data-rule": alert.rule },
      el("strong", { text: `${alert.severity} ${alert.rule}${alert.asset ? ` ${alert.asset}` : ""}` }),
      `: ${alert.message} (since ${formatTime(alert.fired_at)})`,
    )));
  }

  // -- rendering -------------------------------------------------------------------------

  function renderExchange(balances) {
    const badge = $("exchange");
    badge.dataset.simulated = balances.simulated ? "true" : "false";
    badge.textContent = balances.simulated
      ? "exchange: simulator (balances are not real)"
      : `exchange: ${balances.exchange}`;
  }

  function renderTable() {
    const body = $("balance-rows");
    const rows = [...state.rows.values()].sort((a, b) => a.asset.localeCompare(b.asset));
    if (!rows.length) {
      const text = state.status ? "No asset held." : "Loading…";
      body.replaceChildren(el("tr", {}, el("td", { colspan: 8, text })));
      return;
    }
    const connected = state.connection === "live";
    body.replaceChildren(...rows.map((row) => {
      let stateName = row.state;
      let reason = row.reason;
      if (!connected && state.connection !== "connecting") {
        stateName = "unknown";
        reason = "this page is not receiving updates";
      }
      const zero = /^-?0(\.0*)?$/.test(row.balance) && /^0(\.0*)?$/.test(row.earn);
      const classes = [`row-${stateName}`];
      if (zero) classes.push("zero");
      return el("tr", { class: classes.join(" "), "data-asset": row.asset, "data-state": stateName },
        el("th", { scope: "row", text: row.asset }),
        el("td", { class: "num", "data-field": "balance", title: row.balance, text: row.display.balance }),
        el("td", { class: "num", "data-field": "free", title: row.free, text: row.display.free }),
        el("td", { class: "num", "data-field": "hold_trade", title: row.hold_trade, text: row.display.hold_trade }),
        el("td", { class: "num", "data-field": "earn", title: row.earn, text: row.display.earn }),
        el("td", { "data-field": "source", text: row.source }),
        el("td", { class: "num", "data-field": "age", text: formatAge(row.age) }),
        el("td", { "data-field": "state" },
          el("span", { class: `state state-${stateName}`, text: stateName }),
          reason ? el("span", { class: "reason", text: reason }) : null));
    }));
  }

  function fact(dt, dd, cls) {
    return [el("dt", { text: dt }), el("dd", { class: cls || null, text: dd })];
  }

  function renderSources(status) {
    const ws = status.websocket || {};
    const rest = status.rest || {};
    const history = status.history || {};
    const facts = [
      ...fact("Serving from", SOURCE_WORDS[status.source] || status.source,
        status.source === "cache" ? "bad" : status.source === "rest" ? "warn" : null),
      ...fact("Stream", ws.enabled
        ? `${ws.state}${ws.holds_live ? ", holds live" : ", holds as of REST"}` +
          (ws.last_message_age !== null ? `, last message ${formatAge(ws.last_message_age)} ago` : "")
        : "off (REST polling only)", ws.enabled && ws.state !== "streaming" ? "warn" : null),
      ...fact("Exchange status", ws.system || "—"),
      ...fact("REST", rest.enabled
        ? (rest.last_success_age !== null ? `last read ${formatAge(rest.last_success_age)} ago` : "no read yet") +
          (rest.consecutive_failures ? `, ${rest.consecutive_failures} failures in a row` : "")
        : "off", rest.consecutive_failures ? "warn" : null),
      ...fact("Circuit breaker", rest.circuit_state || "—", rest.circuit_state === "open" ? "bad" : null),
      ...fact("Last REST error", rest.last_error || "none", rest.last_error ? "bad" : null),
      ...fact("Last change", status.last_update_age !== null ? `${formatAge(status.last_update_age)} ago` : "—"),
      ...fact("History", `${history.entries ?? 0} entries` +
        (history.persistence_error ? `; not saved: ${history.persistence_error}` : ""),
        history.persistence_error ? "bad" : null),
    ];
    $("sources").replaceChildren(...facts);
    renderShared(status);
    const counters = status.counters || {};
    $("counters").replaceChildren(...Object.entries(counters).flatMap(
      ([name, value]) => fact(name.replaceAll("_", " "), String(value))));
  }

  // -- shared mode ----------------------------------------------------------------------
  // One process owning its balances says "single process"; a shared-balances leader names
  // itself, its epoch and generation, and lists what each strategy has reserved. When the
  // reservations could not be read the table says so: old ones are never shown as current.

  function renderShared(status) {
    const shared = status.shared || {};
    const single = !shared.mode || shared.mode === "single process";
    const facts = [...fact("Mode", shared.mode || "single process",
      !single && shared.mode !== "shared leader" ? "bad" : null)];
    if (single) {
      facts.push(...fact("Leader", "— (not in shared mode)"), ...fact("Epoch", "—"));
    } else {
      facts.push(
        ...fact("Leader", shared.leader ??
          (shared.mode === "shared" ? "— (not known)" : "— (this candidate no longer leads)"),
          shared.leader ? null : "bad"),
        ...fact("Epoch", shared.epoch ?? "—"),
        ...fact("Generation", shared.generation ?? "—"),
        ...fact("Reservations", reservationsState(shared, status.as_of),
          shared.reservations_error ? "bad" : null),
      );
    }
    $("shared").replaceChildren(...facts);
    renderReservations(single ? null : shared);
  }

  function reservationsState(shared, asOf) {
    const listed = shared.reservations_listed_at;
    const age = listed !== null && listed !== undefined && asOf ? Math.max(0, asOf - listed) : null;
    if (shared.reservations_error) {
      return shared.reservations_error +
        (age !== null ? ` (last read ${formatAge(age)} ago)` : "");
    }
    return age !== null ? `read ${formatAge(age)} ago` : "—";
  }

  function renderReservations(shared) {
    const table = $("reservation-table");
    const body = $("reservation-rows");
    table.hidden = !shared;
    if (!shared) {
      body.replaceChildren();
      return;
    }
    const byOwner = shared.reservations;
    table.dataset.state = byOwner ? "known" : "unknown";
    if (!byOwner) {
      body.replaceChildren(el("tr", {}, el("td", { colspan: 5, class: "bad",
        text: "Not known now: the reservations could not be read." })));
      return;
    }
    const rows = [];
    for (const owner of Object.keys(byOwner).sort()) {
      for (const asset of Object.keys(byOwner[owner]).sort()) {
        const slot = byOwner[owner][asset];
        rows.push(el("tr", { "data-owner": owner, "data-asset": asset },
          el("th", { scope: "row", text: owner }),
          el("td", { "data-field": "asset", text: asset }),
          el("td", { class: "num", "data-field": "reserved", text: slot.reserved }),
          el("td", { class: "num", "data-field": "count", text: String(slot.count) }),
          el("td", { class: "num", "data-field": "committed", text: String(slot.committed) })));
      }
    }
    if (!rows.length) rows.push(el("tr", {}, el("td", { colspan: 5, text: "No reservation held." })));
    body.replaceChildren(...rows);
  }

  function addLog(event) {
    const id = parseId(event.id);
    if (id.run === state.run && id.number <= state.lastLogged) return;
    if (id.run === state.run) state.lastLogged = id.number;
    appendLogLine(event.type, event.time, event.text, event.id);
  }

  function addPageLog(text) {
    appendLogLine("page", Date.now() / 1000, `page: ${text}`, null);
  }

  function appendLogLine(type, time, text, id) {
    const log = $("event-log");
    const stamp = el("time", { datetime: new Date(time * 1000).toISOString(), text: formatTime(time) });
    log.prepend(el("li", { "data-type": type, "data-id": id }, stamp, text));
    while (log.childElementCount > MAX_LOG) log.lastElementChild.remove();
  }

  // -- history chart --------------------------------------------------------------------

  function updateAssetChoices() {
    const select = $("history-asset");
    const assets = [...state.rows.keys()].sort();
    const current = [...select.options].map((o) => o.value);
    if (assets.join("\n") !== current.join("\n")) {
      const chosen = state.history.asset;
      select.replaceChildren(...assets.map((a) => el("option", { value: a, text: a })));
      if (chosen && assets.includes(chosen)) select.value = chosen;
    }
    if (!state.history.asset && assets.length) {
      const held = [...state.rows.values()].filter((r) => !/^-?0(\.0*)?$/.test(r.balance));
      state.history.asset = (held[0] || state.rows.get(assets[0])).asset;
      select.value = state.history.asset;
      loadHistory();
    }
  }

  async function loadHistory() {
    const { asset, hours } = state.history;
    if (!asset) return;
    try {
      const data = await getJSON(`/api/history/${encodeURIComponent(asset)}?hours=${hours}`);
      if (asset !== state.history.asset) return;
      state.history.raw = data;
      state.history.zoomed = false;
      drawChart(true);
    } catch (error) {
      $("chart-summary").textContent = `Could not load the history of ${asset}: ${error.message}`;
    }
  }

  function appendHistoryPoint(event) {
    const raw = state.history.raw;
    if (!raw || event.asset !== raw.asset || !event.point) return;
    const point = event.point;
    const last = raw.balance[raw.balance.length - 1];
    if (!last || last.balance !== point.balance) {
      raw.balance.push({ t: point.t, balance: point.balance, change: event.delta, source: event.row.source });
    }
    raw.free.push({ t: point.t, free: point.free, hold_trade: event.row.hold_trade });
    raw.until = Math.max(raw.until, point.t);
    raw.current = event.row;
    drawChart(!state.history.zoomed);
  }

  // Step series on one time axis: each value holds until the next one.
  function series(raw) {
    const points = [];
    for (const p of raw.balance) points.push([p.t, 0, p.balance]);
    for (const p of raw.free) points.push([p.t, 1, p.free]);
    points.sort((a, b) => a[0] - b[0] || a[1] - b[1]);
    const xs = [];
    const balance = [];
    const free = [];
    let b = null;
    let f = null;
    for (const [t, which, value] of points) {
      if (which === 0) b = value; else f = value;
      if (xs.length && xs[xs.length - 1] === t) {
        balance[balance.length - 1] = b === null ? null : Number(b);
        free[free.length - 1] = f === null ? null : Number(f);
      } else {
        xs.push(t);
        balance.push(b === null ? null : Number(b));
        free.push(f === null ? null : Number(f));
      }
    }
    const until = Math.max(raw.until, xs.length ? xs[xs.length - 1] : raw.until);
    if (xs.length && xs[xs.length - 1] < until) {
      xs.push(until);
      balance.push(balance[balance.length - 1]);
      free.push(free[free.length - 1]);
    }
    return [xs, balance, free];
  }

  function summarise(raw) {
    const n = raw.balance.length;
    const span = raw.hours === 1 ? "the last hour" : raw.hours === 24 ? "the last 24 hours" : raw.hours === 168 ? "the last 7 days" : `the last ${raw.hours} hours`;
    if (!n) return `No balance change of ${raw.asset} recorded in ${span}.`;
    let low = raw.balance[0];
    let high = raw.balance[0];
    for (const p of raw.balance) {
      if (Number(p.balance) < Number(low.balance)) low = p;
      if (Number(p.balance) > Number(high.balance)) high = p;
    }
    const now = raw.current ? `; now ${raw.current.display.balance} (free ${raw.current.display.free})` : "";
    return `${raw.asset} over ${span}: ${n} balance ${n === 1 ? "entry" : "entries"}, ` +
      `lowest ${low.balance}, highest ${high.balance}${now}.`;
  }

  function drawChart(resetScales) {
    const raw = state.history.raw;
    const holder = $("chart");
    if (!raw) return;
    const data = series(raw);
    const summary = summarise(raw);
    $("chart-summary").textContent = summary;
    holder.setAttribute("aria-label", `Chart of ${summary}`);
    holder.dataset.points = String(data[0].length);
    holder.dataset.asset = raw.asset;
    if (!data[0].length) {
      if (state.history.chart) { state.history.chart.destroy(); state.history.chart = null; }
      holder.replaceChildren(el("p", { class: "hint", text: "Nothing to draw yet." }));
      return;
    }
    const chart = state.history.chart;
    if (chart && chart.asset === raw.asset) {
      chart.setData(data, resetScales);
      return;
    }
    if (chart) chart.destroy();
    holder.replaceChildren();
    const made = stepChart(holder, state.history, [
      { label: `${raw.asset} balance`, stroke: "#1f5fd1" },
      { label: "free", stroke: "#16803a", dash: [6, 4] },
    ], data);
    made.asset = raw.asset;
    state.history.chart = made;
  }

  // -- charts (shared) -------------------------------------------------------------------
  // Every chart of the page is made here: time on x, each value holding until the next
  // (steps), drag across to zoom (view.zoomed), double-click for the whole window, and the
  // visible time range readable from the holder (data-x-min, data-x-max: tests, and whoever
  // inspects the page).

  function stepChart(holder, view, lines, data) {
    const stepped = uPlot.paths.stepped({ align: 1 });
    const opts = {
      width: Math.max(300, holder.clientWidth || 800),
      height: 300,
      // One moment alone: uPlot widens it to a day's worth of its time units (years, in
      // seconds) before asking the range; judge by the data and show a minute either side.
      scales: { x: { time: true, range: oneMomentRange } },
      cursor: { drag: { x: true, y: false } },
      series: [{}, ...lines.map((line) => {
        const spec = { label: line.label, stroke: line.stroke, width: line.width || 2, paths: stepped,
          spanGaps: line.spanGaps !== false };
        if (line.dash) spec.dash = line.dash;
        return spec;
      })],
      axes: [{}, { size: 90 }],
      hooks: {
        setSelect: [(u) => { if (u.select.width > 0) view.zoomed = true; }],
        setScale: [(u, key) => {
          if (key !== "x") return;
          holder.dataset.xMin = String(u.scales.x.min);
          holder.dataset.xMax = String(u.scales.x.max);
        }],
      },
    };
    return new uPlot(opts, data, holder);
  }

  function oneMomentRange(u, min, max) {
    const xs = u.data && u.data[0];
    if (xs && xs.length && xs[xs.length - 1] - xs[0] < 1) return [xs[0] - 60, xs[xs.length - 1] + 60];
    return [min, max];
  }

  function resetZoom() {
    state.history.zoomed = false;
    drawChart(true);
  }

  // -- portfolio -------------------------------------------------------------------------
  // The balances valued in one quote currency (/api/portfolio) and the value over time
  // (/api/portfolio/history), for a manager that has a price source (the status's
  // "portfolio" block says whether it has one; without, the panel says why and asks for
  // nothing). Fetched when the page loads, after each balance, source or connection event,
  // and on the status push when the server valued again, the serving source moved, or
  // PORTFOLIO_REFRESH_MS went by (ages and staleness move
  // without events), one request at a time. A stale price or a cached balance is marked
  // stale, an asset without a price says "no price" (never 0), and the whole panel says it
  // is not current when this page is not receiving updates or a refresh failed.

  const PORTFOLIO_REFRESH_MS = 5000;
  const PORTFOLIO_HISTORY_MS = 15000; // the window's summary (flows vs market) is reloaded
  const PORTFOLIO_POINTS = 1500; // points of the chart (the server thins evenly)
  const PORTFOLIO_GAP_MS = 250; // shortest time between two requests of the portfolio

  function portfolioOnStatus(status) {
    const p = state.portfolio;
    const block = status.portfolio;
    if (!block) return;
    p.available = Boolean(block.available);
    p.reason = block.reason;
    if (block.quote) p.quote = block.quote;
    if (!p.available) {
      renderPortfolio();
      return;
    }
    const valuedAt = (block.valued_at || {})[p.quote];
    const newer = p.data && valuedAt !== undefined && valuedAt > p.data.valued_at;
    const moved = status.source !== p.fetchedSource; // served from elsewhere: value again
    if (!p.data || newer || moved || Date.now() - p.lastFetch >= PORTFOLIO_REFRESH_MS) refreshPortfolio();
    else renderPortfolio();
  }

  function portfolioOnSource() {
    // The serving source or the stream changed: what is fresh may not be any more.
    if (state.portfolio.available) refreshPortfolio();
  }

  function portfolioOnBalance() {
    const p = state.portfolio;
    if (!p.available) return;
    p.historyWanted = true; // a deposit or a withdrawal moves the flows of the window
    refreshPortfolio();
  }

  async function refreshPortfolio() {
    const p = state.portfolio;
    if (p.busy) {
      p.again = true;
      return;
    }
    p.busy = true;
    try {
      do {
        // Events in a burst are coalesced: at most one request in flight, PORTFOLIO_GAP_MS apart.
        const wait = PORTFOLIO_GAP_MS - (Date.now() - p.lastFetch);
        if (wait > 0) await new Promise((resolve) => window.setTimeout(resolve, wait));
        p.again = false;
        p.lastFetch = Date.now();
        p.fetchedSource = state.status ? state.status.source : null;
        try {
          const data = await getJSON(`/api/portfolio?quote=${encodeURIComponent(p.quote)}`);
          p.data = data;
          p.error = null;
          appendPortfolioPoint(data);
        } catch (error) {
          p.error = error.message;
        }
        renderPortfolio();
        if (!p.error) {
          const since = Date.now() - p.historyAt;
          if (!p.raw || since >= PORTFOLIO_HISTORY_MS) await loadPortfolioHistory();
          else if (p.historyWanted) laterPortfolioHistory(PORTFOLIO_GAP_MS * 4 - since);
        }
      } while (p.again);
    } finally {
      p.busy = false;
    }
  }

  function laterPortfolioHistory(delay) {
    // The window's summary after a burst of events: reloaded once, a little later.
    const p = state.portfolio;
    if (p.historyTimer) return;
    p.historyTimer = window.setTimeout(() => {
      p.historyTimer = null;
      if (p.historyWanted) loadPortfolioHistory();
    }, Math.max(0, delay));
  }

  async function loadPortfolioHistory() {
    const p = state.portfolio;
    const { quote, hours } = p;
    p.historyWanted = false;
    p.historyAt = Date.now();
    try {
      const data = await getJSON(
        `/api/portfolio/history?quote=${encodeURIComponent(quote)}&hours=${hours}&limit=${PORTFOLIO_POINTS}`);
      if (quote !== p.quote || hours !== p.hours) return;
      p.raw = data;
      drawPortfolioChart(!p.zoomed);
    } catch (error) {
      $("portfolio-chart-summary").textContent = `Could not load the value over time: ${error.message}`;
    }
  }

  function appendPortfolioPoint(data) {
    const raw = state.portfolio.raw;
    if (!raw || raw.quote !== data.quote) return;
    const point = { t: data.valued_at, total: data.total, complete: data.complete, fresh: data.fresh };
    const last = raw.points[raw.points.length - 1];
    if (last && last.t >= point.t) raw.points[raw.points.length - 1] = { ...point, t: last.t };
    else raw.points.push(point);
    raw.until = Math.max(raw.until, data.as_of);
    drawPortfolioChart(!state.portfolio.zoomed);
  }

  function portfolioState(data) {
    // [state, reason] of the whole panel: live, stale or unknown (never fresh by default).
    const p = state.portfolio;
    if (state.connection !== "live" && state.connection !== "connecting") {
      return ["unknown", "this page is not receiving updates"];
    }
    if (p.error) return ["unknown", `could not refresh: ${p.error}`];
    if (data.state !== "live") {
      return ["stale", `not fresh: ${data.stale.join(", ")} (old price or balance not confirmed)`];
    }
    const asOf = state.status ? state.status.as_of : null;
    if (asOf && asOf - data.valued_at > data.max_price_age) {
      return ["stale", `valued ${formatAge(asOf - data.valued_at)} ago`];
    }
    return ["live", ""];
  }

  function renderPortfolio() {
    const p = state.portfolio;
    const section = $("portfolio");
    $("portfolio-title").textContent = `Portfolio (${p.quote})`;
    const note = $("portfolio-note");
    if (p.available === false) {
      section.dataset.state = "unavailable";
      $("portfolio-body").hidden = true;
      note.hidden = false;
      note.textContent = `Not available: ${p.reason || "nothing can be valued"}`;
      return;
    }
    const data = p.data;
    if (!data) {
      section.dataset.state = p.error ? "unknown" : "loading";
      note.hidden = false;
      note.textContent = p.error ? `Could not value the portfolio: ${p.error}` : "Loading…";
      $("portfolio-body").hidden = true;
      return;
    }
    note.hidden = true;
    $("portfolio-body").hidden = false;
    const [stateName, reason] = portfolioState(data);
    section.dataset.state = stateName;
    const total = $("portfolio-total");
    total.textContent = `${data.display.total} ${data.quote}`;
    total.title = `${data.total} ${data.quote} (exact)`;
    total.dataset.state = stateName;
    total.dataset.valuedAt = String(data.valued_at);
    $("portfolio-state").replaceChildren(...[
      el("span", { class: `state state-${stateName}`, text: stateName }),
      reason ? el("span", { class: "reason", text: reason }) : null,
      el("span", { class: "reason", text: `valued at ${formatTime(data.valued_at)}` }),
    ].filter(Boolean));
    const unvalued = $("portfolio-unvalued");
    unvalued.hidden = !data.unvalued.length;
    unvalued.textContent = data.unvalued.length
      ? `Not in the total, no price: ${data.unvalued.join(", ")}.` : "";
    renderPortfolioRows(data, stateName === "unknown");
  }

  function renderPortfolioRows(data, unknown) {
    const body = $("portfolio-rows");
    if (!data.assets.length) {
      body.replaceChildren(el("tr", {}, el("td", { colspan: 8, text: "The account holds nothing." })));
      return;
    }
    body.replaceChildren(...data.assets.map((asset) => {
      let stateName = asset.state;
      let reason = asset.reason;
      if (unknown && stateName !== "unvalued") {
        stateName = "unknown";
        reason = "not current: see the total";
      }
      const unpriced = asset.state === "unvalued";
      const source = unpriced || !asset.price_source ? "—"
        : `${asset.price_source}, ${formatAge(asset.price_age)} old` + (asset.from_last_trade ? " (last trade)" : "");
      return el("tr", { class: `row-${stateName}`, "data-asset": asset.asset, "data-state": stateName },
        el("th", { scope: "row", text: asset.asset }),
        el("td", { class: "num", "data-field": "amount", title: asset.total, text: asset.display.total }),
        el("td", { class: "num", "data-field": "rate", title: asset.rate, text: unpriced ? "—" : asset.display.rate }),
        el("td", { class: "num", "data-field": "value", title: asset.value,
          text: unpriced ? "no price" : asset.display.value }),
        el("td", { class: "num", "data-field": "allocation", title: asset.allocation,
          text: unpriced || asset.allocation === null ? "—" : `${asset.display.allocation} %` }),
        el("td", { "data-field": "path", title: unpriced ? null : (asset.pairs || []).join(" then "),
          text: unpriced ? "—" : asset.path_text }),
        el("td", { "data-field": "price_source", text: source }),
        el("td", { "data-field": "state" },
          el("span", { class: `state state-${stateName}`, text: unpriced ? "no price" : stateName }),
          reason ? el("span", { class: "reason", text: reason }) : null));
    }));
  }

  // The value as steps, and beside it the stretches where it was not fresh or not complete.
  function portfolioSeries(raw) {
    const xs = [];
    const value = [];
    const doubtful = [];
    for (const point of raw.points) {
      const v = Number(point.total);
      const bad = !point.fresh || !point.complete;
      if (xs.length && xs[xs.length - 1] === point.t) {
        value[value.length - 1] = v;
        doubtful[doubtful.length - 1] = bad ? v : null;
      } else {
        xs.push(point.t);
        value.push(v);
        doubtful.push(bad ? v : null);
      }
    }
    if (xs.length && xs[xs.length - 1] < raw.until) {
      xs.push(raw.until);
      value.push(value[value.length - 1]);
      doubtful.push(doubtful[doubtful.length - 1]);
    }
    return [xs, value, doubtful];
  }

  function signed(text) {
    return text && !text.startsWith("-") && !/^0(\.0*)?$/.test(text) ? `+${text}` : text;
  }

  function summarisePortfolio(raw) {
    const span = raw.hours === 1 ? "the last hour" : raw.hours === 24 ? "the last 24 hours"
      : raw.hours === 168 ? "the last 7 days" : `the last ${raw.hours} hours`;
    const change = raw.change;
    if (!change) return `No value of the portfolio recorded in ${span}.`;
    const shown = raw.display;
    const pct = change.change_pct !== null ? ` (${signed(change.change_pct)} %)` : "";
    const flows = change.flow_count === 1 ? "1 deposit or withdrawal" : `${change.flow_count} deposits and withdrawals`;
    let text = `Value in ${raw.quote} over ${span}: ${shown.start} → ${shown.end}, ` +
      `change ${signed(shown.change)}${pct}; ${flows} ${signed(shown.flows)}, market ${signed(shown.market)}.`;
    if (!change.complete) text += " Incomplete: an asset or a deposit had no price.";
    if (raw.points.some((p) => !p.fresh || !p.complete)) text += " Orange: values that were not fresh or not complete.";
    return text;
  }

  function drawPortfolioChart(resetScales) {
    const p = state.portfolio;
    const raw = p.raw;
    const holder = $("portfolio-chart");
    if (!raw) return;
    const data = portfolioSeries(raw);
    const summary = summarisePortfolio(raw);
    $("portfolio-chart-summary").textContent = summary;
    holder.setAttribute("aria-label", `Portfolio value: ${summary}`);
    holder.dataset.points = String(data[0].length);
    if (!data[0].length) {
      if (p.chart) { p.chart.destroy(); p.chart = null; }
      holder.replaceChildren(el("p", { class: "hint", text: "Nothing to draw yet." }));
      return;
    }
    if (p.chart && p.chart.quote === raw.quote) {
      p.chart.setData(data, resetScales);
      return;
    }
    if (p.chart) p.chart.destroy();
    holder.replaceChildren();
    p.chart = stepChart(holder, p, [
      { label: `value (${raw.quote})`, stroke: "#1f5fd1" },
      { label: "not fresh or incomplete", stroke: "#b45309", width: 3, spanGaps: false },
    ], data);
    p.chart.quote = raw.quote;
  }

  // -- start ------------------------------------------------------------------------------

  function wire() {
    $("history-asset").addEventListener("change", (e) => {
      state.history.asset = e.target.value;
      loadHistory();
    });
    $("history-hours").addEventListener("change", (e) => {
      state.history.hours = Number(e.target.value);
      loadHistory();
    });
    $("history-reset").addEventListener("click", resetZoom);
    $("chart").addEventListener("dblclick", () => { state.history.zoomed = false; });
    $("portfolio-hours").addEventListener("change", (e) => {
      state.portfolio.hours = Number(e.target.value);
      state.portfolio.zoomed = false;
      if (state.portfolio.available) loadPortfolioHistory();
    });
    $("portfolio-chart").addEventListener("dblclick", () => { state.portfolio.zoomed = false; });
    window.addEventListener("resize", () => {
      const chart = state.history.chart;
      if (chart) chart.setSize({ width: Math.max(300, $("chart").clientWidth), height: 300 });
      const value = state.portfolio.chart;
      if (value) value.setSize({ width: Math.max(300, $("portfolio-chart").clientWidth), height: 300 });
    });
    window.setInterval(watchdog, 1000);
  }

  wire();
  start();
})();
