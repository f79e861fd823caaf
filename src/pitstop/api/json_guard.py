"""JSON bodies are checked before any route decodes them: nesting at most ``MAX_DEPTH``
levels, every number finite, and no string holding a NUL character.

FastAPI decodes a JSON body with ``json.loads``, which recurses once per level: a body of
100,000 ``[`` ends in a ``RecursionError`` that FastAPI answers with a bare 400, and a
``1e309`` or ``Infinity`` becomes a float ``inf`` that no model in pitstop means to accept (a
timeout of ``inf`` never ends). A pure ASGI middleware sees every JSON body once, within the
body limit (``body_limit.py``, which runs first), refuses it with a 422 problem naming what is
wrong, and otherwise hands the same bytes on. Decoding twice costs little next to the
guarantee that no route, present or future, sees such a body.
"""

from __future__ import annotations

import json
import math
from typing import Any

from starlette.types import ASGIApp, Receive, Scope, Send

from pitstop.api.asgi_body import media_type, read_body, refuse
from pitstop.domain.errors import FieldError, ValidationFailed
from pitstop.domain.limits import MAX_DEPTH


def _constant(text: str) -> float:
    # Kept as a float so the walk below can name where it stands; refused there.
    return float(text)


class _Refused(Exception):
    def __init__(self, field: str, why: str) -> None:
        super().__init__(why)
        self.field = field
        self.why = why


def _field(path: tuple[str | int, ...]) -> str:
    """``advanced_parameters.drain.timeout_s``, ``items[2].name``: as the API names fields."""
    out = ""
    for p in path:
        out += f"[{p}]" if isinstance(p, int) else (f".{p}" if out else p)
    return out or "body"


def depth(value: Any) -> int:
    """How many levels of arrays and objects ``value`` nests (0 for a scalar). Raises
    ``_Refused`` naming the field of a string (or key) holding U+0000, which PostgreSQL's
    text cannot store, or of a number that is not finite."""
    deepest = 0
    stack: list[tuple[Any, int, tuple[str | int, ...]]] = [(value, 0, ())]
    while stack:
        item, level, path = stack.pop()
        if isinstance(item, str):
            if "\x00" in item:
                raise _Refused(_field(path), "NUL characters are refused")
            continue
        if isinstance(item, float):
            if not math.isfinite(item):
                raise _Refused(_field(path), "numbers must be finite (no Infinity, NaN or 1e309)")
            continue
        children: list[tuple[Any, tuple[str | int, ...]]]
        if isinstance(item, dict):
            for k in item:
                if "\x00" in k:
                    raise _Refused(_field(path), "NUL characters are refused, in keys too")
            children = [(v, (*path, k)) for k, v in item.items()]
        elif isinstance(item, list):
            children = [(v, (*path, i)) for i, v in enumerate(item)]
        else:
            continue
        level += 1
        deepest = max(deepest, level)
        if deepest > MAX_DEPTH:
            return deepest
        stack.extend((child, level, where) for child, where in children)
    return deepest


def check(body: bytes) -> None:
    """Raise ``ValidationFailed`` when ``body`` nests too deeply, holds a non-finite number or
    a NUL character, naming the field. A body that is not JSON at all is left to the route,
    which reports where it breaks."""
    too_deep = ValidationFailed(
        f"the JSON body nests deeper than {MAX_DEPTH} levels",
        [FieldError("body", f"nested deeper than {MAX_DEPTH} levels of arrays and objects")],
    )
    try:
        value = json.loads(body, parse_constant=_constant)
    except RecursionError as exc:
        raise too_deep from exc
    except json.JSONDecodeError:
        return
    except ValueError as exc:
        # Python's refusal of an integer of thousands of digits.
        raise ValidationFailed(str(exc), [FieldError("body", str(exc))]) from exc
    try:
        deepest = depth(value)
    except _Refused as exc:
        raise ValidationFailed(
            f"{exc.field}: {exc.why}", [FieldError(exc.field, exc.why)]
        ) from None
    if deepest > MAX_DEPTH:
        raise too_deep


def _is_json(scope: Scope) -> bool:
    kind = media_type(scope)
    return kind == b"application/json" or kind.endswith(b"+json")


class JsonGuard:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not _is_json(scope):
            await self.app(scope, receive, send)
            return
        body, replay = await read_body(receive)
        if body:
            try:
                check(body)
            except ValidationFailed as exc:
                await refuse(scope, receive, send, exc)
                return
        await self.app(scope, replay, send)
