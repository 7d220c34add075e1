"""What credentials cost per connector call: resolving ``secret:NAME`` headers (cached), an OAuth2
token that is still valid, a token fetch from a local Authlib server, and a whole call with OAuth2
versus the same call with a fixed header. Prints one JSON line.

    python bench/credentials.py [--calls 2000]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from podium import Client  # noqa: E402
from podium.connectors import open_connector  # noqa: E402
from tests.connectors.oauth_server import CLIENT_ID, CLIENT_SECRET, start_token_server  # noqa: E402


def _pcts(samples: list[float], scale: float) -> dict[str, float]:
    samples = sorted(samples)
    return {
        "p50": round(statistics.median(samples) * scale, 2),
        "p95": round(samples[int(len(samples) * 0.95) - 1] * scale, 2),
    }


async def _timed(fn: Any, n: int) -> list[float]:
    out = []
    for _ in range(n):
        t0 = time.perf_counter()
        await fn()
        out.append(time.perf_counter() - t0)
    return out


async def main(calls: int) -> dict[str, Any]:
    state, stop = start_token_server(expires_in=3600)
    state.api_keys = {"bench-key-0123456789"}
    tmp = tempfile.mkdtemp()
    os.environ.setdefault("PODIUM_AUDIT_KEY", f"{tmp}/audit.key")
    try:
        async with Client(f"sqlite:///{tmp}/bench.db") as client:
            await client.secrets.set("BENCH_CLIENT_SECRET", CLIENT_SECRET)
            await client.secrets.set("BENCH_API_KEY", "bench-key-0123456789")
            source = client.secrets.source
            keyed = open_connector(
                "openapi", spec=state.spec, allow_private=True, secrets=source,
                auth={"type": "api_key", "value": "secret:BENCH_API_KEY"},
            )  # fmt: skip
            oauth = open_connector(
                "openapi", spec=state.spec, allow_private=True, secrets=source,
                auth={"type": "oauth2_client_credentials", "token_url": state.token_url, "client_id": CLIENT_ID,
                      "client_secret": "secret:BENCH_CLIENT_SECRET"},
            )  # fmt: skip
            plain = open_connector("openapi", spec=state.spec, allow_private=True, headers={"X-API-Key": "bench-key-0123456789"})
            await oauth.guarded_call("echo", {"n": 0})  # the first token
            secret_headers = await _timed(keyed.credentials.headers, calls)
            token_headers = await _timed(oauth.credentials.headers, calls)

            async def fetch() -> None:
                oauth.credentials.oauth.token = None  # type: ignore[attr-defined]
                await oauth.credentials.headers()

            fetches = await _timed(fetch, min(calls, 200))
            for _ in range(50):  # warm both connection pools
                await plain.guarded_call("whoami", {})
                await oauth.guarded_call("echo", {"n": 1})
            plain_calls, oauth_calls = [], []
            for _ in range(min(calls, 500)):  # interleaved, so that machine noise hits both alike
                t0 = time.perf_counter()
                await plain.guarded_call("whoami", {})
                plain_calls.append(time.perf_counter() - t0)
                t0 = time.perf_counter()
                await oauth.guarded_call("echo", {"n": 1})
                oauth_calls.append(time.perf_counter() - t0)
            for c in (keyed, oauth, plain):
                await c.close()
    finally:
        stop()
    return {
        "bench": "credentials",
        "secret_header_us": _pcts(secret_headers, 1e6),
        "oauth_cached_token_us": _pcts(token_headers, 1e6),
        "token_fetch_ms": _pcts(fetches, 1e3),
        "call_fixed_header_ms": _pcts(plain_calls, 1e3),
        "call_oauth2_ms": _pcts(oauth_calls, 1e3),
        "calls": calls,
    }


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calls", type=int, default=2000)
    print(json.dumps(asyncio.run(main(parser.parse_args().calls))))
