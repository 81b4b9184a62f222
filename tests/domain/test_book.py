import pytest

from margin_engine.domain.book import Book, check_against_market
from margin_engine.domain.market import MarketSnapshot
from margin_engine.errors import InputError
from margin_engine.io.loaders import parse_model


@pytest.mark.parametrize("mutate, path", [
    (lambda d: d["accounts"][0]["positions"][0].update(size=float("nan")),
     "accounts[0].positions[0].size"),
    (lambda d: d["accounts"][0]["positions"][0].update(size=float("-inf")),
     "accounts[0].positions[0].size"),
    (lambda d: d["accounts"][0]["positions"][0].update(size=3e15),
     "accounts[0].positions[0].size"),
    (lambda d: d["accounts"][0]["positions"][0].update(entry_price=-1),
     "accounts[0].positions[0].entry_price"),
    (lambda d: d["accounts"][0].update(margin_mode="yolo"), "accounts[0].margin_mode"),
    (lambda d: d["accounts"].append(dict(d["accounts"][0])), "accounts[1].id"),
    (lambda d: d["accounts"][0]["collateral"].update(USDT=float("nan")),
     "accounts[0].collateral.USDT"),
    (lambda d: d["accounts"][0]["positions"][0].update(isolated_margin=5),
     "accounts[0].positions[0].isolated_margin"),
    (lambda d: d["accounts"][0]["leverage"].update(BTCUSDT=0), "accounts[0].leverage.BTCUSDT"),
])
def test_bad_book_names_the_field(book_doc, mutate, path):
    mutate(book_doc)
    with pytest.raises(InputError) as err:
        parse_model(Book, book_doc, "book")
    assert err.value.path == path, err.value.problems


@pytest.mark.parametrize("mutate, path", [
    (lambda d: d["accounts"][0]["positions"][0].update(symbol="NOPE"),
     "accounts[0].positions[0].symbol"),
    (lambda d: d["accounts"][0]["collateral"].update(DOGE=100), "accounts[0].collateral.DOGE"),
    (lambda d: d["accounts"][0]["leverage"].update(NOPE=5), "accounts[0].leverage.NOPE"),
])
def test_book_checked_against_market(book_doc, market_doc, mutate, path):
    mutate(book_doc)
    book = parse_model(Book, book_doc, "book")
    market = parse_model(MarketSnapshot, market_doc, "market")
    with pytest.raises(InputError) as err:
        check_against_market(book, market)
    assert err.value.path == path
