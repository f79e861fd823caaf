"""Where the CLI finds the server and its token: ``PITSTOP_URL``/``PITSTOP_TOKEN``, else the file
``pitstop login`` wrote (readable only by its owner)."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import platformdirs

DEFAULT_URL = "http://127.0.0.1:8080"


def config_path() -> Path:
    override = os.environ.get("PITSTOP_CONFIG")
    if override:
        return Path(override)
    return Path(platformdirs.user_config_dir("pitstop", appauthor=False)) / "login.json"


@dataclass(frozen=True, slots=True)
class ClientConfig:
    url: str
    token: str | None


def load() -> ClientConfig:
    saved: dict[str, str] = {}
    path = config_path()
    if path.exists():
        try:
            saved = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError):
            saved = {}
    url = os.environ.get("PITSTOP_URL") or saved.get("url") or DEFAULT_URL
    token = os.environ.get("PITSTOP_TOKEN") or saved.get("token")
    return ClientConfig(url=url.rstrip("/"), token=token)


def save(url: str, token: str) -> Path:
    path = config_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        json.dump({"url": url, "token": token}, fh)
    tmp.replace(path)
    return path
