"""The web UI runs under a Content-Security-Policy without inline scripts: no template may
carry one (it would silently stop working in the browser)."""

from __future__ import annotations

import re
from importlib.resources import files
from pathlib import Path

import pytest

TEMPLATES = sorted(Path(str(files("pitstop.web").joinpath("templates"))).glob("*.html"))


@pytest.mark.parametrize("template", TEMPLATES, ids=lambda p: p.name)
def test_a_template_has_no_inline_script(template: Path) -> None:
    html = template.read_text()
    assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", html), "inline <script>"
    assert not re.search(r"\son[a-z]+\s*=", html), "inline event handler (onclick=...)"
    assert "javascript:" not in html
    assert "hx-on" not in html  # htmx evaluates these as code
    assert "<style" not in html


def test_htmx_is_told_not_to_inject_its_style_element() -> None:
    base = Path(str(files("pitstop.web").joinpath("templates"))) / "base.html"
    assert '"includeIndicatorStyles": false' in base.read_text()
