// The dashboard: hash routes #/overview, #/account/ID, #/compare[/ID], #/reports.
import { api, ApiError, clearKey, getKey, openStream, setKey, whoAmI } from "./api.js";
import { drawHeatmap, priceAxis } from "./charts.js";
import { el, num, pct, statusBadge, table } from "./format.js";
import { verifyBundle } from "./merkle.js";
import { renderReport } from "./reports.js";

const state = { operator: false, accounts: new Map(), events: [], ws: null, wsState: "closed",
                sort: { key: "margin_ratio", dir: -1 }, filter: "", status: "all",
                model: "", market: "", refreshTimer: null };
const page = () => document.getElementById("page");
const POLL_MS = 5000;

function setTitle(text) { document.title = `${text} · margin-engine`; }
function focusMain() { document.getElementById("main").focus({ preventScroll: true }); }
function showError(where, e) {
  where.replaceChildren(el("p", { class: "error", role: "alert" },
                           e instanceof ApiError ? e.message : `error: ${e.message || e}`));
}

// ---------------------------------------------------------------- sign in
async function signIn(key) {
  const { operator, list } = await whoAmI(key);
  setKey(key);
  state.operator = operator;
  absorb(list);
  document.getElementById("who").replaceChildren(
    el("span", { class: "role" }, operator ? "operator" : `account ${list.accounts[0]?.id ?? ""}`),
    " ", el("button", { type: "button", class: "link", onclick: signOut }, "Sign out"));
  document.getElementById("login").hidden = true;
  document.getElementById("nav").hidden = false;
  connect();
  // status changes arrive over the WebSocket; figures that move without one are polled
  setInterval(() => { if (currentRoute().name === "overview") refreshAccounts(); }, POLL_MS);
}
function signOut() {
  clearKey();
  if (state.ws) state.ws.close();
  location.hash = "#/overview";
  location.reload();
}
function absorb(list) {
  state.model = list.model; state.market = list.market_timestamp;
  state.accounts = new Map(list.accounts.map((a) => [a.id, a]));
}
async function refreshAccounts() {
  try { absorb(await api("/v1/accounts")); } catch { return; }
  if (currentRoute().name === "overview") renderOverviewBody();
}
function scheduleRefresh() {
  clearTimeout(state.refreshTimer);
  state.refreshTimer = setTimeout(refreshAccounts, 150);
}

// ---------------------------------------------------------------- live events
function connect() {
  if (state.ws && state.ws.readyState <= 1) return;
  const after = state.events.length ? state.events[0].seq : 0;
  state.ws = openStream(onEvent, (s) => {
    state.wsState = s;
    const badge = document.getElementById("ws-state");
    if (badge) badge.textContent = wsLabel();
    if (s === "closed") setTimeout(connect, 2000);
  }, after);
}
function wsLabel() {
  return { live: "live: WebSocket connected", closed: "reconnecting…",
           refused: "WebSocket refused the key" }[state.wsState] || state.wsState;
}
function onEvent(ev) {
  if (state.events.some((e) => e.seq === ev.seq)) return;
  state.events.unshift(ev);
  state.events.length = Math.min(state.events.length, 200);
  const a = state.accounts.get(ev.account);
  if (a && ev.status) {
    Object.assign(a, { status: ev.status, equity: Number(ev.equity),
                       initial_margin: Number(ev.initial_margin),
                       maintenance_margin: Number(ev.maintenance_margin),
                       margin_ratio: ev.margin_ratio === null ? null : Number(ev.margin_ratio) });
  }
  if (currentRoute().name === "overview") { renderOverviewBody(); renderEvents(); }
  scheduleRefresh();
}

// ---------------------------------------------------------------- overview
const COLUMNS = [
  ["id", "Account", false], ["currency", "Ccy", false], ["equity", "Equity", true],
  ["initial_margin", "Initial margin", true], ["maintenance_margin", "Maint. margin", true],
  ["margin_ratio", "Margin ratio", true], ["available_balance", "Available", true],
  ["status", "Status", false]];
const SEVERITY = { healthy: 0, margin_call: 1, liquidation: 2 };

