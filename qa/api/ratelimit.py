"""Per-client request-rate limit: an in-memory token bucket per IP.

A small bucket of our own rather than a per-route decorator: it covers every route (and the
404s of scanners) from one middleware, answers 429 in the API's error shape with
Retry-After, and needs no timer thread. The limit string is parsed by the ``limits``
package ("1200/minute", "10 per second", several joined by ";"); "off" disables it. The
client is the socket peer address, or the address a proxy in ``QA_TRUSTED_PROXIES``
forwarded (``qa.api.identity.TrustedProxyMiddleware``; from anyone else the headers count
for nothing). State is per process, which is what
one uvicorn worker needs.
"""

from __future__ import annotations

import math
import time
from collections import OrderedDict
from collections.abc import Callable

import limits
from starlette.types import ASGIApp, Receive, Scope, Send

from qa.api.asgi import HttpMiddleware
from qa.api.errors import error_json

DISABLED = {"", "0", "off", "none", "unlimited"}


def parse_rate(spec: str) -> list[tuple[float, float]]:
    """``"1200/minute"`` → ``[(capacity, tokens per second)]``; empty list when disabled."""
    if spec.strip().lower() in DISABLED:
        return []
    try:
        items = limits.parse_many(spec)
    except ValueError as exc:
        raise ValueError(f"invalid rate_limit {spec!r}: use e.g. '1200/minute'") from exc
    out = []
    for item in items:
        if item.amount < 1:
            raise ValueError(f"invalid rate_limit {spec!r}: the count must be at least 1")
        out.append((float(item.amount), item.amount / item.get_expiry()))
    return out


class TokenBuckets:
    """One bucket per key for each (capacity, rate); the least recently seen keys are dropped."""

    def __init__(
        self,
        rates: list[tuple[float, float]],
        max_keys: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.rates = rates
        self.max_keys = max_keys
        self.clock = clock
        self._state: OrderedDict[str, tuple[float, list[float]]] = OrderedDict()

    def take(self, key: str) -> float:
        """Spend one token; return 0 when allowed, else seconds until one is available."""
        now = self.clock()
        last, tokens = self._state.pop(key, (now, [cap for cap, _ in self.rates]))
        elapsed = max(0.0, now - last)
        tokens = [
            min(cap, t + elapsed * rate) for t, (cap, rate) in zip(tokens, self.rates, strict=True)
        ]
        wait = max(
            ((1.0 - t) / rate for t, (_, rate) in zip(tokens, self.rates, strict=True) if t < 1.0),
            default=0.0,
        )
        if wait == 0.0:
            tokens = [t - 1.0 for t in tokens]
        self._state[key] = (now, tokens)
        while len(self._state) > self.max_keys:
            self._state.popitem(last=False)
        return wait


class RateLimitMiddleware(HttpMiddleware):
    """429 with Retry-After once a client exceeds the limit; exempt paths are never counted."""

    def __init__(self, app: ASGIApp, rate_limit: str, exempt: frozenset[str] = frozenset()) -> None:
        super().__init__(app)
        rates = parse_rate(rate_limit)
        self.buckets = TokenBuckets(rates) if rates else None
        self.exempt = exempt

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.buckets is None or scope["path"] in self.exempt:
            await self.app(scope, receive, send)
            return
        client = scope.get("client")
        wait = self.buckets.take(client[0] if client else "unknown")
        if wait > 0:
            retry = max(1, math.ceil(wait))
            response = error_json(
                429,
                "rate_limited",
                f"Too many requests; try again in {retry} s.",
                headers={"Retry-After": str(retry)},
            )
            await response(scope, receive, send)
            return
        await self.app(scope, receive, send)
