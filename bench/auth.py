"""What checking an API token against the signed audit log costs: ``Governance.authenticate`` of a
user holding a custom role and a built-in one, on a SQLite store, 1,000 times after 50 to warm up.
Every HTTP request, and a long-lived client every few seconds, authenticates once.

    python bench/auth.py             # one JSON object

Figure: microseconds per authenticate (run it on the commit before to compare).
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from podium import Client


async def main() -> None:
    folder = tempfile.mkdtemp(prefix="podium-bench-auth-")
    os.environ["PODIUM_AUDIT_KEY"] = os.path.join(folder, "audit.key")
    url = f"sqlite:///{folder}/p.db"
    async with Client(url) as c:
        await c.governance.create_user("root", ["admin"])
        root = await c.governance.create_token("root")
    async with Client(url, token=root) as c:
        await c.governance.define_role("clerk", ["runs.read"])
        await c.governance.create_user("carl", ["clerk", "viewer"])
        carl = await c.governance.create_token("carl")
        for _ in range(50):
            await c.governance.authenticate(carl)
        n, start = 1000, time.perf_counter()
        for _ in range(n):
            await c.governance.authenticate(carl)
        print(json.dumps({"authenticate_us": round((time.perf_counter() - start) / n * 1e6, 1), "store": "sqlite"}))


if __name__ == "__main__":
    asyncio.run(main())
