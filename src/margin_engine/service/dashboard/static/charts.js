// Canvas and SVG drawings: the risk-matrix heatmap, the liquidation price axis, line charts.
import { num } from "./format.js";

const SVG = "http://www.w3.org/2000/svg";

function sized(canvas, w, h) {
  const r = window.devicePixelRatio || 1;
  canvas.width = Math.round(w * r); canvas.height = Math.round(h * r);
  canvas.style.width = `${w}px`; canvas.style.height = `${h}px`;
  const g = canvas.getContext("2d");
  g.setTransform(r, 0, 0, r, 0, 0);
  return g;
}

// Loss red, gain green, strength by |pnl| / max|pnl|.
export function pnlColour(p, scale) {
  const t = scale > 0 ? Math.min(1, Math.abs(p) / scale) : 0;
  const base = [247, 247, 247];
  const end = p < 0 ? [200, 30, 45] : [30, 140, 70];
  const c = base.map((b, i) => Math.round(b + (end[i] - b) * t));
  return `rgb(${c[0]},${c[1]},${c[2]})`;
}

// The risk matrix: rows vol shifts (top: largest), columns price moves; worst cell outlined.
export function drawHeatmap(canvas, rm, width = 760) {
  const nP = rm.price_moves.length, nV = rm.vol_shifts.length;
  const left = 86, top = 26, bottom = 46, right = 10;
  const cw = Math.max(24, Math.floor((width - left - right) / nP));
  const ch = 34;
  const w = left + cw * nP + right, h = top + ch * nV + bottom;
  const g = sized(canvas, w, h);
  g.clearRect(0, 0, w, h);
  g.fillStyle = "#fff"; g.fillRect(0, 0, w, h);
  const scale = Math.max(...rm.pnl.flat().map(Math.abs));
  const liqLoss = rm.maintenance_margin - rm.equity;  // P&L at or below this: liquidation
  g.font = "12px system-ui, sans-serif";
  g.textBaseline = "middle";
  for (let v = 0; v < nV; v++) {
    const y = top + (nV - 1 - v) * ch;
    g.fillStyle = "#222"; g.textAlign = "right";
    g.fillText(`vol ${rm.vol_shifts[v] >= 0 ? "+" : ""}${(rm.vol_shifts[v] * 100).toFixed(0)} pt`, left - 6, y + ch / 2);
    for (let p = 0; p < nP; p++) {
      const x = left + p * cw, val = rm.pnl[v][p];
      g.fillStyle = pnlColour(val, scale);
      g.fillRect(x, y, cw - 1, ch - 1);
      if (val <= liqLoss) {  // hatch the cells that reach liquidation
        g.strokeStyle = "rgba(0,0,0,0.35)"; g.lineWidth = 1;
        g.beginPath(); g.moveTo(x + 2, y + ch - 3); g.lineTo(x + cw - 3, y + 2); g.stroke();
      }
    }
  }
  g.textAlign = "center"; g.fillStyle = "#222";
  const every = Math.ceil(nP / 13);
  for (let p = 0; p < nP; p += every) {
    const m = rm.price_moves[p] * 100;
    g.fillText(`${m > 0 ? "+" : ""}${m.toFixed(0)}%`, left + p * cw + cw / 2, top + nV * ch + 12);
  }
  g.fillText("price move of every underlying", left + (nP * cw) / 2, top + nV * ch + 32);
  const wv = rm.worst.vol_index, wp = rm.worst.price_index;
  const wx = left + wp * cw, wy = top + (nV - 1 - wv) * ch;
  g.strokeStyle = "#000"; g.lineWidth = 3;
  g.strokeRect(wx + 1.5, wy + 1.5, cw - 4, ch - 4);
  g.textAlign = wp > nP / 2 ? "right" : "left"; g.fillStyle = "#000";
  g.font = "bold 12px system-ui, sans-serif";
  g.fillText(`worst: ${num(rm.worst.pnl, 0)} ${rm.currency}`,
             wp > nP / 2 ? wx + cw : wx, top - 12);
  // where the cells are (CSS pixels), for tests and tools reading the picture
  canvas.dataset.layout = JSON.stringify({ left, top, cw, ch, nP, nV });
  return { scale, liqLoss };
}

