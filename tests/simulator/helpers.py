"""Helpers for the simulator's tests: a tiny signed Kraken client and bounded waits."""

from __future__ import annotations

import asyncio
import itertools
import json
from decimal import Decimal
from typing import Any

import aiohttp

from balance_manager.kraken.protocol.signing import encode_form, encode_json, sign
from balance_manager.simulator import SimulatedKraken

#: Bound on every wait for a frame or a response (real seconds; never reached when all is well).
WAIT = 5.0


class KrakenTestClient:
    """Signs and sends requests to a simulator, the way a Kraken client would.

    Nonces come from a counter (strictly increasing, like a real client's),
    independent of the manual clock.
    """

    def __init__(self, sim: SimulatedKraken, session: aiohttp.ClientSession) -> None:
        self.sim = sim
        self.session = session
        self.api_key = sim.api_key
        self.api_secret = sim.api_secret
        self._nonces = itertools.count(1_700_000_000_000_000_000)

    def nonce(self) -> int:
        """The next nonce."""
        return next(self._nonces)

    async def private_raw(
        self,
        method: str,
        params: dict[str, Any] | None = None,
        *,
        nonce: int | None = None,
        api_key: str | None = None,
        api_secret: str | None = None,
        json_body: bool = False,
        signature: str | None = None,
    ) -> tuple[int, str, str]:
        """POST a private method; returns ``(status, content_type, body text)``."""
        fields = {"nonce": self.nonce() if nonce is None else nonce, **(params or {})}
        body: bytes | str = encode_json(fields) if json_body else encode_form(fields)
        path = f"/0/private/{method}"
        headers = {
            "API-Key": self.api_key if api_key is None else api_key,
            "API-Sign": signature
            or sign(path, fields["nonce"], body, api_secret or self.api_secret),
            "Content-Type": "application/json"
            if json_body
            else "application/x-www-form-urlencoded; charset=utf-8",
        }
        async with self.session.post(self.sim.rest_url + path, data=body, headers=headers) as r:
            return r.status, r.content_type, await r.text()

    async def private(self, method: str, params: dict[str, Any] | None = None, **kw: Any) -> Any:
        """POST a private method; returns the decoded JSON envelope."""
        status, _, text = await self.private_raw(method, params, **kw)
        assert status == 200, text
        return json.loads(text)

    async def public(self, method: str, **query: str) -> Any:
        """GET a public method; returns the decoded JSON envelope."""
        async with self.session.get(f"{self.sim.rest_url}/0/public/{method}", params=query) as r:
            return json.loads(await r.text())

    async def token(self) -> str:
        """A fresh WebSocket token."""
        reply = await self.private("GetWebSocketsToken")
        assert reply["error"] == [], reply
        token: str = reply["result"]["token"]
        return token


class WsTestClient:
    """A WebSocket v2 connection to a simulator, with bounded receives."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.ws = ws
        self._req_ids = itertools.count(1)

    async def recv_message(self) -> aiohttp.WSMessage:
        """The next WebSocket message of any type (bounded wait)."""
        return await asyncio.wait_for(self.ws.receive(), WAIT)

    async def recv_text(self) -> str:
        """The next text frame (bounded wait)."""
        message = await self.recv_message()
        assert message.type == aiohttp.WSMsgType.TEXT, message
        text: str = message.data
        return text

    async def recv(self) -> Any:
        """The next frame, decoded with exact decimals."""
        return json.loads(await self.recv_text(), parse_float=Decimal)

    async def send(self, message: dict[str, Any]) -> None:
        """Send a request."""
        await self.ws.send_str(json.dumps(message))

    async def request(self, method: str, **params: Any) -> Any:
        """Send ``method`` (fresh req_id) and return its reply, skipping heartbeats."""
        message: dict[str, Any] = {"method": method, "req_id": next(self._req_ids)}
        if params:
            message["params"] = params
        await self.send(message)
        reply = await self.recv()
        while reply == {"channel": "heartbeat"}:
            reply = await self.recv()
        return reply

    async def subscribe(self, channel: str, token: str, **params: Any) -> Any:
        """Subscribe and return the acknowledgement (asserting success)."""
        ack = await self.request("subscribe", channel=channel, token=token, **params)
        assert ack.get("success") is True, ack
        return ack
