// Number formatting and small DOM helpers.
export function num(x, digits = 2) {
  if (x === null || x === undefined || !Number.isFinite(Number(x))) return "—";
  return Number(x).toLocaleString("en-US", { minimumFractionDigits: digits,
                                             maximumFractionDigits: digits });
}
export function pct(x, digits = 1) {
  if (x === null || x === undefined || !Number.isFinite(Number(x))) return "—";
  return `${(Number(x) * 100).toFixed(digits)} %`;
}
export function el(tag, attrs = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === null || v === undefined || v === false) continue;
    if (k === "class") e.className = v;
    else if (k === "text") e.textContent = v;
    else if (k === "style") e.style.cssText = v;  // CSSOM: allowed by the page's CSP
    else if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
    else e.setAttribute(k, v === true ? "" : v);
  }
  for (const c of children.flat()) {
    if (c === null || c === undefined) continue;
    e.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return e;
}
export function statusBadge(status) {
  const label = { healthy: "healthy", margin_call: "margin call", liquidation: "liquidation" };
  return el("span", { class: `badge ${status}` }, label[status] || status);
}
export function table(caption, headers, rows, { numeric = [] } = {}) {
  return el("table", {},
    el("caption", {}, caption),
    el("thead", {}, el("tr", {}, headers.map((h, i) =>
      el("th", { scope: "col", class: numeric.includes(i) ? "num" : null }, h)))),
    el("tbody", {}, rows.map((r) => el("tr", {}, r.map((c, i) =>
      el(i === 0 ? "th" : "td", { scope: i === 0 ? "row" : null,
                                  class: numeric.includes(i) ? "num" : null }, c))))));
}
