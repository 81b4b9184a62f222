// The service's REST and WebSocket API with the key the user typed (sessionStorage).
const KEY = "margin-engine.key";

export function getKey() { return sessionStorage.getItem(KEY); }
export function setKey(k) { sessionStorage.setItem(KEY, k); }
export function clearKey() { sessionStorage.removeItem(KEY); }

export class ApiError extends Error {
  constructor(status, message) { super(message); this.status = status; }
}

export async function api(path, { method = "GET", body, key = getKey() } = {}) {
  const headers = { "Accept": "application/json" };
  if (key) headers["Authorization"] = `Bearer ${key}`;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const r = await fetch(path, { method, headers,
                                body: body === undefined ? undefined : JSON.stringify(body) });
  let doc = null;
  try { doc = await r.json(); } catch { doc = null; }
  if (!r.ok) throw new ApiError(r.status, (doc && doc.error) || `HTTP ${r.status}`);
  return doc;
}

// Who the key belongs to: {operator: bool, accounts: [...]} or throws ApiError(401).
export async function whoAmI(key) {
  const list = await api("/v1/accounts", { key });
  let operator = false;
  try { await api("/v1/audit?limit=1", { key }); operator = true; }
  catch (e) { if (!(e instanceof ApiError) || e.status !== 403) throw e; }
  return { operator, list };
}

// The event stream: calls onEvent(doc) for each event, onState("live"|"closed"|...).
export function openStream(onEvent, onState, after = 0) {
  const proto = location.protocol === "https:" ? "wss:" : "ws:";
  const url = `${proto}//${location.host}/v1/stream?after=${after}`;
  const ws = new WebSocket(url);
  ws.addEventListener("open", () => { ws.send(JSON.stringify({ token: getKey() })); onState("live"); });
  ws.addEventListener("message", (m) => {
    try { onEvent(JSON.parse(m.data)); } catch { /* not JSON: ignore */ }
  });
  ws.addEventListener("close", (e) => onState(e.code === 1008 ? "refused" : "closed"));
  return ws;
}