function renderOverview() {
  setTitle("Overview");
  const counts = el("p", { id: "counts", class: "counts", "aria-live": "polite" });
  page().replaceChildren(
    el("h2", {}, "Live overview"),
    el("p", { class: "meta" }, `model ${state.model} · market ${state.market} · `,
       el("span", { id: "ws-state", role: "status" }, wsLabel())),
    el("form", { class: "filters", role: "search", onsubmit: (e) => e.preventDefault() },
       el("label", { for: "filter" }, "Filter accounts"),
       el("input", { id: "filter", type: "search", value: state.filter,
                     oninput: (e) => { state.filter = e.target.value; renderOverviewBody(); } }),
       el("label", { for: "status-filter" }, "Status"),
       el("select", { id: "status-filter",
                      onchange: (e) => { state.status = e.target.value; renderOverviewBody(); } },
          ["all", "healthy", "margin_call", "liquidation"].map((s) =>
            el("option", { value: s, selected: state.status === s }, s.replace("_", " "))))),
    counts,
    el("div", { class: "two" },
       el("div", { class: "scroll", id: "accounts-wrap" }),
       el("section", { class: "card events", "aria-labelledby": "events-title" },
          el("h3", { id: "events-title" }, "Margin calls and liquidations"),
          el("ol", { id: "events", role: "log", "aria-live": "polite" }))));
  renderOverviewBody(); renderEvents();
}

function visibleAccounts() {
  const f = state.filter.trim().toLowerCase();
  const rows = [...state.accounts.values()].filter((a) =>
    (!f || a.id.toLowerCase().includes(f)) && (state.status === "all" || a.status === state.status));
  const { key, dir } = state.sort;
  const val = (a) => key === "status" ? SEVERITY[a.status] : a[key];
  rows.sort((a, b) => {
    const x = val(a), y = val(b);
    if (x === y) return a.id.localeCompare(b.id);
    if (x === null || x === undefined) return 1;
    if (y === null || y === undefined) return -1;
    return (typeof x === "string" ? x.localeCompare(y) : x - y) * dir;
  });
  return rows;
}

function renderOverviewBody() {
  const wrap = document.getElementById("accounts-wrap");
  if (!wrap) return;
  const rows = visibleAccounts();
  const focused = wrap.contains(document.activeElement) ? document.activeElement : null;
  const refocus = focused?.dataset.key ? `button[data-key="${focused.dataset.key}"]`
    : focused?.closest("tr")?.dataset.account
      ? `tr[data-account="${CSS.escape(focused.closest("tr").dataset.account)}"] a` : null;
  const head = el("tr", {}, COLUMNS.map(([key, label, numeric]) => {
    const sorted = state.sort.key === key;
    return el("th", { scope: "col", class: numeric ? "num" : null,
                      "aria-sort": sorted ? (state.sort.dir > 0 ? "ascending" : "descending") : "none" },
      el("button", { type: "button", class: "sort", onclick: () => {
        state.sort = { key, dir: sorted ? -state.sort.dir : (numeric ? -1 : 1) };
        renderOverviewBody();
      }, "data-key": key }, label, sorted ? (state.sort.dir > 0 ? " ▲" : " ▼") : ""));
  }));
  const body = rows.map((a) => el("tr", { class: a.status, "data-account": a.id },
    el("th", { scope: "row" }, el("a", { href: `#/account/${encodeURIComponent(a.id)}` }, a.id)),
    el("td", {}, a.currency), el("td", { class: "num" }, num(a.equity)),
    el("td", { class: "num" }, num(a.initial_margin)),
    el("td", { class: "num" }, num(a.maintenance_margin)),
    el("td", { class: "num" }, pct(a.margin_ratio)),
    el("td", { class: "num" }, num(a.available_balance)),
    el("td", {}, statusBadge(a.status))));
  const totals = new Map();
  for (const a of rows) {
    const t = totals.get(a.currency) || { n: 0, equity: 0, im: 0, mm: 0, avail: 0 };
    t.n += 1; t.equity += a.equity; t.im += a.initial_margin; t.mm += a.maintenance_margin;
    t.avail += a.available_balance; totals.set(a.currency, t);
  }
  const foot = [...totals.entries()].sort().map(([ccy, t]) => el("tr", { class: "total" },
    el("th", { scope: "row" }, `Total (${t.n})`), el("td", {}, ccy),
    el("td", { class: "num" }, num(t.equity)), el("td", { class: "num" }, num(t.im)),
    el("td", { class: "num" }, num(t.mm)), el("td", { class: "num" }, pct(t.equity ? t.mm / t.equity : null)),
    el("td", { class: "num" }, num(t.avail)), el("td", {}, "")));
  wrap.replaceChildren(el("table", { id: "accounts" },
    el("caption", {}, "Accounts (select a column header to sort; margin ratio = MM / equity)"),
    el("thead", {}, head), el("tbody", {}, body), el("tfoot", {}, foot)));
  if (refocus) wrap.querySelector(refocus)?.focus();
  const counts = document.getElementById("counts");
  const by = (s) => [...state.accounts.values()].filter((a) => a.status === s).length;
  counts.textContent = `${rows.length} of ${state.accounts.size} accounts shown · ` +
    `${by("margin_call")} margin call · ${by("liquidation")} liquidation`;
}

