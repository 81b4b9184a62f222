"""docs/dashboard.md shows exactly the screenshots studies/dashboard_screenshots.py writes, and
they are there (PNG files of a laptop-sized page)."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

from PIL import Image

ROOT = Path(__file__).resolve().parents[2]
_spec = importlib.util.spec_from_file_location(
    "dashboard_screenshots", ROOT / "studies" / "dashboard_screenshots.py")
assert _spec is not None and _spec.loader is not None
study = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(study)
PAGES = study.PAGES


def test_the_page_shows_each_screenshot_the_study_writes():
    page = (ROOT / "docs" / "dashboard.md").read_text()
    shown = re.findall(r"!\[[^\]]*\]\((img/dashboard/[^)]+\.png)\)", page)
    assert shown == [f"img/dashboard/{p}.png" for p in PAGES]
    for rel in shown:
        with Image.open(ROOT / "docs" / rel) as im:
            assert im.format == "PNG" and im.width == 1366 and im.height >= 768
