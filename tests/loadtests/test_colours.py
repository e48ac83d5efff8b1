"""One palette for the room: the product page's version colours (its badges) are the ones
Locust's charts and Versions bars use, so "v2 is amber" is true on every screen."""

from __future__ import annotations

import re
from pathlib import Path

from loadtests.window import VERSION_COLOURS

CSS = Path(__file__).resolve().parents[2] / "services" / "productpage" / "static" / "bookinfo.css"


def test_page_and_charts_use_the_same_version_colours() -> None:
    page = dict(re.findall(r"--(v\d):\s*(#[0-9a-fA-F]{6})", CSS.read_text()))
    assert page == {v: VERSION_COLOURS[v] for v in ("v1", "v2", "v3")}
