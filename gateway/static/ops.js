// Backlay live exposure page: one more WebSocket client of the trading protocol (PROTOCOL.md).
// auth -> subscribe to the operator "exposure" channel -> render every push in place. Nothing
// polls the server: the only timer redraws the charts so their time axis keeps moving.
// Trader controls (trader or admin role) send ordinary trader ops over the same socket.
"use strict";

(() => {
  const HISTORY_MAX = 5000;          // chart points kept per market
  const CHART_WINDOW_MS = 10 * 60e3; // charts show at most the last ten minutes,
  const CHART_WINDOW_MIN_MS = 30e3;  // and at least thirty seconds
  const BACKOFF_MAX_MS = 10e3;
  const LOG_MAX = 60;
  const CONFIRM_MS = 5e3;            // settle/void ask for a second click within this time
  const CLOSE_AUTH = 4001;
  const MONEY = /^-?(0|[1-9][0-9]{0,12})(\.[0-9]{1,2})?$/;
  const FINAL = new Set(["SETTLED", "VOIDED"]);
  const STATEMENT_ROWS = 10;         // movements shown under a user's positions

  const $ = (sel, root = document) => root.querySelector(sel);
  const el = {
    conn: $("#conn"), connText: $("#conn-text"), who: $("#who"), login: $("#login"),
    token: $("#token"), connect: $("#connect"), disconnect: $("#disconnect"),
    summary: $("#summary"), sumMarkets: $("#sum-markets"), sumLast: $("#sum-last"),
    sumPushes: $("#sum-pushes"), markets: $("#markets"), empty: $("#empty"), log: $("#log"),
    userLimits: $("#user-limits"), userLimitsForm: $("#user-limits-form"),
    userLimitsMsg: $("#user-limits-msg"), template: $("#market-template"),
    catalogue: $("#catalogue"), catalogueRows: $("#catalogue-rows"),
    positions: $("#user-positions"), positionsForm: $("#user-positions-form"),
    positionsRows: $("#user-positions-rows"), positionsMsg: $("#user-positions-msg"),
    wallets: $("#user-wallets"), statement: $("#user-statement"),
    statementRows: $("#user-statement-rows"),
    ownLimits: $("#user-self-limits"),
  };

  const state = {
    ws: null, token: null, user: null, roles: [], stopped: true, backoffMs: 1000,
    reconnectTimer: null, nextId: 1, pending: new Map(), markets: new Map(), pushes: 0,
    lastPushAt: null,
  };

  // -- money: strings on the wire, integer minor units here, never floats -------------------

  function toMinor(text) {
    if (typeof text !== "string" || !MONEY.test(text)) return 0;
    const negative = text.startsWith("-");
    const [whole, frac = ""] = text.replace("-", "").split(".");
    const minor = Number(whole) * 100 + Number((frac + "00").slice(0, 2));
    return negative ? -minor : minor;
  }

  function fromMinor(minor) {
    const sign = minor < 0 ? "-" : "";
    const abs = Math.abs(minor);
    return `${sign}${Math.floor(abs / 100)}.${String(abs % 100).padStart(2, "0")}`;
  }

  function pretty(text) { // "-12345.50" -> "-12,345.50"
    const [whole, frac] = String(text).split(".");
    const grouped = whole.replace(/\B(?=(\d{3})+(?!\d))/g, ",");
    return frac === undefined ? grouped : `${grouped}.${frac}`;
  }

  function setMoney(node, text, signed = false) {
    node.dataset.value = text;
    node.textContent = pretty(text);
    node.classList.toggle("neg", signed && toMinor(text) < 0);
    node.classList.toggle("pos", signed && toMinor(text) > 0);
  }

  function clock(ms) {
    return new Date(ms).toLocaleTimeString([], {hour12: false});
  }

  function utc(ms) { // a market's start: 1767229200000 -> "2026-01-01 01:00"
    return new Date(ms).toISOString().slice(0, 16).replace("T", " ");
  }

  function percent(rate) { // a rate string, exactly, without floats: "0.025" -> "2.5%"
    const [whole, frac = ""] = String(rate).split(".");
    const digits = (frac + "0000").slice(0, 4);
    const rest = digits.slice(2).replace(/0+$/, "");
    return `${Number(whole) * 100 + Number(digits.slice(0, 2))}${rest ? "." + rest : ""}%`;
  }

  function nonRunners(selections) { // "s3 (25%), s4 (0%)" for the removed ones
    return (selections || []).filter((s) => s.removed)
      .map((s) => `${s.id} (${percent(s.removed.reduction_factor)})`).join(", ");
  }

  // -- activity log and connection badge ----------------------------------------------------

  function log(text, kind = "info") {
    const li = document.createElement("li");
    li.className = kind;
    li.textContent = `${clock(Date.now())}  ${text}`;
    el.log.prepend(li);
    while (el.log.children.length > LOG_MAX) el.log.lastChild.remove();
  }

  function setConn(stateName, text) {
    el.conn.dataset.state = stateName;
    el.connText.textContent = text;
  }

  // -- the socket ---------------------------------------------------------------------------

  function wsUrl() {
    const fromFragment = fragment().get("ws");
    if (fromFragment) return fromFragment;
    const port = $('meta[name="backlay-ws-port"]').content;
    const path = $('meta[name="backlay-ws-path"]').content || "/ws";
    const scheme = location.protocol === "https:" ? "wss:" : "ws:";
    const host = /^[0-9]+$/.test(port) ? `${location.hostname}:${port}` : location.host;
    return `${scheme}//${host}${path}`;
  }

  function send(msg, target) {
    if (!state.ws || state.ws.readyState !== WebSocket.OPEN) {
      report(target, "not connected", "error");
      return null;
    }
    const id = state.nextId++;
    state.pending.set(id, {op: msg.op, target});
    state.ws.send(JSON.stringify({...msg, id}));
    return id;
  }

  function connect(token) {
    disconnect(false);
    state.token = token;
    state.stopped = false;
    sessionStorage.setItem("backlay.ops.token", token);
    el.connect.disabled = true;
    el.disconnect.disabled = false;
    open();
  }

  function open() {
    const url = wsUrl();
    setConn("connecting", `connecting to ${url}`);
    let ws;
    try {
      ws = new WebSocket(url);
    } catch (err) {
      setConn("error", `bad WebSocket URL ${url}`);
      return;
    }
    state.ws = ws;
    let authed = false;
    ws.onopen = () => {
      state.pending.clear();
      const id = state.nextId++;
      state.pending.set(id, {op: "auth"});
      ws.send(JSON.stringify({op: "auth", id, token: state.token}));
    };
    ws.onmessage = (event) => {
      let msg;
      try { msg = JSON.parse(event.data); } catch { return; }
      if (msg.op === "authed") authed = true;
      handle(msg);
    };
    ws.onclose = (event) => {
      if (state.ws !== ws) return;
      state.ws = null;
      markAllStale();
      if (event.code === CLOSE_AUTH) {
        setConn("error", "authentication failed: check the token");
        log("authentication failed (4001): the token was refused", "error");
        stop();
        return;
      }
      if (state.stopped) return;
      const why = authed ? `connection closed (${event.code})`
        : `cannot connect to ${url}: is the exchange up, and is this page's origin ` +
          `${location.origin} in BACKLAY_ALLOWED_ORIGINS?`;
      setConn("error", `${why}; retrying in ${Math.round(state.backoffMs / 1000)} s`);
      log(why, "error");
      state.reconnectTimer = setTimeout(open, state.backoffMs);
      state.backoffMs = Math.min(state.backoffMs * 2, BACKOFF_MAX_MS);
    };
  }

  function stop() {
    state.stopped = true;
    el.connect.disabled = false;
    el.disconnect.disabled = true;
  }

  function disconnect(forget = true) {
    clearTimeout(state.reconnectTimer);
    stop();
    if (state.ws) {
      const ws = state.ws;
      state.ws = null;
      ws.close(1000, "operator disconnected");
    }
    if (forget) {
      sessionStorage.removeItem("backlay.ops.token");
      setConn("idle", "not connected");
      markAllStale();
    }
  }

  // -- replies and pushes -------------------------------------------------------------------

  function handle(msg) {
    const request = msg.id != null ? state.pending.get(msg.id) : undefined;
    if (msg.id != null) state.pending.delete(msg.id);
    switch (msg.op) {
      case "authed": return onAuthed(msg);
      case "subscribed":
        setConn("live", `live · ${state.user}`);
        state.backoffMs = 1000;
        return;
      case "exposure": return onExposure(msg);
      case "catalogue": return onCatalogue(msg);
      case "market": return onMarket(msg.market, request);
      case "limits":
        report(request && request.target, `limits for ${msg.user} set`, "ok");
        return;
      case "error": return onError(msg, request);
      default: return; // hb and anything newer than this page
    }
  }

  function isTrader() {
    return state.roles.includes("trader") || state.roles.includes("admin");
  }

  function onAuthed(msg) {
    state.user = msg.user;
    state.roles = msg.roles || [];
    el.who.textContent = `${msg.user} · ${state.roles.join(", ")}`;
    document.body.classList.toggle("trader", isTrader());
    el.userLimits.hidden = !isTrader();
    el.positions.hidden = false;
    for (const m of state.markets.values()) m.controls.hidden = !isTrader();
    if (!state.roles.includes("operator") && !state.roles.includes("admin")) {
      setConn("error", "this token has no operator role");
      log("the exposure channel needs the operator (or admin) role", "error");
      disconnect(false);
      return;
    }
    setConn("connecting", "authenticated; subscribing");
    send({op: "subscribe", channel: "exposure"});
    // the catalogue: subscribed first, then listed, so no creation falls between the two
    send({op: "subscribe", channel: "catalogue"});
    send({op: "catalogue", limit: 200});
  }

  // -- a user's positions: GET /admin/users/{id} with the same token ----------------------

  async function adminGet(path) {
    const response = await fetch(path, {headers: {Authorization: `Bearer ${state.token}`}});
    return {ok: response.ok, body: await response.json()};
  }

  async function showPositions(user) {
    el.positionsRows.replaceChildren();
    el.statementRows.replaceChildren();
    el.wallets.hidden = el.statement.hidden = el.ownLimits.hidden = true;
    const {ok, body} = await adminGet(`/admin/users/${encodeURIComponent(user)}`);
    if (!ok) {
      report({msg: el.positionsMsg}, `${body.code}: ${body.message}`, "error");
      return;
    }
    el.wallets.textContent = "Wallets: " + body.wallets.map((w) =>
      `${w.currency} ${pretty(w.balance)} (available ${pretty(w.available)})`).join(" · ");
    el.wallets.hidden = false;
    for (const p of body.positions) {
      const tr = document.createElement("tr");
      tr.dataset.position = p.market;
      const market = document.createElement("td");
      market.textContent = p.market;
      const exposure = document.createElement("td");
      exposure.className = "num";
      setMoney(exposure, p.exposure);
      const pnl = document.createElement("td");
      pnl.dataset.field = "pnl";
      pnl.textContent = p.selections === null ? "pool: paid from the pool"
        : p.selections.map((s) => `${s.id} ${pretty(s.if_win)} (${pretty(s.if_win_with_unmatched)})`)
          .join(" · ");
      const cashOut = document.createElement("td");
      cashOut.className = "num";
      cashOut.dataset.field = "cash_out";
      if (p.cash_out === null) cashOut.textContent = "–";
      else setMoney(cashOut, p.cash_out, true);
      tr.append(market, exposure, pnl, cashOut);
      el.positionsRows.append(tr);
    }
    showOwnLimits(body);
    report({msg: el.positionsMsg}, `${user}: ${body.positions.length} open position(s)`, "ok");
    await showStatement(user);
  }

  // -- a user's statement: GET /admin/users/{id}/statement, newest first ----------------------

  async function showStatement(user) {
    const {ok, body} = await adminGet(
      `/admin/users/${encodeURIComponent(user)}/statement?limit=${STATEMENT_ROWS}`);
    if (!ok) {
      report({msg: el.positionsMsg}, `statement: ${body.code}: ${body.message}`, "error");
      return;
    }
    for (const m of body.movements) {
      const tr = document.createElement("tr");
      tr.dataset.movement = `${m.seq}.${m.currency}`;
      const when = document.createElement("td");
      when.textContent = new Date(m.ts).toISOString().replace("T", " ").slice(0, 19);
      const kind = document.createElement("td");
      kind.dataset.field = "kind";
      kind.textContent = m.kind.replaceAll("_", " ");
      const about = document.createElement("td");
      about.textContent = [m.currency, m.market, m.order, m.ref].filter(Boolean).join(" · ");
      tr.append(when, kind, about);
      for (const [field, signed] of [["amount", true], ["commission", false],
                                     ["held_change", true], ["balance", false],
                                     ["available", false]]) {
        const td = document.createElement("td");
        td.className = "num";
        td.dataset.field = field;
        setMoney(td, m[field], signed);
        tr.append(td);
      }
      el.statementRows.append(tr);
    }
    el.statement.hidden = false;
  }

  // The bettor's own limits (responsible gambling) on one line: what an operator checks
  // before anything else when a customer calls about limits or exclusion.
  function showOwnLimits(body) {
    const parts = [];
    const excluded = body.self_excluded_until;
    el.ownLimits.dataset.excludedUntil = excluded === null ? "" : String(excluded);
    if (excluded !== null) parts.push(`self-excluded until ${utc(excluded)} UTC`);
    for (const own of body.self_limits) {
      for (const [name, entry] of Object.entries(own.limits)) {
        if (entry.limit === null && entry.pending === null) continue;
        let text = `${own.currency} ${name.replace("_", " ")} `
          + (entry.limit === null ? "none" : pretty(entry.limit));
        if (entry.left !== null) text += ` (${pretty(entry.left)} left)`;
        if (entry.pending !== null) {
          const change = entry.pending.limit === null ? "removal"
            : `raise to ${pretty(entry.pending.limit)}`;
          text += `, ${change} from ${utc(entry.pending.effective_ts)} UTC`;
        }
        parts.push(text);
      }
    }
    el.ownLimits.textContent = `Own limits: ${parts.length ? parts.join(" · ") : "none"}`;
    el.ownLimits.classList.toggle("excluded", excluded !== null);
    el.ownLimits.hidden = false;
  }

  // -- the catalogue: one row per market, updated by catalogue pushes -----------------------

  function onCatalogue(msg) {
    el.catalogue.hidden = false;
    for (const m of msg.markets || []) {
      let row = el.catalogueRows.querySelector(`tr[data-catalogue="${CSS.escape(m.market)}"]`);
      if (!row) {
        row = document.createElement("tr");
        row.dataset.catalogue = m.market;
        for (const name of ["market", "event", "name", "start_ts", "status", "in_play",
                            "removed", "traded"]) {
          const td = document.createElement("td");
          td.dataset.field = name;
          if (name === "traded") td.className = "num";
          row.append(td);
        }
        el.catalogueRows.append(row);
      }
      const cell = (name) => row.querySelector(`[data-field="${name}"]`);
      cell("market").textContent = m.market;
      cell("event").textContent = m.event;
      cell("name").textContent = m.name;
      cell("status").textContent = m.status;
      cell("status").dataset.value = m.status;
      cell("in_play").textContent = m.in_play ? "in-play" : "";
      cell("start_ts").textContent = m.start_ts == null ? "–" : utc(m.start_ts);
      cell("removed").textContent = nonRunners(m.selections);
      setMoney(cell("traded"), m.traded);
      const card = state.markets.get(m.market);
      if (card) markRemoved(card, m.selections);
    }
    if (msg.id != null && msg.next) send({op: "catalogue", limit: 200, after: msg.next});
  }

  function onError(msg, request) {
    const what = request ? `${request.op}: ` : "";
    const text = `${what}${msg.code}: ${msg.message}`;
    if (request && request.op === "subscribe") setConn("error", text);
    report(request && request.target, text, "error");
  }

  function report(target, text, kind) {
    if (target && target.msg) {
      target.msg.textContent = text;
      target.msg.className = `msg ${kind}`;
    }
    log(target && target.label ? `${target.label}: ${text}` : text, kind);
  }

  function onExposure(msg) {
    state.pushes += 1;
    state.lastPushAt = Date.now();
    el.summary.hidden = false;
    el.sumPushes.textContent = String(state.pushes);
    el.sumLast.textContent = clock(state.lastPushAt);
    const listed = new Set();
    for (const data of msg.markets || []) {
      listed.add(data.market);
      let m = state.markets.get(data.market);
      if (!m) m = createCard(data);
      updateCard(m, data);
      const row = el.catalogueRows.querySelector(
        `tr[data-catalogue="${CSS.escape(data.market)}"] [data-field="traded"]`);
      if (row && data.matched != null) setMoney(row, data.matched);
    }
    for (const [id, m] of state.markets) {
      if (!listed.has(id)) retire(m);
    }
    el.sumMarkets.textContent = String(listed.size);
    el.empty.hidden = state.markets.size > 0;
    if (!el.empty.hidden) el.empty.textContent = "No open exchange markets right now.";
  }

  function onMarket(view, request) {
    // a trader op's reply: the market as it is now (status, selection names, limits)
    const m = state.markets.get(view.market);
    const verb = request ? request.op : "market";
    report(request && request.target, `${verb} done: ${view.market} is ${view.status}`, "ok");
    if (!m) return;
    for (const s of view.selections || []) m.names[s.id] = s.name;
    markRemoved(m, view.selections);
    m.data = {...m.data, status: view.status};
    setStatus(m, view.status);
    renderPnl(m);
    if (FINAL.has(view.status)) retire(m, view.status);
  }

  // -- market cards -------------------------------------------------------------------------

  function createCard(data) {
    const node = el.template.content.firstElementChild.cloneNode(true);
    node.dataset.market = data.market;
    const m = {
      id: data.market, node, data, names: {}, history: [], retired: false,
      canvas: $(".chart", node), controls: $(".controls", node),
      fields: {
        status: $('[data-field="status"]', node),
        house_liability: $('[data-field="house_liability"]', node),
        matched_liability: $('[data-field="matched_liability"]', node),
        matched: $('[data-field="matched"]', node),
      },
      pnl: $(".pnl tbody", node), users: $(".users tbody", node),
    };
    m.msg = $(".msg", node);
    $(".mid", node).textContent = data.market;
    m.controls.hidden = !isTrader();
    buildControls(m, data);
    el.markets.append(node);
    state.markets.set(data.market, m);
    return m;
  }

  function matchedLiability(data) {
    const outcomes = (data.selections || []).map((s) => toMinor(s.house_pnl));
    return outcomes.length ? Math.max(0, -Math.min(...outcomes)) : 0;
  }

  function updateCard(m, data) {
    if (m.retired) { // listed again (e.g. a reconnect after a gap)
      m.retired = false;
      m.node.classList.remove("retired");
    }
    m.data = data;
    m.node.classList.remove("stale");
    $(".name", m.node).textContent = data.name || data.market;
    setStatus(m, data.status || "?");
    setMoney(m.fields.house_liability, data.house_liability);
    setMoney(m.fields.matched_liability, fromMinor(matchedLiability(data)));
    setMoney(m.fields.matched, data.matched !== undefined ? data.matched : "0.00");
    renderPnl(m);
    const rows = (data.top_users || []).map((u) => [u.user, u.exposure]);
    fillTable(m.users, rows.length ? rows : [["none", null]]);
    record(m, data);
    draw(m);
  }

  function setStatus(m, status) {
    m.fields.status.textContent = status;
    m.fields.status.dataset.value = status;
    m.node.dataset.status = status;
    const can = {
      suspend: status === "OPEN", resume: status === "SUSPENDED" || status === "INACTIVE",
      close: status === "OPEN" || status === "SUSPENDED", void: !FINAL.has(status),
      settle: !FINAL.has(status), remove: !FINAL.has(status),
    };
    for (const button of m.node.querySelectorAll("button[data-action]")) {
      button.disabled = m.retired || !can[button.dataset.action];
    }
    $('[data-action="resume"]', m.node).textContent = status === "INACTIVE" ? "Open" : "Resume";
  }

  function renderPnl(m) {
    fillTable(m.pnl, (m.data.selections || []).map((s) => [
      m.names[s.id] ? `${m.names[s.id]} (${s.id})` : s.id, s.house_pnl, s.id]), true);
  }

  function fillTable(tbody, rows, signed = false) {
    tbody.replaceChildren(...rows.map(([label, money, key]) => {
      const tr = document.createElement("tr");
      if (key) tr.dataset.selection = key;
      const th = document.createElement("td");
      th.textContent = label;
      const td = document.createElement("td");
      td.className = "num";
      if (money !== null) setMoney(td, money, signed);
      tr.append(th, td);
      return tr;
    }));
  }

  function markRemoved(m, selections) {
    // a non-runner: named on the card, and no longer offered to price, settle or remove
    const text = nonRunners(selections);
    const line = $('[data-field="nonrunners"]', m.node);
    line.hidden = !text;
    line.textContent = text ? `Non-runners: ${text}` : "";
    for (const s of selections || []) {
      if (!s.removed) continue;
      for (const input of m.node.querySelectorAll(
        `.prices-inputs input[name="${CSS.escape(s.id)}"], .winners input[name="${CSS.escape(s.id)}"]`)) {
        input.disabled = true;
      }
      const option = $(`.remove-form option[value="${CSS.escape(s.id)}"]`, m.node);
      if (option) option.remove();
    }
  }

  function retire(m, finalStatus) {
    if (m.retired) return;
    m.retired = true;
    m.node.classList.add("retired");
    const status = finalStatus || (FINAL.has(m.data.status) ? m.data.status : "ENDED");
    setStatus(m, status);
    m.fields.status.title = "no longer in the exposure push (settled or voided)";
    record(m, {house_liability: "0.00", selections: []});
    draw(m);
  }

  function markAllStale() {
    for (const m of state.markets.values()) m.node.classList.add("stale");
  }

  // -- trader controls ----------------------------------------------------------------------

  function buildControls(m, data) {
    const target = {msg: m.msg, label: m.id};
    const status = (value, label) => send({op: "market.status", market: m.id, status: value},
      {...target, label: `${m.id} ${label}`});
    m.node.querySelector('[data-action="suspend"]').onclick = () => status("suspended", "suspend");
    m.node.querySelector('[data-action="resume"]').onclick = () => status("open", "open");
    m.node.querySelector('[data-action="close"]').onclick = () => status("closed", "close");
    const voidButton = m.node.querySelector('[data-action="void"]');
    voidButton.onclick = () => confirmThen(voidButton, "Confirm void?", () =>
      send({op: "market.void", market: m.id}, {...target, label: `${m.id} void`}));

    const prices = $(".prices-inputs", m.node);
    const winners = $(".winners", m.node);
    for (const s of data.selections || []) {
      const label = document.createElement("label");
      label.textContent = `${s.id} `;
      const input = document.createElement("input");
      input.name = s.id;
      input.size = 5;
      input.inputMode = "decimal";
      input.placeholder = "odds";
      label.append(input);
      prices.append(label);

      const pick = document.createElement("label");
      const box = document.createElement("input");
      box.type = "checkbox";
      box.name = s.id;
      pick.append(box, ` ${s.id}`);
      winners.append(pick);

      const option = document.createElement("option");
      option.value = s.id;
      option.textContent = s.id;
      $(".remove-form select", m.node).append(option);
    }

    $(".prices-form", m.node).onsubmit = (event) => {
      event.preventDefault();
      const form = event.currentTarget;
      const chosen = {};
      for (const input of $(".prices-inputs", form).querySelectorAll("input")) {
        if (input.value.trim()) chosen[input.name] = input.value.trim();
      }
      if (!Object.keys(chosen).length) return report(target, "enter at least one price", "error");
      send({op: "prices.set", market: m.id, prices: chosen,
            margin: form.elements.margin.value.trim() || "0"},
           {...target, label: `${m.id} prices`});
    };

    $(".limits-form", m.node).onsubmit = (event) => {
      event.preventDefault();
      const msg = {op: "limits.set", market: m.id};
      const given = collect(event.currentTarget, ["max_liability", "min_stake", "max_stake"]);
      if (!given) return report(target, "enter at least one limit", "error");
      send({...msg, ...given}, {...target, label: `${m.id} limits`});
    };

    const removeButton = $('[data-action="remove"]', m.node);
    $(".remove-form", m.node).onsubmit = (event) => {
      event.preventDefault();
      const form = event.currentTarget;
      const selection = form.elements.selection.value;
      const factor = form.elements.reduction_factor.value.trim();
      if (!selection || !factor) return report(target, "pick a selection and a factor", "error");
      confirmThen(removeButton, `Confirm: ${selection} out, ${factor}?`, () =>
        send({op: "selection.remove", market: m.id, selection, reduction_factor: factor},
             {...target, label: `${m.id} remove ${selection}`}));
    };

    const settleButton = $('[data-action="settle"]', m.node);
    $(".settle-form", m.node).onsubmit = (event) => {
      event.preventDefault();
      const picked = [...winners.querySelectorAll("input:checked")].map((b) => b.name);
      if (!picked.length) return report(target, "tick the winner(s) first", "error");
      confirmThen(settleButton, `Confirm: ${picked.join(" + ")} won?`, () =>
        send({op: "market.settle", market: m.id, winners: picked},
             {...target, label: `${m.id} settle`}));
    };
  }

  function collect(form, names) {
    const out = {};
    for (const name of names) {
      const value = form.elements[name].value.trim();
      if (value) out[name] = value;
    }
    return Object.keys(out).length ? out : null;
  }

  function confirmThen(button, question, action) {
    // irreversible ops take a second click within CONFIRM_MS, never a blocking dialog
    if (button.dataset.armed) {
      clearTimeout(Number(button.dataset.armed));
      delete button.dataset.armed;
      button.textContent = button.dataset.label;
      action();
      return;
    }
    button.dataset.label = button.textContent;
    button.textContent = question;
    button.dataset.armed = String(setTimeout(() => {
      delete button.dataset.armed;
      button.textContent = button.dataset.label;
    }, CONFIRM_MS));
  }

  el.userLimitsForm.onsubmit = (event) => {
    event.preventDefault();
    const form = event.currentTarget;
    const user = form.elements.user.value.trim();
    const given = collect(form, ["max_stake", "daily_stake", "weekly_stake", "stake_factor",
                                 "max_exposure"]);
    const target = {msg: el.userLimitsMsg, label: `user ${user}`};
    if (!user || !given) return report(target, "enter a user and at least one limit", "error");
    send({op: "limits.set", user, ...given}, target);
  };

  el.positionsForm.onsubmit = (event) => {
    event.preventDefault();
    const user = event.currentTarget.elements.user.value.trim();
    if (user) showPositions(user).catch((err) => report({msg: el.positionsMsg}, String(err), "error"));
  };

  // -- charts: house liability over time, drawn on a canvas ---------------------------------

  function record(m, data) {
    const point = {t: Date.now(), liability: toMinor(data.house_liability),
                   matched: matchedLiability(data)};
    const last = m.history[m.history.length - 1];
    if (last && last.liability === point.liability && last.matched === point.matched) return;
    m.history.push(point);
    if (m.history.length > HISTORY_MAX) m.history.splice(0, m.history.length - HISTORY_MAX);
  }

  function draw(m) {
    // Two step lines, each on its own scale (labelled in its colour): the worst case with
    // resting quotes sits near the cap while quotes rest, and would flatten the matched line.
    const canvas = m.canvas;
    const ratio = window.devicePixelRatio || 1;
    const width = canvas.clientWidth || 300;
    const height = canvas.clientHeight || 110;
    if (canvas.width !== Math.round(width * ratio)) canvas.width = Math.round(width * ratio);
    if (canvas.height !== Math.round(height * ratio)) canvas.height = Math.round(height * ratio);
    const ctx = canvas.getContext("2d");
    ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
    ctx.clearRect(0, 0, width, height);
    const now = Date.now();
    const points = m.history;
    const first = points.length ? points[0].t : now;
    const span = Math.min(CHART_WINDOW_MS, Math.max(CHART_WINDOW_MIN_MS, now - first));
    const start = now - span;
    const pad = {left: 6, right: 6, top: 18, bottom: 16};
    const visible = points.filter((p) => p.t >= start);
    const before = points.filter((p) => p.t < start).pop();
    const series = before ? [{...before, t: start}, ...visible] : visible;
    const x = (t) => pad.left + (t - start) / span * (width - pad.left - pad.right);
    const plot = height - pad.top - pad.bottom;

    ctx.strokeStyle = "#d8dde6";
    ctx.lineWidth = 1;
    ctx.beginPath();
    ctx.moveTo(pad.left, height - pad.bottom + 0.5);
    ctx.lineTo(width - pad.right, height - pad.bottom + 0.5);
    ctx.stroke();

    const line = (key, colour) => {
      const top = Math.max(0, ...series.map((p) => p[key]));
      const y = (v) => height - pad.bottom - v / Math.max(top, 1) * plot;
      if (series.length) {
        ctx.strokeStyle = colour;
        ctx.lineWidth = 2;
        ctx.beginPath();
        series.forEach((p, i) => {
          if (i === 0) ctx.moveTo(Math.max(x(p.t), pad.left), y(p[key]));
          else {
            ctx.lineTo(x(p.t), y(series[i - 1][key])); // a value holds until the next push
            ctx.lineTo(x(p.t), y(p[key]));
          }
        });
        ctx.lineTo(x(now), y(series[series.length - 1][key]));
        ctx.stroke();
      }
      return top;
    };
    const liabilityTop = line("liability", "#2f6fde");
    const matchedTop = line("matched", "#e8772e");

    ctx.font = "11px system-ui, sans-serif";
    ctx.textBaseline = "top";
    ctx.fillStyle = "#2f6fde";
    ctx.fillText(`house liability, top ${pretty(fromMinor(liabilityTop))}`, pad.left, 3);
    ctx.textAlign = "right";
    ctx.fillStyle = "#e8772e";
    ctx.fillText(`matched, top ${pretty(fromMinor(matchedTop))}`, width - pad.right, 3);
    ctx.fillStyle = "#6b7585";
    ctx.textBaseline = "bottom";
    ctx.fillText("now", width - pad.right, height);
    ctx.textAlign = "left";
    const seconds = Math.round(span / 1000);
    ctx.fillText(seconds < 120 ? `−${seconds} s` : `−${Math.round(seconds / 60)} min`,
                 pad.left, height);
  }

  setInterval(() => { for (const m of state.markets.values()) draw(m); }, 1000);
  window.addEventListener("resize", () => { for (const m of state.markets.values()) draw(m); });

  // -- start --------------------------------------------------------------------------------

  function fragment() {
    return new URLSearchParams(location.hash.replace(/^#/, ""));
  }

  el.login.onsubmit = (event) => {
    event.preventDefault();
    const token = el.token.value.trim();
    if (token) connect(token);
  };
  el.disconnect.onclick = () => {
    disconnect(true);
    log("disconnected");
  };

  const fromUrl = fragment().get("token");
  if (fromUrl) {
    // keep the token out of the address bar and history once read
    const rest = fragment();
    rest.delete("token");
    history.replaceState(null, "", location.pathname + location.search +
      (rest.toString() ? `#${rest}` : ""));
  }
  const token = fromUrl || sessionStorage.getItem("backlay.ops.token");
  if (token) {
    el.token.value = token;
    connect(token);
  }
})();
