"""The CLI's stream reader: an ``error`` event (the server ending a stream whose token was
revoked) becomes the command's error, with the server's code."""

from __future__ import annotations

import httpx
import pytest

from pitstop.cli.client import ApiError, Client
from pitstop.cli.config import ClientConfig

BODY = (
    ": watching\n\n"
    'id: 3\nevent: map\ndata: {"epoch": 3}\n\n'
    'event: error\ndata: {"code": "UNAUTHENTICATED", "status": 401, '
    '"detail": "token \'ci\' was revoked"}\n\n'
)


def test_an_error_event_ends_the_stream_with_the_servers_error() -> None:
    client = Client(ClientConfig(url="http://pitstop.test", token="pst_x"))
    client._http = httpx.Client(
        base_url="http://pitstop.test",
        transport=httpx.MockTransport(
            lambda _: httpx.Response(200, text=BODY, headers={"content-type": "text/event-stream"})
        ),
    )
    seen = []
    with pytest.raises(ApiError) as raised:
        for event, data, event_id in client.stream("/api/v1/fabrics/dc1/map/watch"):
            seen.append((event, data, event_id))
    assert seen == [("map", '{"epoch": 3}', "3")]
    assert raised.value.code == "UNAUTHENTICATED"
    assert "revoked" in raised.value.detail