function renderEvents() {
  const list = document.getElementById("events");
  if (!list) return;
  const shown = state.events.filter((e) => e.type !== "margin").slice(0, 50);
  list.replaceChildren(...(shown.length ? shown.map((e) => el("li", { class: e.type, "data-seq": e.seq },
    statusBadge(e.type === "recovery" ? "healthy" : e.type), " ",
    el("a", { href: `#/account/${encodeURIComponent(e.account ?? "")}` }, e.account ?? "—"),
    ` equity ${num(e.equity)} · IM ${num(e.initial_margin)} · MM ${num(e.maintenance_margin)}`,
    el("small", {}, ` #${e.seq} ${e.created_at ?? ""}`)))
    : [el("li", { class: "none" }, "No events yet.")]));
}

// ---------------------------------------------------------------- account drill-down
async function renderAccount(id) {
  setTitle(`Account ${id}`);
  const root = el("div", {}, el("p", {}, "Loading…"));
  page().replaceChildren(el("h2", {}, `Account ${id}`),
    el("p", {}, el("a", { href: "#/overview" }, "← Overview"), " · ",
       el("a", { href: `#/compare/${encodeURIComponent(id)}` }, "Compare models"), " · ",
       el("a", { href: `#/reports/${encodeURIComponent(id)}` }, "Merkle proof")), root);
  let rep, rm;
  try {
    [rep, rm] = await Promise.all([api(`/v1/accounts/${encodeURIComponent(id)}`),
                                   api(`/v1/accounts/${encodeURIComponent(id)}/risk-matrix`)]);
  } catch (e) { showError(root, e); return; }
  const ccy = rep.currency;
  const cards = el("dl", { class: "cards" },
    ...[["Equity", num(rep.equity)], ["Initial margin", num(rep.initial_margin)],
        ["Maintenance margin", num(rep.maintenance_margin)], ["Margin ratio", pct(rep.margin_ratio)],
        ["Available", num(rep.available_balance)]].map(([k, v]) =>
      el("div", {}, el("dt", {}, k), el("dd", {}, `${v} `, el("small", {}, k === "Margin ratio" ? "" : ccy)))),
    el("div", {}, el("dt", {}, "Status"), el("dd", {}, statusBadge(rep.status))));
  const comps = Object.entries(rep.components || {}).filter(([, v]) => typeof v === "number");
  const maxContrib = Math.max(1e-12, ...rep.positions.map((p) => Math.abs(p.contribution ?? p.initial_margin ?? 0)));
  const positions = table(`Positions (${rep.positions.length}) and their contribution to initial margin`,
    ["Symbol", "Size", "Notional", "IM", "MM", "Contribution", "Liq. price"],
    rep.positions.map((p) => {
      const c = p.contribution ?? p.initial_margin;
      return [p.symbol, num(p.size, 4), num(p.notional), num(p.initial_margin), num(p.maintenance_margin),
        el("span", { class: "bar-cell" }, el("span", { class: "bar", style: `width:${(Math.abs(c ?? 0) / maxContrib) * 100}%` }), num(c)),
        num(p.liquidation_price)];
    }), { numeric: [1, 2, 3, 4, 5, 6] });
  const canvas = el("canvas", { id: "heatmap", role: "img",
    "aria-label": `Scenario P&L heatmap; worst ${num(rm.worst.pnl, 0)} ${rm.currency} at price ${pct(rm.worst.price_move, 0)} and vol ${(rm.worst.vol_shift * 100).toFixed(0)} points` });
  const rmTable = table("Scenario P&L (rows: vol shift, columns: price move)",
    ["vol \\ price", ...rm.price_moves.map((x) => pct(x, 0))],
    rm.vol_shifts.map((v, i) => [`${(v * 100).toFixed(0)} pt`, ...rm.pnl[i].map((x) => num(x, 0))]),
    { numeric: rm.price_moves.map((_, i) => i + 1) });
  const marks = new Map(rm.positions.map((p) => [p.symbol, p.mark_price]));
  const axes = rep.positions.filter((p) => Number.isFinite(p.liquidation_price) || p.liquidation_range)
    .map((p) => el("figure", { class: "axis" }, priceAxis(marks.get(p.symbol), p.liquidation_price, p.liquidation_range, p.symbol),
      el("figcaption", {}, `${p.symbol}: mark ${num(marks.get(p.symbol))}, liquidation ${num(p.liquidation_price)}`)));
  root.replaceChildren(
    cards,
    el("div", { class: "two" },
      el("section", { "aria-labelledby": "comp-title" }, el("h3", { id: "comp-title" }, "Components"),
        comps.length ? table("Margin components", ["Component", `Amount (${ccy})`], comps.map(([k, v]) => [k, num(v)]), { numeric: [1] })
          : el("p", {}, "No components.")),
      whatIfPanel(id, rep)),
    el("section", { class: "scroll" }, positions),
    el("section", { "aria-labelledby": "rm-title" },
      el("h3", { id: "rm-title" }, `Risk matrix: P&L in ${rm.currency}, every underlying (${rm.underlyings.join(", ") || "none"}) moved together`),
      el("p", { class: "meta" }, "Red: loss, green: gain; hatched: at or below maintenance margin − equity (liquidation); outlined: the worst scenario."),
      el("div", { class: "scroll" }, canvas),
      el("details", {}, el("summary", {}, "The numbers"), el("div", { class: "scroll" }, rmTable))),
    el("section", { "aria-labelledby": "liq-title" },
      el("h3", { id: "liq-title" }, "Liquidation prices"),
      axes.length ? axes : el("p", {}, "No liquidation price within reach (or the model gives none).")));
  if (rm.positions.length || rm.underlyings.length) {
    drawHeatmap(canvas, rm, Math.min(900, document.getElementById("main").clientWidth - 40));
  } else {
    canvas.replaceWith(el("p", {}, "No positions and no coin collateral: every scenario's P&L is 0."));
  }
}

