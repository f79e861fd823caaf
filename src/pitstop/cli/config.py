"""Where the CLI finds the server and its token: ``PITSTOP_URL``/``PITSTOP_TOKEN``, else the file
``pitstop login`` wrote (readable only by its owner)."""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
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
    # A fresh private file every time: a stale temporary file's mode is never inherited.
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".login-", suffix=".tmp")
    try:
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "w") as fh:
            json.dump({"url": url, "token": token}, fh)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    return path
