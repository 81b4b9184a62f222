import math

import pytest

from margin_engine.domain.market import MarketSnapshot
from margin_engine.errors import InputError
from margin_engine.io.loaders import parse_model


def snap(doc):
    return parse_model(MarketSnapshot, doc, "market")


def test_design_example_loads(market_doc):
    m = snap(market_doc)
    opt = m.instrument("BTC-27MAR26-80000-C")
    assert m.forward(opt) == 73500.0
    assert m.implied_vol(opt) == 0.55
    # 2026-02-04T09:30Z → 2026-03-27T08:00Z = 50 days 22.5 hours, ACT/365
    assert math.isclose(m.years_to_expiry(opt), (50 + 22.5 / 24) / 365, rel_tol=1e-15)
    assert m.usd_price("BTC") == 73000.0 and m.usd_price("USD") == 1.0
    assert m.convert(1.0, "BTC", "USDT") == 73000.0


@pytest.mark.parametrize("mutate, path", [
    (lambda d: d["instruments"][0].update(mark_price=float("nan")), "instruments[0].mark_price"),
    (lambda d: d["instruments"][0].update(mark_price=-5.0), "instruments[0].mark_price"),
    (lambda d: d["instruments"][3].pop("mark_iv"), "instruments[3].mark_iv"),
    (lambda d: d["instruments"][2].update(expiry="2026-02-01T08:00:00Z"), "instruments[2].expiry"),
    (lambda d: d["instruments"].append(dict(d["instruments"][1])), "instruments[4].symbol"),
    (lambda d: d["instruments"][0].update(underlying="SOL"), "instruments[0].underlying"),
    (lambda d: d["instruments"][0].update(settle="EUR"), "instruments[0].settle"),
    (lambda d: d["index"].update(BTC=float("inf")), "index.BTC"),
    (lambda d: d.update(timestamp="2026-02-04T09:30:00"), "timestamp"),
    (lambda d: d["order_books"]["BTCUSDT"].update(bids=[[73020.0, 1.0]]), "order_books.BTCUSDT"),
    (lambda d: d["order_books"].update(NOPE={"bids": [], "asks": []}), "order_books.NOPE"),
    (lambda d: d.update(surprise=1), "surprise"),
])
def test_bad_market_names_the_field(market_doc, mutate, path):
    mutate(market_doc)
    with pytest.raises(InputError) as err:
        snap(market_doc)
    assert any(p == path for p, _ in err.value.problems), err.value.problems


def test_vol_surface_interpolates_in_strike_and_total_variance(market_doc):
    opt = market_doc["instruments"][3]
    opt.pop("mark_iv")
    market_doc["vol_surface"] = {"BTC": [
        {"expiry": "2026-02-27T08:00:00Z", "strikes": [70000, 90000], "vols": [0.50, 0.40]},
        {"expiry": "2026-04-24T08:00:00Z", "strikes": [70000, 90000], "vols": [0.60, 0.50]}]}
    m = snap(market_doc)
    ins = m.instrument(opt["symbol"])
    t0 = m._years(m.vol_surface["BTC"][0].expiry)
    t1 = m._years(m.vol_surface["BTC"][1].expiry)
    tx = m.years_to_expiry(ins)
    w0, w1 = 0.45**2 * t0, 0.55**2 * t1  # strike 80000 is midway on both slices
    expected = math.sqrt((w0 + (w1 - w0) * (tx - t0) / (t1 - t0)) / tx)
    assert math.isclose(m.implied_vol(ins), expected, rel_tol=1e-12)