function whatIfPanel(id, rep) {
  const out = el("div", { id: "whatif-result", "aria-live": "polite" });
  const symbols = [...new Set(rep.positions.map((p) => p.symbol))];
  const form = el("form", { id: "whatif-form", class: "whatif" },
    el("label", { for: "wi-symbol" }, "Symbol"),
    el("input", { id: "wi-symbol", name: "symbol", required: true, list: "wi-symbols", value: symbols[0] || "" }),
    el("datalist", { id: "wi-symbols" }, symbols.map((s) => el("option", { value: s }))),
    el("label", { for: "wi-size" }, "Size (contracts, − sells)"),
    el("input", { id: "wi-size", name: "size", required: true, inputmode: "decimal", value: "1" }),
    el("label", { for: "wi-price" }, "Price (optional)"),
    el("input", { id: "wi-price", name: "price", inputmode: "decimal" }),
    el("button", { type: "submit" }, "Try the order"));
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    const f = new FormData(form);
    const size = Number(f.get("size")), price = f.get("price") ? Number(f.get("price")) : undefined;
    if (!Number.isFinite(size) || (price !== undefined && !Number.isFinite(price))) {
      out.replaceChildren(el("p", { class: "error", role: "alert" }, "error: size: a number is required")); return;
    }
    const order = { symbol: String(f.get("symbol")).trim(), size };
    if (price !== undefined) order.price = price;
    try {
      const w = await api(`/v1/accounts/${encodeURIComponent(id)}/what-if`, { method: "POST", body: { orders: [order] } });
      out.replaceChildren(
        el("p", { class: w.accept ? "accept" : "reject", role: "status" },
           w.accept ? "Accepted" : "Rejected", w.reason ? `: ${w.reason}` : ""),
        table("Before and after the order", ["", "Before", "After"],
          [["Initial margin", num(w.before.initial_margin), num(w.after.initial_margin)],
           ["Maintenance margin", num(w.before.maintenance_margin), num(w.after.maintenance_margin)],
           ["Equity", num(w.before.equity), num(w.after.equity)],
           ["Available", num(w.before.available_balance), num(w.after.available_balance)],
           ["Status", statusBadge(w.before.status), statusBadge(w.after.status)]], { numeric: [1, 2] }),
        el("p", {}, `Initial margin change: ${num(w.initial_margin_change)} ${w.after.currency}`));
    } catch (err) { showError(out, err); }
  });
  return el("section", { class: "card", "aria-labelledby": "wi-title" },
    el("h3", { id: "wi-title" }, "What-if: try an order before sending it"), form, out);
}

