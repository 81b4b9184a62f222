"""A real ``margin-engine serve`` (uvicorn, a free port, a temporary SQLite file) and headless
Chromium driven by Playwright, for the dashboard's end-to-end tests (issue 13).

The browser is Debian's ``chromium`` (``make browser`` installs it with apt-get; set
``MARGIN_ENGINE_CHROMIUM`` to use another binary). Without Playwright or a Chromium binary the
tests skip, saying which is missing and how to install it.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

ROOT = Path(__file__).resolve().parents[2]
OP = "operator-key-for-browser-tests-0123"
MARKET = ROOT / "docs" / "examples" / "market-2026-02-04.json"


def chromium_path() -> str | None:
    """The Chromium binary to drive, or None."""
    for c in (os.environ.get("MARGIN_ENGINE_CHROMIUM"), shutil.which("chromium"),
              "/usr/bin/chromium", shutil.which("chromium-browser")):
        if c and os.access(c, os.X_OK):
            return c
    return None


@dataclass
class Server:
    url: str
    keys: dict[str, str]
    banner: list[str]
    op: str = OP

    def client(self, key: str = OP) -> httpx.Client:
        return httpx.Client(base_url=self.url, headers={"Authorization": f"Bearer {key}"},
                            timeout=30)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """``serve --model binance-usdm`` on the example market with two accounts: alice long 1
    BTCUSDT on 10,000 USDT, bob short 2 on 50,000 USDT (both filled at 72,999.3)."""
    db = tmp_path_factory.mktemp("dash") / "dash.db"
    port = _free_port()
    env = {**os.environ, "MARGIN_ENGINE_OPERATOR_KEY": OP,
           "PYTHONPATH": str(ROOT / "src") + os.pathsep + os.environ.get("PYTHONPATH", "")}
    proc = subprocess.Popen(
        [sys.executable, "-c", "from margin_engine.cli.main import app; app()", "serve",
         "--model", "binance-usdm", "--db", f"sqlite:///{db}", "--port", str(port),
         "--market", str(MARKET)],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(600):  # up to 60 s to start (a start deadline, not a timing assertion)
            try:
                with urllib.request.urlopen(f"{url}/healthz") as r:
                    if r.status == 200:
                        break
            except OSError:
                if proc.poll() is not None:
                    pytest.fail(f"server exited: {proc.stdout.read() if proc.stdout else ''}")
                time.sleep(0.1)
        else:
            pytest.fail("server did not start in 60 s")
        assert proc.stdout is not None
        banner = [proc.stdout.readline().strip() for _ in range(2)]  # printed before it listens
        keys: dict[str, str] = {}
        with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {OP}"},
                          timeout=30) as c:
            for name, coll, size in (("alice", "10000", "1"), ("bob", "50000", "-2")):
                r = c.post("/v1/accounts", json={"id": name, "collateral": {"USDT": coll}})
                assert r.status_code == 201, r.text
                keys[name] = r.json()["api_key"]
                r = c.post(f"/v1/accounts/{name}/fills", json={
                    "fill_id": f"f-{name}", "symbol": "BTCUSDT", "size": size,
                    "price": "72999.3"})
                assert r.status_code == 200, r.text
        yield Server(url, keys, banner)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Headless Chromium, or a skip saying what is missing."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.skip("playwright is not installed (pip install -e '.[test]')")
    exe = chromium_path()
    if exe is None:
        pytest.skip("no Chromium binary: `make browser` installs Debian's chromium (apt-get "
                    "install chromium), or set MARGIN_ENGINE_CHROMIUM")
    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=exe, headless=True)
        try:
            yield b
        finally:
            b.close()


@pytest.fixture
def page(browser: Any, server: Server) -> Iterator[Any]:
    """A fresh tab (own sessionStorage) at a laptop's 1366×768, failing on any page error and
    on any request to another host than the service (no CDN, nothing fetched at run time)."""
    ctx = browser.new_context(viewport={"width": 1366, "height": 768})
    p = ctx.new_page()
    errors: list[str] = []
    elsewhere: list[str] = []
    host = server.url.split("://", 1)[1]
    p.on("pageerror", lambda e: errors.append(str(e)))
    # console errors (a CSP refusal among them), less the 4xx answers the tests ask for
    p.on("console", lambda m: errors.append(m.text) if m.type == "error"
         and not m.text.startswith("Failed to load resource") else None)
    p.on("request", lambda r: None if r.url.split("://", 1)[-1].startswith(host + "/")
         or r.url.startswith("data:") else elsewhere.append(r.url))
    p.on("websocket", lambda ws: None if ws.url.startswith(f"ws://{host}/")
         else elsewhere.append(ws.url))
    p.set_default_timeout(15_000)
    yield p
    ctx.close()
    assert errors == [], errors
    assert elsewhere == [], elsewhere