// One position's price axis: mark price and liquidation price (and range) on a line.
export function priceAxis(mark, liq, range, symbol) {
  const w = 420, h = 54, pad = 40;
  const pts = [mark, liq, ...(range || [])].filter((x) => Number.isFinite(x));
  let lo = Math.min(...pts), hi = Math.max(...pts);
  const span = (hi - lo) || Math.abs(mark) * 0.1 || 1;
  lo = Math.max(0, lo - span * 0.25); hi = hi + span * 0.25;
  const X = (p) => pad + ((p - lo) / (hi - lo)) * (w - 2 * pad);
  const svg = document.createElementNS(SVG, "svg");
  svg.setAttribute("viewBox", `0 0 ${w} ${h}`); svg.setAttribute("width", w);
  svg.setAttribute("height", h); svg.setAttribute("role", "img");
  svg.setAttribute("aria-label", `${symbol}: mark ${num(mark)}, liquidation ${num(liq)}`);
  const add = (tag, attrs, text) => {
    const e = document.createElementNS(SVG, tag);
    for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
    if (text !== undefined) e.textContent = text;
    svg.append(e); return e;
  };
  add("line", { x1: pad, x2: w - pad, y1: 28, y2: 28, stroke: "#555", "stroke-width": 1.5 });
  if (range && range.length === 2 && range.every(Number.isFinite)) {
    add("rect", { x: X(Math.min(...range)), y: 22, width: Math.abs(X(range[1]) - X(range[0])),
                  height: 12, fill: "rgba(200,30,45,0.18)" });
  }
  add("line", { x1: X(mark), x2: X(mark), y1: 16, y2: 40, stroke: "#1f5fbf", "stroke-width": 3 });
  add("text", { x: X(mark), y: 11, "text-anchor": "middle", "font-size": 11, fill: "#1f5fbf" }, `mark ${num(mark)}`);
  if (Number.isFinite(liq)) {
    add("line", { x1: X(liq), x2: X(liq), y1: 16, y2: 40, stroke: "#c81e2d", "stroke-width": 3 });
    add("text", { x: X(liq), y: 52, "text-anchor": "middle", "font-size": 11, fill: "#c81e2d" }, `liquidation ${num(liq)}`);
  }
  return svg;
}

// A line chart of several series over the same x (backtest: margin vs realised loss).
export function lineChart(canvas, series, { width = 760, height = 260, marks = [] } = {}) {
  const g = sized(canvas, width, height);
  const left = 70, right = 10, top = 10, bottom = 24;
  g.fillStyle = "#fff"; g.fillRect(0, 0, width, height);
  const all = series.flatMap((s) => s.values.filter(Number.isFinite));
  if (!all.length) return;
  let lo = Math.min(...all), hi = Math.max(...all);
  if (hi === lo) { hi += 1; lo -= 1; }
  const n = Math.max(...series.map((s) => s.values.length));
  const X = (i) => left + (i / Math.max(1, n - 1)) * (width - left - right);
  const Y = (v) => top + (1 - (v - lo) / (hi - lo)) * (height - top - bottom);
  g.strokeStyle = "#ccc"; g.lineWidth = 1; g.font = "11px system-ui, sans-serif";
  g.fillStyle = "#333"; g.textAlign = "right"; g.textBaseline = "middle";
  for (let k = 0; k <= 4; k++) {
    const v = lo + ((hi - lo) * k) / 4;
    g.beginPath(); g.moveTo(left, Y(v)); g.lineTo(width - right, Y(v)); g.stroke();
    g.fillText(num(v, 0), left - 4, Y(v));
  }
  for (const s of series) {
    g.strokeStyle = s.colour; g.lineWidth = 1.5; g.beginPath();
    let started = false;
    s.values.forEach((v, i) => {
      if (!Number.isFinite(v)) { started = false; return; }
      if (!started) { g.moveTo(X(i), Y(v)); started = true; } else g.lineTo(X(i), Y(v));
    });
    g.stroke();
  }
  g.fillStyle = "#c81e2d";
  for (const [i, v] of marks) { g.beginPath(); g.arc(X(i), Y(v), 3, 0, 2 * Math.PI); g.fill(); }
}
