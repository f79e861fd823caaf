"""A small synchronous client of the pitstop API, turning problem+json into ``ApiError``."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx

from pitstop import __version__
from pitstop.cli.config import ClientConfig


class ApiError(Exception):
    """An error the server reported (or the failure to reach it), with its stable code."""

    def __init__(self, code: str, detail: str, body: dict[str, Any] | None = None) -> None:
        super().__init__(f"{code}: {detail}")
        self.code = code
        self.detail = detail
        self.body = body or {}


class Client:
    def __init__(self, cfg: ClientConfig, *, timeout: float = 30.0) -> None:
        headers = {"X-Pitstop-Via": "cli", "User-Agent": f"pitstop-cli/{__version__}"}
        if cfg.token:
            headers["Authorization"] = f"Bearer {cfg.token}"
        self.url = cfg.url
        self._http = httpx.Client(base_url=cfg.url, headers=headers, timeout=timeout)

    def close(self) -> None:
        self._http.close()

    def request(self, method: str, path: str, **kwargs: Any) -> Any:
        try:
            resp = self._http.request(method, path, **kwargs)
        except httpx.ConnectError as exc:
            raise ApiError(
                "UNREACHABLE",
                f"cannot reach the pitstop server at {self.url} ({exc}); "
                "is it running, and is PITSTOP_URL right?",
            ) from exc
        except httpx.TimeoutException as exc:
            raise ApiError("TIMEOUT", f"the server at {self.url} did not answer in time") from exc
        if resp.status_code >= 400:
            try:
                body = resp.json()
            except ValueError:
                body = {}
            code = body.get("code") or f"HTTP_{resp.status_code}"
            detail = body.get("detail") or resp.text or resp.reason_phrase
            raise ApiError(code, detail, body)
        if resp.status_code == 204 or not resp.content:
            return None
        return resp.json()

    def get(self, path: str, **params: Any) -> Any:
        clean = {k: v for k, v in params.items() if v is not None}
        return self.request("GET", path, params=clean)

    def post(self, path: str, body: Any = None, **kwargs: Any) -> Any:
        if body is not None:
            kwargs["json"] = body
        return self.request("POST", path, **kwargs)

    def stream(
        self, path: str, last_event_id: str | None = None
    ) -> Iterator[tuple[str, str, str | None]]:
        """Server-sent events as (event, data, id), until the server closes the stream."""
        headers = {"Accept": "text/event-stream"}
        if last_event_id:
            headers["Last-Event-ID"] = last_event_id
        try:
            with self._http.stream(
                "GET", path, headers=headers, timeout=httpx.Timeout(30.0, read=None)
            ) as resp:
                if resp.status_code >= 400:
                    resp.read()
                    body = resp.json() if resp.content else {}
                    raise ApiError(
                        body.get("code", f"HTTP_{resp.status_code}"), body.get("detail", ""), body
                    )
                event, event_id = "message", None
                data: list[str] = []
                for line in resp.iter_lines():
                    if not line:
                        if data and event == "error":
                            # The server ended the stream: the token was revoked or expired.
                            problem = json.loads("\n".join(data))
                            raise ApiError(
                                problem.get("code", "ERROR"), problem.get("detail", ""), problem
                            )
                        if data:
                            yield event, "\n".join(data), event_id
                        event, data, event_id = "message", [], None
                    elif line.startswith(":"):
                        continue
                    else:
                        field, _, value = line.partition(":")
                        value = value.removeprefix(" ")
                        if field == "event":
                            event = value
                        elif field == "data":
                            data.append(value)
                        elif field == "id":
                            event_id = value
        except httpx.ConnectError as exc:
            raise ApiError("UNREACHABLE", f"cannot reach the pitstop server at {self.url}") from exc

    def paged(self, path: str, *, limit: int | None = None, **params: Any) -> Iterator[Any]:
        """Every item of a cursor listing, fetching pages as it goes; at most ``limit``."""
        cursor: str | None = None
        seen = 0
        if limit is not None and limit <= 0:
            return
        while True:
            page = self.get(path, cursor=cursor, limit=min(limit or 500, 500), **params)
            for item in page["items"]:
                yield item
                seen += 1
                if limit is not None and seen >= limit:
                    return
            cursor = page.get("next_cursor")
            if not cursor:
                return