// ---------------------------------------------------------------- model comparison
async function renderCompare(id) {
  setTitle("Models");
  const ids = [...state.accounts.keys()].sort();
  id = id || ids[0];
  const root = el("div", {}, el("p", {}, "Margining under every registered model…"));
  const pick = el("select", { id: "cmp-account", onchange: (e) => { location.hash = `#/compare/${encodeURIComponent(e.target.value)}`; } },
    ids.map((a) => el("option", { value: a, selected: a === id }, a)));
  page().replaceChildren(el("h2", {}, "Model comparison"),
    el("p", {}, el("label", { for: "cmp-account" }, "Account "), pick), root);
  if (!id) { root.replaceChildren(el("p", {}, "No account.")); return; }
  let doc;
  try { doc = await api(`/v1/accounts/${encodeURIComponent(id)}/models`); }
  catch (e) { showError(root, e); return; }
  const ok = doc.models.filter((m) => !m.not_applicable);
  const maxIm = Math.max(1e-12, ...ok.map((m) => m.initial_margin_usd));
  root.replaceChildren(
    el("p", { class: "meta" }, `Account ${id} at market ${doc.market_timestamp}, every model on its default parameters.`),
    el("div", { class: "scroll" }, table(`The account under ${doc.models.length} models (USD)`,
      ["Model", "Version", "Initial margin", "Maint. margin", "IM (USD)", "MM (USD)", "Status"],
      doc.models.map((m) => m.not_applicable
        ? [m.model + (m.active ? " (active)" : ""), m.version, el("span", { class: "na" }, `does not apply: ${m.not_applicable}`), "", "", "", ""]
        : [m.model + (m.active ? " (active)" : ""), m.version, `${num(m.initial_margin)} ${m.currency}`,
           `${num(m.maintenance_margin)} ${m.currency}`,
           el("span", { class: "bar-cell" }, el("span", { class: "bar", style: `width:${(m.initial_margin_usd / maxIm) * 100}%` }), num(m.initial_margin_usd)),
           num(m.maintenance_margin_usd), statusBadge(m.status)]), { numeric: [2, 3, 4, 5] })),
    ...(doc.notes || []).map((n) => el("p", { class: "note" }, `note: ${n}`)));
}

