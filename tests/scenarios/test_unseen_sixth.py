"""Defects found by the sixth unseen-data round (docs/status.md, "Seed scenarios on unseen data, sixth
round"); each test failed on the code before its fix. The round's data and generators:
tests/scenarios/data/sixth/ (a generator is loaded under a module name of its own: other rounds' have
the same file names)."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

from podium import ConfigError

from .conftest import needs_local

SIXTH = Path(__file__).parent / "data" / "sixth"


def generator(name: str):
    """``tests/scenarios/data/sixth/NAME.py`` as the module ``sixth_NAME`` (not ``NAME``: the fourth and
    fifth rounds ship a ``make_csv.py`` too, and ``sys.modules`` would hand one round the other's)."""
    spec = importlib.util.spec_from_file_location(f"sixth_{name}", SIXTH / f"{name}.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_a_row_with_more_cells_than_the_header_is_named_not_read_shifted():
    """Before: a cell holding an unquoted comma (``1,234.50`` in a customers export) split into two cells and
    every later cell of the row moved one column right; extra cells were dropped. The customer was scored
    with charges 1, 234.5 tickets and the plan ``15`` without a word, and in a catalogue the error blamed
    the wrong column (``column unit_cost is 'Zöllner KG'``)."""
    from examples.scenarios import _churn_format, _retail

    with pytest.raises(ConfigError, match=r"churn_unquoted_comma.csv:3: 8 cells.* 7 columns.*quote") as err:
        _churn_format.read(str(SIXTH / "churn_unquoted_comma.csv"), labelled=None)
    assert "1,234.50" in str(err.value) or "'234.50'" in str(err.value)
    with pytest.raises(ConfigError, match=r"catalogue_unquoted_comma.csv:2: 8 cells.* 7 columns"):
        _retail.read_catalogue(str(SIXTH / "catalogue_unquoted_comma.csv"))


def test_a_comma_ending_each_row_is_still_read(tmp_path):
    """An export that ends every row with a comma (the fourth round's) has one more, empty, cell per row:
    that is no shifted row, and it is read as before."""
    from examples.scenarios import _retail

    path = tmp_path / "cat.csv"
    path.write_text("sku,vendor,unit_cost,list_price,min_margin_pct,channels\nA1,Zöllner KG,10,20,15,Allegro,\n"
                    "A2,Zöllner KG,10,20,,,\n", encoding="utf-8")
    assert sorted(_retail.read_catalogue(str(path))) == ["A1", "A2"]


def test_a_file_saved_in_a_windows_code_page_names_the_row_and_column():
    """Before: a CSV or JSON Lines file saved as Windows-1252 (Excel's "CSV", Notepad's "ANSI") was refused
    with Python's "can't decode byte 0xed in position 95", naming neither the row nor the column to look at.
    Now the line, the column (or the JSON field) and the text around the byte are named."""
    from examples.scenarios import _common, _retail

    with pytest.raises(ConfigError, match=r"catalogue_cp1252.csv:2: column 2 \(vendor\) is not UTF-8 .*Z.llner.*"
                                          r"save it as .*UTF-8"):
        _retail.read_catalogue(str(SIXTH / "catalogue_cp1252.csv"))
    with pytest.raises(ConfigError, match=r"feedback_cp1252.jsonl:2: field 'text' is not UTF-8 .*save it as UTF-8"):
        _common.read_jsonl(str(SIXTH / "feedback_cp1252.jsonl"))


def test_sixth_round_generators_load_under_their_own_names_and_write_the_documented_formats(tmp_path):
    """The round's generators, loaded as ``sixth_*``, write files the scenarios read as documented (a small
    set here; ``make_data.py`` writes the measured ones)."""
    from examples.scenarios import _churn_format, _retail, fraud

    data = generator("make_data")
    assert data.__name__ == "sixth_make_data" and generator("write_text").__name__ == "sixth_write_text"
    counts = data.fraud(tmp_path, n_train=400, n_later=200, seed=1)
    train = fraud.read_transactions(str(tmp_path / "fraud6_train_1.csv"), labelled=True)
    assert len(train) == 400 and sum(r["is_fraud"] for r in train) == counts["train_fraud"]
    assert {r["currency"] for r in train} >= {"CHF", "PLN"} and all(len(r["tx_id"]) == 36 for r in train)
    data.churn(tmp_path)
    aside: list = []
    assert len(_churn_format.read(str(tmp_path / "churn6_customers.csv"), labelled=None, aside=aside)) == 3996
    assert len(aside) == 4
    data.retail(tmp_path)
    assert len(_retail.read_catalogue(str(tmp_path / "retail6_catalogue.csv"))) == 2400
    assert len(_retail.read_orders(str(tmp_path / "retail6_orders.csv"))) > 8000
    assert json.loads((SIXTH / "support_tickets_dev.jsonl").read_bytes().decode().split("\r\n")[0])["label"]


def test_a_line_missing_a_field_names_the_field_and_shows_a_whole_example(tmp_path):
    """Before: ``needs the text field(s) topic, for example {"text": "..."}``: the example named only the
    field that was there."""
    from examples.scenarios._common import read_jsonl

    path = tmp_path / "m.jsonl"
    path.write_text('{"text": "late again", "sentiment": "negative", "topic": "delivery"}\n'
                    '{"text": "the app crashes", "sentiment": "negative"}\n', encoding="utf-8")
    with pytest.raises(ConfigError, match=r'm.jsonl:2: field\(s\) topic missing or not text; each line needs '
                                          r'text, sentiment, topic, for example \{"text": "...", "sentiment": "...", '
                                          r'"topic": "..."\}'):
        read_jsonl(str(path), required=("text", "sentiment", "topic"))


@needs_local
async def test_feedback_measures_a_labelled_file_whose_blank_message_has_no_topic():
    """Before: ``python examples/scenarios/feedback.py FILE`` refused the sixth round's held-out messages
    because the blank comment's ``topic`` is null (a blank message has none: a run gives it none) and
    stopped with a traceback; a message that says something still needs its topic."""
    from examples.scenarios import feedback

    out = await feedback.evaluate(str(SIXTH / "feedback_messages_heldout.jsonl"))
    assert out["messages"] == 16 and out["topic_accuracy"] is not None


def test_feedback_measurement_of_a_bad_file_is_one_line_not_a_traceback(tmp_path):
    """Before: a mistake in the file given to ``python examples/scenarios/feedback.py FILE`` printed a Python
    traceback; now the error's one line and exit status 2, as the ``podium`` commands do."""
    import subprocess
    import sys

    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"text": "the app crashes", "sentiment": "negative"}\n', encoding="utf-8")
    root = Path(__file__).parents[2]
    done = subprocess.run([sys.executable, str(root / "examples/scenarios/feedback.py"), str(bad)], capture_output=True,
                          text=True, cwd=root, timeout=120)
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr and "bad.jsonl:1: field(s) topic missing" in done.stderr


def test_pricing_lists_vendors_whose_names_hold_commas_each_in_quotes():
    """Before: a run for a vendor not in the catalogue listed the catalogue's vendors joined by commas, so
    ``Ferretería del Norte, S.A. de C.V., GreenThumb (UK) Ltd`` read as four vendors."""
    import asyncio

    from examples.scenarios import pricing

    analyse = {"event": {"vendor": "ferreteria del norte", "change_pct": 5.0, "effective": "2027-04-01"},
               "vendor_found": False, "vendor_name": "ferreteria del norte",
               "vendors": ["Ferretería del Norte, S.A. de C.V.", "GreenThumb (UK) Ltd"], "skus": [],
               "below_margin_skus": [], "flagged": [], "no_channel_skus": [], "no_min_margin_skus": [],
               "not_flagged_below_margin": [], "orders_of_unknown_skus": []}
    out = asyncio.run(pricing.outcome(analyse=analyse, approve={"approved": False, "by": "nothing to change"},
                                      catalogue={"channels": {}}, flag=None, alert=None))
    assert out["message"].endswith('(its vendors are: "Ferretería del Norte, S.A. de C.V.", "GreenThumb (UK) Ltd")')


def test_answer_withholds_a_draft_that_lists_a_heading_under_another_sources_number():
    """Before: the sixth round's "Who pays if I scratch the car during a lesson?" was answered with
    ``1. [1] # Cancelling or moving a lesson`` / ``2. [2] # Cancelling or moving a lesson`` and one invented
    sentence ("...a legal requirement to pay for damages"), while [1], the insurance page, says a student
    never pays: not only headings, so it was sent. A heading under the number of a source that does not
    hold it marks a draft that mixes its sources up; it is withheld."""
    from examples.scenarios.answer import misattributed

    passages = ["INSURANCE AND DAMAGE\n\nOur cars are fully insured. A student never pays for damage.",
                "# Cancelling or moving a lesson\n\nCancel or move a lesson at least 24 hours ahead."]
    draft = ("1. [1] # Cancelling or moving a lesson\n2. [2] # Cancelling or moving a lesson\n\nCancellation of "
             "a lesson is not a crime, but it is a legal requirement to pay for damages caused by a lesson.")
    assert misattributed(draft, passages) == ["[1]"]
    assert misattributed("[2] # Cancelling or moving a lesson\nCancel 24 hours ahead and it costs nothing [2].",
                         passages) == []
    assert misattributed("Our cars are fully insured [1]. # Cancelling [3]", passages) == []


def test_answer_handbook_markdown_front_matter_is_not_ingested_as_text(tmp_path):
    """Before: the sixth round's ``lessons.Md`` (a static-site page) was ingested with its YAML front
    matter as the first lines of its passage (``title: Driving lessons author: office updated: ...``):
    metadata a reply could quote. The block is dropped, its ``title`` used when the page has no heading;
    a ``---`` rule around ordinary text stays."""
    from podium.knowledge._loaders import load

    doc = load(SIXTH / "answer_docs" / "lessons.Md")
    assert doc.title == "Driving lessons"
    assert doc.sections[0][0].startswith("# Driving lessons") and "author:" not in doc.sections[0][0]
    bare = tmp_path / "bare.md"
    bare.write_text('---\ntitle: "Prices"\ntags:\n  - money\n---\nA lesson costs 150 PLN.\n', encoding="utf-8")
    assert (load(bare).title, load(bare).sections[0][0]) == ("Prices", "A lesson costs 150 PLN.\n")
    rule = tmp_path / "rule.md"
    rule.write_text("---\nRefunds take five days.\n---\nAsk at the desk.\n", encoding="utf-8")
    assert load(rule).sections[0][0].startswith("---\nRefunds take five days.")


def test_a_file_separated_by_semicolons_or_tabs_says_so(tmp_path):
    """Before: a catalogue saved by a European Excel (``;`` between cells) or a tab-separated export was
    refused as missing every column, listing them all; now the error says what separates its cells."""
    from examples.scenarios import _retail, fraud

    for sep, name in ((";", "';'"), ("\t", "tabs")):
        path = tmp_path / "cat.csv"
        path.write_text(sep.join(["sku", "vendor", "unit_cost", "list_price", "min_margin_pct", "channels"])
                        + "\n" + sep.join(["A1", "Zöllner KG", "10,5", "20", "15", "Allegro"]) + "\n", encoding="utf-8")
        with pytest.raises(ConfigError, match=rf"cat.csv:1: the cells are separated by {name}, not commas"):
            _retail.read_catalogue(str(path))
        with pytest.raises(ConfigError, match=rf"cat.csv:1: the cells are separated by {name}, not commas"):
            fraud.read_transactions(str(path), labelled=False)


def test_a_json_lines_file_written_as_one_json_array_says_so(tmp_path):
    """Before: ``[{"text": "a"}, {"text": "b"}]`` (a JSON export, not JSON Lines) was refused with "field(s)
    text missing or not text", which the file seems to have."""
    from examples.scenarios._common import read_jsonl

    path = tmp_path / "m.jsonl"
    path.write_text('[{"text": "late again"}, {"text": "great food"}]\n', encoding="utf-8")
    with pytest.raises(ConfigError, match=r"m.jsonl:1: a JSON array, not an object; JSON Lines is one object per line"):
        read_jsonl(str(path))


def test_ordinal_dates_of_iso_8601_are_read_where_an_iso_date_is(tmp_path):
    """Before: ``2026-063`` (ISO 8601's ordinal date, the 63rd day; ``2026063`` in basic format) was refused
    in an order time with "it must be an ISO 8601 date or time", and as pricing's ``effective`` and
    recommend's ``today``, though week dates (``2026-W10-3``) were read. Day 366 of a common year is an
    error naming the line."""
    from datetime import UTC, datetime

    from examples.scenarios import pricing, recommend
    from examples.scenarios._retail import read_orders

    path = tmp_path / "orders.csv"
    path.write_text("customer_id,sku,ts\nC1,A,2026-063\nC1,B,2026063T10:15:00Z\nC2,A,2026-03-04T09:00\n", encoding="utf-8")
    stamps = {(o["customer_id"], o["sku"]): o["ts"] for o in read_orders(str(path))}
    assert stamps[("C1", "A")] == datetime(2026, 3, 4, tzinfo=UTC).timestamp()
    assert stamps[("C1", "B")] == datetime(2026, 3, 4, 10, 15, tzinfo=UTC).timestamp()
    assert pricing.event({"vendor": "acme", "change_pct": 5, "effective": "2027-032"})["effective"] == "2027-02-01"
    assert recommend.options({"today": "2024366"})["today"].isoformat() == "2024-12-31"
    path.write_text("customer_id,sku,ts\nC1,A,2026-366\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"orders.csv:2: column ts is '2026-366'"):
        read_orders(str(path))
