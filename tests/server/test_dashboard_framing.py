"""Clickjacking (sixth review): no page of another site may show this server's pages in a frame.
Framed, the dashboard acts for whoever looks at it: in local mode it needs no token, and its
requests are its own (same-origin), so the cross-site refusal (``refuse_other_sites``) lets them
through; a decoy page laid over it could have the developer's click approve a request or switch a
kill switch back on. Every answer now forbids frames (``X-Frame-Options: DENY``,
``frame-ancestors 'none'``). The headers were missing before; this machine's Chromium denies a
third-party frame its storage, so the framed dashboard did not start there even before (a browser
that gives frames partitioned storage, as Firefox does, runs it)."""

from __future__ import annotations

from pathlib import Path

import httpx

from .served import serve


def test_no_other_site_may_frame_the_server(tmp_path: Path) -> None:
    proc, url = serve(f"sqlite:///{tmp_path}/podium.db", "-w", "tests.server.flows:hello")
    try:
        for path in ("/", "/static/app.js", "/api/runs", "/api/switches", "/healthz", "/docs"):
            r = httpx.get(url + path)
            assert r.headers.get("x-frame-options") == "DENY", (path, dict(r.headers))
            assert "frame-ancestors 'none'" in r.headers.get("content-security-policy", ""), path
            assert r.headers.get("x-content-type-options") == "nosniff", path
        assert httpx.get(f"{url}/api/runs").headers["cache-control"] == "no-store"
        assert httpx.get(url).headers["cache-control"] == "no-cache"  # the dashboard's own policy stays
    finally:
        proc.terminate()
        proc.wait(10)
