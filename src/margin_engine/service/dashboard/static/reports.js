// Backtest and cascade reports (JSON documents written by the CLI), drawn in the page.
import { lineChart } from "./charts.js";
import { el, num } from "./format.js";

function isBacktest(d) { return d && typeof d === "object" && d.series && Array.isArray(d.series.margin); }

function runsOf(doc) {
  if (isBacktest(doc)) return [doc];
  if (Array.isArray(doc)) return doc.filter(isBacktest);
  for (const v of Object.values(doc || {})) {
    if (Array.isArray(v) && v.some(isBacktest)) return v.filter(isBacktest);
  }
  return [];
}

function scalarRows(obj, prefix = "") {
  const rows = [];
  for (const [k, v] of Object.entries(obj || {})) {
    if (v === null || ["string", "number", "boolean"].includes(typeof v)) {
      rows.push([prefix + k, typeof v === "number" ? num(v, Math.abs(v) < 10 ? 4 : 2) : String(v)]);
    } else if (!Array.isArray(v) && typeof v === "object" && prefix.split(".").length < 3) {
      rows.push(...scalarRows(v, `${prefix}${k}.`));
    }
  }
  return rows;
}

function kvTable(caption, obj) {
  const rows = scalarRows(obj);
  return el("table", {}, el("caption", {}, caption),
    el("thead", {}, el("tr", {}, el("th", { scope: "col" }, "Field"), el("th", { scope: "col" }, "Value"))),
    el("tbody", {}, rows.map(([k, v]) => el("tr", {}, el("th", { scope: "row" }, k), el("td", {}, v)))));
}

function objectsTable(caption, list) {
  const cols = [...new Set(list.slice(0, 50).flatMap((o) => Object.keys(o).filter((k) =>
    o[k] === null || typeof o[k] !== "object")))].slice(0, 12);
  return el("table", {}, el("caption", {}, `${caption} (${list.length} rows${list.length > 200 ? ", first 200 shown" : ""})`),
    el("thead", {}, el("tr", {}, cols.map((c) => el("th", { scope: "col" }, c)))),
    el("tbody", {}, list.slice(0, 200).map((o) => el("tr", {}, cols.map((c) =>
      el("td", {}, typeof o[c] === "number" ? num(o[c], Math.abs(o[c]) < 10 ? 4 : 2) : String(o[c] ?? "")))))));
}

function backtest(run) {
  const s = run.series;
  const canvas = el("canvas", { class: "chart", role: "img",
    "aria-label": `${run.label}: margin and realised loss over ${s.date.length} days; red dots: exceedances` });
  const marks = s.exceedance.map((x, i) => (x ? [i, s.realised_loss[i]] : null)).filter(Boolean);
  const out = el("section", { class: "report" },
    el("h4", {}, `${run.label}: ${run.account} ${run.first_day} → ${run.last_day}`),
    el("p", { class: "meta" }, el("span", { class: "key margin" }, "margin"), " ",
       el("span", { class: "key loss" }, `realised loss over ${run.horizon_days} day(s)`), " · ",
       `${marks.length} exceedances in ${s.date.length} days (${run.currency})`),
    el("div", { class: "scroll" }, canvas),
    el("details", {}, el("summary", {}, "Every statistic"),
       el("div", { class: "scroll" }, kvTable("Statistics", run.statistics))));
  requestAnimationFrame(() => lineChart(canvas, [
    { values: s.margin, colour: "#1f5fbf" }, { values: s.realised_loss, colour: "#e08a00" }], { marks }));
  return out;
}

function pick(obj, path) {
  return path.split(".").reduce((o, k) => (o && typeof o === "object" ? o[k] : undefined), obj);
}

function headline(runs) {
  const cols = [["Days", "coverage.n_obs", 0], ["Exceedances", "coverage.n_exceptions", 0],
                ["Coverage", "coverage.coverage", 4], ["Kupiec p", "kupiec.p_value", 4],
                ["Christoffersen p (cc)", "christoffersen.p_value_cc", 4],
                ["Traffic light", "traffic_light_last_250.zone", null],
                ["Mean margin", "mean_margin", 0], ["Max loss", "max_loss", 0]];
  return el("table", { id: "backtest-summary" }, el("caption", {}, "The runs side by side"),
    el("thead", {}, el("tr", {}, el("th", { scope: "col" }, "Run"),
       cols.map(([h, , d]) => el("th", { scope: "col", class: d === null ? null : "num" }, h)))),
    el("tbody", {}, runs.map((r) => el("tr", {}, el("th", { scope: "row" }, r.label),
       cols.map(([, path, d]) => {
         const v = pick(r.statistics, path);
         return el("td", { class: d === null ? null : "num" },
                   typeof v === "number" ? num(v, d) : String(v ?? "—"));
       })))));
}

export function renderReport(target, doc, name) {
  const runs = runsOf(doc);
  if (runs.length) {
    target.replaceChildren(el("h4", {}, `${name}: backtest, ${runs.length} run(s), confidence ${runs[0].confidence}`),
                           el("div", { class: "scroll" }, headline(runs)), ...runs.map(backtest));
    return;
  }
  if (!doc || typeof doc !== "object") throw new Error("not a JSON object");
  const parts = [el("h4", {}, `${name}: ${doc.kind || doc.command || "report"}`), kvTable("Summary", doc)];
  for (const [k, v] of Object.entries(doc)) {
    if (Array.isArray(v) && v.length && v.every((x) => x && typeof x === "object" && !Array.isArray(x))) {
      parts.push(el("div", { class: "scroll" }, objectsTable(k, v)));
    }
    if (Array.isArray(v) && v.length > 2 && v.every((x) => typeof x === "number")) {
      const c = el("canvas", { class: "chart", role: "img", "aria-label": `${k}: ${v.length} values` });
      parts.push(el("h5", {}, k), c);
      requestAnimationFrame(() => lineChart(c, [{ values: v, colour: "#1f5fbf" }], { height: 160 }));
    }
  }
  target.replaceChildren(...parts);
}
