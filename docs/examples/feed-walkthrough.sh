#!/usr/bin/env bash
# The live-feed walkthrough of docs/service.md against a running
#   margin-engine serve --model deribit-pm --feed replay:<Deribit chain>,<Binance BTCUSDT bars>@21600
# (demo market, 2026-02-04T09:30Z; 6 hours of data per second): URL in $U (default
# http://127.0.0.1:8000), the operator key in $MARGIN_ENGINE_OPERATOR_KEY. Writes
# out/feed-walkthrough/. Run by tests/service/test_serve.py.
set -euo pipefail
U=${U:-http://127.0.0.1:8000}
OUT=out/feed-walkthrough
mkdir -p "$OUT"
OP="Authorization: Bearer $MARGIN_ENGINE_OPERATOR_KEY"
say() { printf '\n$ %s\n' "$*"; }
json() { python -c "import json,sys; print(json.load(sys.stdin)$1)"; }
margin() {  # the market time and alice's figures, as she reads them
  curl -s "$U/v1/accounts/alice" -H "$ME" | python -c "
import json, sys
d = json.load(sys.stdin)
print(d['audit']['market_timestamp'], 'equity', round(d['equity'], 4), 'IM',
      round(d['initial_margin'], 4), 'MM', round(d['maintenance_margin'], 4), d['status'])"
}

say "create an account, deposit 1 BTC, buy 20000 BTC-PERPETUAL (USD 200,000) at 73000 (sent twice)"
KEY=$(curl -sf -X POST "$U/v1/accounts" -H "$OP" -d '{"id": "alice", "margin_mode": "cross"}' \
  | json "['api_key']")
ME="Authorization: Bearer $KEY"
curl -s -X POST "$U/v1/accounts/alice/collateral" -H "$OP" \
  -d '{"currency": "BTC", "amount": "1"}' | json "['balance']"
FILL='{"fill_id": "p-1", "symbol": "BTC-PERPETUAL", "size": "20000", "price": "73000"}'
curl -s -X POST "$U/v1/accounts/alice/fills" -H "$OP" -d "$FILL" | json "['position_after']"
curl -s -X POST "$U/v1/accounts/alice/fills" -H "$OP" -d "$FILL" | json "['replayed']"

say "listen on the WebSocket for her first margin call (margin events stream meanwhile)"
python - "$U" "$KEY" > "$OUT/stream.txt" <<'PY' &
import asyncio, json, sys
from websockets.asyncio.client import connect

async def main() -> None:
    url = sys.argv[1].replace("http", "ws", 1) + "/v1/stream?token=" + sys.argv[2]
    moves = 0
    async with connect(url) as ws:
        while True:
            ev = json.loads(await asyncio.wait_for(ws.recv(), 120))
            if ev["type"] == "margin":
                moves += 1
                continue
            print(f"{moves} margin events, then {ev['type']} at {ev['audit']['market_timestamp']}:"
                  f" equity {float(ev['equity']):.4f} < IM {float(ev['initial_margin']):.4f}"
                  f" {ev['currency']}")
            if ev["type"] == "margin_call":
                return

asyncio.run(main())
PY
LISTENER=$!

say "her margin moves with the feed (read now, and again once the feed has moved the market)"
FIRST=$(margin)
echo "$FIRST"
for _ in $(seq 1 200); do
  sleep 0.2
  NOW=$(margin)
  [ "${NOW%% *}" != "${FIRST%% *}" ] && break
done
echo "$NOW"

say "what if she sold 10000 back? (stores nothing)"
curl -s -X POST "$U/v1/accounts/alice/what-if" -H "$ME" \
  -d '{"orders": [{"symbol": "BTC-PERPETUAL", "size": -10000}]}' | python -c "
import json, sys
d = json.load(sys.stdin)
print('IM', round(d['before']['initial_margin'], 4), '->', round(d['after']['initial_margin'], 4),
      'accept', d['accept'])"

say "the 2026-02-05 sell-off arrives on the WebSocket"
wait "$LISTENER"
cat "$OUT/stream.txt"
margin

say "alice checks her Merkle proof against the published root (the same commitment)"
for _ in 1 2 3 4 5 6 7 8 9 10; do  # the feed publishes a new root every update: pair them
  curl -s "$U/v1/accounts/alice/proof" -H "$ME" > "$OUT/proof.json"
  curl -s "$U/v1/commitments/latest" > "$OUT/latest.json"
  P=$(json "['commitment']['seq']" < "$OUT/proof.json")
  L=$(json "['seq']" < "$OUT/latest.json")
  [ "$P" = "$L" ] && break
done
margin-engine audit prove --root "$(json "['root']" < "$OUT/latest.json")" \
  --proof "$OUT/proof.json"
