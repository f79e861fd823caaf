"""Values the browser tests share: the running demo server, saved screens, the sign-in helper."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import httpx
from playwright.sync_api import BrowserContext, ConsoleMessage, Page

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "web"


@dataclass
class Demo:
    """The running demo server, an admin API client, and tokens for each role."""

    url: str
    api: httpx.Client
    tokens: dict[str, str]

    def token(self, role: str) -> str:
        if role not in self.tokens:
            resp = self.api.post("/api/v1/tokens", json={"name": f"web-{role}", "role": role})
            resp.raise_for_status()
            self.tokens[role] = resp.json()["token"]
        return self.tokens[role]


class Screens:
    """Saves numbered screenshots of a test's screens under test-artifacts/web/."""

    def __init__(self, module: str) -> None:
        self.dir = ARTIFACTS
        self.dir.mkdir(parents=True, exist_ok=True)
        self.module = module

    def save(self, page: Page, name: str, *, full_page: bool = False) -> Path:
        path = self.dir / f"{name}.png"
        page.screenshot(path=str(path), full_page=full_page)
        return path


SignIn = Callable[[str], Page]


def watch_policy(context: BrowserContext, refused: list[str]) -> None:
    """Collect what the Content-Security-Policy refused (Chromium logs each refusal to the
    console as ``Refused to ...``) and every script error: a page that only works without
    its CSP would otherwise look fine in the test and broken in production."""

    def console(msg: ConsoleMessage) -> None:
        if "Refused to" in msg.text or "Content Security Policy" in msg.text:
            refused.append(msg.text)

    context.on("console", console)
    context.on("weberror", lambda err: refused.append(f"script error: {err.error}"))
