"""The eleventh round's own checks of a run's output against the files: the tenth round's (``csv`` module alone,
none of the scenarios' readers or rules), with a name read as a Greek person means it, the accents of Greek
letters aside (Greek is written in capitals without them):

    python check.py pricing OUT.txt CATALOGUE POS VENDOR_AS_IN_THE_CATALOGUE CHANGE_PCT
    python check.py recommend OUT.txt CATALOGUE INVENTORY ORDERS CUSTOMER
    python check.py fraud OUT.txt TRUTH
    python check.py churn OUT.txt TRUTH
"""
from __future__ import annotations

import importlib.util
import json
import sys
import unicodedata
from pathlib import Path

_spec = importlib.util.spec_from_file_location("tenth_check", Path(__file__).parent.parent / "tenth" / "check.py")
assert _spec and _spec.loader
tenth = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(tenth)


def key(text: str) -> str:
    """NFKC, case and spaces aside (the tenth round's), and every mark on a Greek letter."""
    out = []
    for c in unicodedata.normalize("NFD", unicodedata.normalize("NFKC", text)):
        if unicodedata.combining(c) and out and "GREEK" in unicodedata.name(out[-1], ""):
            continue
        out.append(c)
    return " ".join(unicodedata.normalize("NFC", "".join(out)).casefold().split())


tenth.key = key

if __name__ == "__main__":
    result = {"pricing": tenth.pricing, "recommend": tenth.recommend, "fraud": tenth.fraud,
              "churn": tenth.churn}[sys.argv[1]](*sys.argv[2:])
    print(json.dumps(result, ensure_ascii=False, default=str))
