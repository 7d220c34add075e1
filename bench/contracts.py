"""What the contract check adds to each connector call: mapping a result and validating it against
its contract (the OpenAPI Contact schema of tests/connectors/drift_app.py), per call, in microseconds.

    python bench/contracts.py            # one JSON line: p50/p95 of check, with and without a mapping,
                                         # for a matching result, and of the diff of a drifted one

No server is involved: this is the check alone (the I/O of a call is measured elsewhere)."""

from __future__ import annotations

import contextlib
import json
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from podium.connectors import ConnectorDrift, open_connector
from tests.connectors.drift_app import SPEC, contact

N = 20_000


def _times(fn, n: int = N) -> dict[str, float]:
    for _ in range(200):
        fn()
    out = []
    for _ in range(n):
        t0 = time.perf_counter_ns()
        fn()
        out.append(time.perf_counter_ns() - t0)
    out.sort()
    return {"p50_us": round(out[len(out) // 2] / 1000, 2), "p95_us": round(out[int(len(out) * 0.95)] / 1000, 2), "mean_us": round(statistics.fmean(out) / 1000, 2)}


def main() -> None:
    plain = open_connector("openapi", spec=SPEC, base_url="http://127.0.0.1:9", allow_private=True)
    mapped = open_connector(
        "openapi", spec=SPEC, base_url="http://127.0.0.1:9", allow_private=True,
        mappings={"getContact": {"rename": {"emailAddress": "email"}, "cast": {"age": "integer"}}},
    )  # fmt: skip
    ok, renamed = contact("1", "ok"), contact("1", "renamed")

    def drifted() -> None:
        with contextlib.suppress(ConnectorDrift):
            plain.contracts.check(plain, "getContact", renamed)

    print(json.dumps({
        "check_ok": _times(lambda: plain.contracts.check(plain, "getContact", ok)),
        "check_ok_with_mapping": _times(lambda: mapped.contracts.check(mapped, "getContact", renamed)),
        "diff_of_a_drift": _times(drifted, 2_000),
        "samples": N,
    }))  # fmt: skip


if __name__ == "__main__":
    main()
