#!/usr/bin/env bash
# The curl walkthrough of docs/service.md against a running `margin-engine serve --model
# binance-usdm` (demo market): URL in $U (default http://127.0.0.1:8000), the operator key in
# $MARGIN_ENGINE_OPERATOR_KEY. Writes out/service-walkthrough/. Run by tests/service/test_serve.py.
set -euo pipefail
U=${U:-http://127.0.0.1:8000}
OUT=out/service-walkthrough
mkdir -p "$OUT"
OP="Authorization: Bearer $MARGIN_ENGINE_OPERATOR_KEY"
say() { printf '\n$ %s\n' "$*"; }
json() { python -c "import json,sys; print(json.load(sys.stdin)$1)"; }

say "create an account (operator)"
curl -sf -X POST "$U/v1/accounts" -H "$OP" -d '{"id": "alice", "margin_mode": "cross"}' \
  > "$OUT/alice.json"
KEY=$(json "['api_key']" < "$OUT/alice.json")
ME="Authorization: Bearer $KEY"
echo "alice's key: ${KEY:0:6}…"

say "deposit 10000 USDT, buy 1 BTCUSDT at 72999.3, send the same fill again"
curl -s -X POST "$U/v1/accounts/alice/collateral" -H "$OP" \
  -d '{"currency": "USDT", "amount": "10000"}' | json "['balance']"
FILL='{"fill_id": "f-1", "symbol": "BTCUSDT", "size": "1", "price": "72999.3"}'
curl -s -X POST "$U/v1/accounts/alice/fills" -H "$OP" -d "$FILL" | json "['replayed']"
curl -s -X POST "$U/v1/accounts/alice/fills" -H "$OP" -d "$FILL" | json "['replayed']"

say "alice reads her margin"
curl -s "$U/v1/accounts/alice" -H "$ME" | python -c "
import json, sys
d = json.load(sys.stdin)
print({k: d[k] for k in ('initial_margin', 'maintenance_margin', 'equity', 'status')})"

say "what if she bought 2 more? (stores nothing)"
curl -s -X POST "$U/v1/accounts/alice/what-if" -H "$ME" \
  -d '{"orders": [{"symbol": "BTCUSDT", "size": 2}]}' | python -c "
import json, sys
d = json.load(sys.stdin)
print(d['before']['initial_margin'], '->', d['after']['initial_margin'], d['accept'], d['reason'])"

say "listen on the WebSocket, then BTC falls to 66000"
python - "$U" "$KEY" > "$OUT/stream.txt" <<'PY' &
import asyncio, json, sys
from websockets.asyncio.client import connect

async def main() -> None:
    url = sys.argv[1].replace("http", "ws", 1) + "/v1/stream?token=" + sys.argv[2]
    async with connect(url) as ws:
        ev = json.loads(await asyncio.wait_for(ws.recv(), 10))
        print(ev["type"], ev["account"], "equity", ev["equity"], "IM", ev["initial_margin"])

asyncio.run(main())
PY
LISTENER=$!
sleep 1
curl -s -X POST "$U/v1/market" -H "$OP" \
  -d '{"index": {"BTC": 66000}, "instruments": [{"symbol": "BTCUSDT", "mark_price": 66000}]}' \
  | json "['events'][0]['type']"
wait "$LISTENER"
cat "$OUT/stream.txt"
curl -s "$U/v1/events?after=0" -H "$ME" | json "['events'][-1]['type']"

say "a withdrawal that would leave equity below IM is refused (409)"
curl -s -w ' %{http_code}\n' -X POST "$U/v1/accounts/alice/collateral" -H "$ME" \
  -d '{"currency": "USDT", "amount": "-500"}'

say "alice checks her Merkle proof against the published root"
curl -s "$U/v1/accounts/alice/proof" -H "$ME" > "$OUT/proof.json"
ROOT=$(curl -s "$U/v1/commitments/latest" | json "['root']")
margin-engine audit prove --root "$ROOT" --proof "$OUT/proof.json"

say "what alice may not do"
curl -s -w ' %{http_code}\n' "$U/v1/accounts/bob" -H "$ME"
curl -s -w ' %{http_code}\n' -X POST "$U/v1/market" -H "$ME" -d '{}'
curl -s -w ' %{http_code}\n' -X POST "$U/v1/accounts/alice/fills" -H "$OP" \
  -d '{"fill_id": "f-2", "symbol": "BTCUSDT", "size": "NaN", "price": 1}'