// ---------------------------------------------------------------- reports and proofs
async function renderReports(id) {
  setTitle("Reports");
  const ids = [...state.accounts.keys()].sort();
  id = id || ids[0];
  const proofOut = el("div", { id: "proof-result", "aria-live": "polite" });
  const pick = el("select", { id: "proof-account" }, ids.map((a) => el("option", { value: a, selected: a === id }, a)));
  const reportOut = el("div", { id: "report-view" });
  const file = el("input", { id: "report-file", type: "file", accept: ".json,application/json" });
  file.addEventListener("change", async () => {
    const f = file.files[0];
    if (!f) return;
    try { renderReport(reportOut, JSON.parse(await f.text()), f.name); }
    catch (e) { reportOut.replaceChildren(el("p", { class: "error", role: "alert" }, `error: ${f.name}: ${e.message}`)); }
  });
  page().replaceChildren(el("h2", {}, "Reports"),
    el("section", { class: "card", "aria-labelledby": "proof-title" },
      el("h3", { id: "proof-title" }, "Merkle proof of the account's figures"),
      el("p", {}, "Fetches the account's inclusion proof and the latest published commitment, and checks them in this browser (SHA-256 by SubtleCrypto, RFC 6962 hashing)."),
      el("form", { onsubmit: (e) => { e.preventDefault(); verify(pick.value, proofOut); } },
        el("label", { for: "proof-account" }, "Account "), pick, " ", el("button", { type: "submit" }, "Verify proof")),
      proofOut),
    el("section", { class: "card", "aria-labelledby": "rep-title" },
      el("h3", { id: "rep-title" }, "Backtest and cascade reports"),
      el("p", {}, "Open the JSON a report command wrote (", el("code", {}, "margin-engine backtest ... --format json -o run.json"),
         ", or a cascade simulation's JSON); it is read in this browser, not uploaded."),
      el("label", { for: "report-file" }, "Report file "), file, reportOut));
  if (id) verify(id, proofOut);
}

async function verify(id, out) {
  out.replaceChildren(el("p", {}, "Checking…"));
  try {
    const [bundle, latest] = await Promise.all([api(`/v1/accounts/${encodeURIComponent(id)}/proof`), api("/v1/commitments/latest")]);
    const r = await verifyBundle(bundle, id, latest);
    out.replaceChildren(
      el("p", { class: r.ok ? "accept" : "reject", role: "status", id: "proof-verdict" },
         r.ok ? `Verified: ${id}'s leaf is included under root ${bundle.commitment.root.slice(0, 16)}…`
              : `NOT verified: see the failed step below`),
      el("ol", { class: "steps" }, r.steps.map((s) => el("li", { class: s.ok === false ? "reject" : s.ok ? "accept" : "" },
        `${s.ok === false ? "✗" : s.ok ? "✓" : "•"} ${s.what}`, el("br"), el("code", {}, s.detail)))),
      table("The leaf (the committed figures)", ["Field", "Value"], Object.entries(r.leaf).map(([k, v]) => [k, String(v)])),
      el("details", {}, el("summary", {}, "The proof as served"), el("pre", {}, JSON.stringify(bundle, null, 1))));
  } catch (e) { showError(out, e); }
}

// ---------------------------------------------------------------- routing
function currentRoute() {
  const parts = location.hash.replace(/^#\/?/, "").split("/").map(decodeURIComponent);
  return { name: parts[0] || "overview", arg: parts[1] };
}
async function route() {
  if (!getKey()) return;
  const { name, arg } = currentRoute();
  document.querySelectorAll("#nav a").forEach((a) => {
    if (a.dataset.page === name) a.setAttribute("aria-current", "page"); else a.removeAttribute("aria-current");
  });
  if (name === "account" && arg) await renderAccount(arg);
  else if (name === "compare") await renderCompare(arg);
  else if (name === "reports") await renderReports(arg);
  else renderOverview();
  focusMain();
}

async function start() {
  const login = document.getElementById("login");
  document.getElementById("login-form").addEventListener("submit", async (e) => {
    e.preventDefault();
    const key = document.getElementById("key").value.trim();
    const msg = document.getElementById("login-error");
    msg.textContent = "";
    try { await signIn(key); await route(); }
    catch (err) { msg.textContent = err instanceof ApiError ? err.message : `error: ${err.message}`; }
  });
  window.addEventListener("hashchange", route);
  const key = getKey();
  if (key) {
    try { await signIn(key); await route(); return; } catch { clearKey(); }
  }
  login.hidden = false;
  document.getElementById("key").focus();
}
start();
