"""The pricing scenario end to end against the sandbox company (ERP over OpenAPI, SMTP finance mailbox):
on the shipped samples, on random catalogues it never saw (checked against an independent
computation), on the edge cases, through a real approval, and with the embedded model writing."""

from __future__ import annotations

import asyncio
import csv
import random
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("uvicorn", reason="the sandbox needs uvicorn: pip install -e '.[demo]'")
pytest.importorskip("aiosmtpd", reason="the sandbox mailbox needs aiosmtpd: pip install -e '.[demo]'")

from podium import Client, RunFailed, RunStatus
from podium.sandbox import Sandbox

from .conftest import needs_local

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT / "examples" / "scenarios" / "data"


@pytest.fixture
def company(tmp_path, monkeypatch):
    monkeypatch.setenv("PODIUM_HOME", str(tmp_path))
    with Sandbox(tmp_path / "company") as sandbox:
        yield sandbox


def write_csv(path: Path, header: list[str], rows: list[list[Any]]) -> str:
    with open(path, "w", newline="", encoding="utf-8") as f:
        out = csv.writer(f)
        out.writerow(header)
        out.writerows(rows)
    return str(path)


def expected(catalogue: str, orders: str, vendor: str, pct: float) -> tuple[set[str], set[str]]:
    """The below-margin SKUs and the POs to flag, computed here from the files, independently."""
    below = set()
    with open(catalogue, encoding="utf-8") as f:
        for r in csv.DictReader(f):
            if r["vendor"] == vendor:
                cost = float(r["unit_cost"]) * (1 + pct / 100)
                price = float(r["list_price"])
                if (price - cost) / price * 100 < float(r["min_margin_pct"]):
                    below.add(r["sku"])
    with open(orders, encoding="utf-8") as f:
        flagged = {r["po_id"] for r in csv.DictReader(f) if r["status"] == "open" and r["sku"] in below}
    return below, flagged


async def run(company: Sandbox, tmp_path: Path, input: dict[str, Any]) -> dict[str, Any]:
    from examples.scenarios import pricing

    async with Client(f"sqlite:///{tmp_path}/p.db", connectors=company.connectors()) as c:
        return await c.run(pricing.workflow, {"writer": "template", **input})


async def erp_state(company: Sandbox) -> tuple[dict[str, Any], dict[str, str | None], dict[str, Any]]:
    """What the ERP holds after a run: products, purchase-order flags, and each channel's listing."""
    erp, db = company.connector("erp"), company.connector("company_db")
    try:
        products = {p["sku"]: p for p in await erp.call("listProducts", {})}
        flags = {po["po_id"]: po["flag"] for po in await erp.call("listPurchaseOrders", {})}
        channels = {ch: {i["sku"]: i for i in await erp.call("listListings", {"channel": ch})}
                    for ch in ("web", "marketplace", "retail", "b2b", "kiosk")}
    finally:
        await erp.close()
        await db.close()
    return products, flags, channels


async def test_the_sample_event_updates_every_channel_flags_open_orders_and_mails_finance(company, tmp_path):
    out = await run(company, tmp_path, {"vendor": "acme", "change_pct": 8, "effective": "2027-01-01"})
    below, flagged = expected(str(DATA / "retail_catalogue.csv"), str(DATA / "retail_purchase_orders.csv"), "acme", 8)
    assert set(out["below_margin_skus"]) == below and set(out["flagged_pos"]) == flagged and flagged
    assert out["applied"] and out["approval"]["by"] == "policy"
    # every one of the vendor's products is in the ERP at the new cost, and on each of its channels
    products, flags, channels = await erp_state(company)
    for s in out["skus"]:
        assert products[s["sku"]]["unit_cost"] == pytest.approx(s["unit_cost"] * 1.08, abs=1e-3)
        for ch in s["channels"]:
            assert channels[ch][s["sku"]]["unit_cost"] == pytest.approx(s["unit_cost"] * 1.08, abs=1e-3)
            assert channels[ch][s["sku"]]["effective"] == "2027-01-01"
    assert {po for po, f in flags.items() if f} == flagged
    # the PO of the sandbox's seed that stays above margin is untouched; TP-30 (acme) is above margin
    assert flags["PO-501"] is None and products["TP-30"]["list_price"] == 79.0
    [mail] = company.mails()
    assert mail["recipients"] == "finance@northwind.example"
    assert all(po in mail["body"] for po in flagged) and all(sku in mail["body"] for sku in below)
    assert f"{len(below)} product(s) below margin, {len(flagged)} PO(s) flagged" in mail["subject"]


def random_files(rnd: random.Random, folder: Path, n: int) -> tuple[str, str, list[str]]:
    vendors = [f"vendor-{i}" for i in range(4)]
    channels = ["web", "marketplace", "retail", "b2b", "kiosk"]
    cat = []
    for i in range(n):
        price = round(rnd.uniform(1, 500), 2)
        cost = round(price * rnd.uniform(0.2, 1.1), 2)  # some already under water
        cat.append([f"S{i:04d}", rnd.choice(vendors), cost, price, rnd.choice([0, 10, 25, 33.3, 40, 55]),
                    ";".join(rnd.sample(channels, rnd.randint(0, 3)))])
    pos = [[f"P{i:05d}", rnd.choice(cat)[0] if rnd.random() < 0.95 else "UNKNOWN", rnd.randint(1, 500),
            round(rnd.uniform(1, 300), 2), rnd.choice(["open", "open", "received", "cancelled", "draft", "closed"])]
           for i in range(n * 2)]
    return (write_csv(folder / "cat.csv", ["sku", "vendor", "unit_cost", "list_price", "min_margin_pct", "channels"], cat),
            write_csv(folder / "po.csv", ["po_id", "sku", "qty", "unit_cost", "status"], pos), vendors)


@pytest.mark.parametrize("seed", [11, 12, 13])
async def test_random_catalogues_it_never_saw_are_flagged_exactly(company, tmp_path, seed, monkeypatch):
    monkeypatch.setenv("PODIUM_PRICING_APPROVE_ABOVE_PCT", "off")  # the operator's setting: no approval asked
    rnd = random.Random(seed)
    catalogue, orders, vendors = random_files(rnd, tmp_path, 150)
    vendor, pct = rnd.choice(vendors), round(rnd.uniform(-30, 45), 2)
    out = await run(company, tmp_path, {"vendor": vendor, "change_pct": pct, "effective": "2027-03-01",
                                        "catalogue": catalogue, "purchase_orders": orders})
    below, flagged = expected(catalogue, orders, vendor, pct)
    assert set(out["below_margin_skus"]) == below
    assert sorted(out["flagged_pos"]) == sorted(flagged)
    _, flags, channels = await erp_state(company)
    assert {po for po, f in flags.items() if f} == flagged
    with open(catalogue, encoding="utf-8") as f:
        mine = [r for r in csv.DictReader(f) if r["vendor"] == vendor]
    for r in mine:  # each channel lists exactly the vendor's products sold on it, at the new cost
        for ch in filter(None, r["channels"].split(";")):
            assert channels[ch][r["sku"]]["unit_cost"] == pytest.approx(float(r["unit_cost"]) * (1 + pct / 100), abs=1e-3)
    assert sum(len(v) for v in channels.values()) == sum(len(list(filter(None, r["channels"].split(";")))) for r in mine)
    assert set(out["no_channel_skus"]) == {r["sku"] for r in mine if not r["channels"]}
    assert len(company.mails()) == 1


async def test_an_unknown_vendor_changes_nothing_and_says_so(company, tmp_path):
    out = await run(company, tmp_path, {"vendor": "nobody-gmbh", "change_pct": 12, "effective": "2027-01-01"})
    assert out["vendor_found"] is False and out["applied"] is False
    assert out["below_margin_skus"] == [] and out["flagged_pos"] == []
    assert "'nobody-gmbh' is not in the catalogue" in out["message"] and "acme" in out["message"]
    assert company.received() == [] and company.mails() == []


async def test_a_price_cut_raises_margins_and_still_reports_products_already_under(company, tmp_path):
    catalogue = write_csv(tmp_path / "c.csv", ["sku", "vendor", "unit_cost", "list_price", "min_margin_pct", "channels"], [
        ["A", "v", 90, 100, 20, "web"],       # 10% -> 14.5% after -5%: still under 20
        ["B", "v", 82, 100, 20, "web;shop"],  # 18% -> 22.1%: back above
        ["C", "w", 99, 100, 20, "web"],       # another vendor: not touched
        ["D", "v", 10, 100, 20, ""],          # no channel: master data only
    ])
    orders = write_csv(tmp_path / "o.csv", ["po_id", "sku", "qty", "unit_cost", "status"], [
        ["P1", "A", 5, 90, "open"], ["P2", "A", 5, 90, "received"], ["P3", "B", 5, 82, "open"],
        ["P4", "C", 5, 99, "open"], ["P5", "A", 5, 90, "OPEN"],
    ])
    out = await run(company, tmp_path, {"vendor": "v", "change_pct": -5, "effective": "2027-01-01",
                                        "catalogue": catalogue, "purchase_orders": orders})
    assert out["below_margin_skus"] == ["A"] and out["flagged_pos"] == ["P1", "P5"]
    assert out["below_margin_not_open_pos"] == ["P2"] and out["no_channel_skus"] == ["D"]
    assert out["channels_updated"] == {"shop": 1, "web": 2}
    by_sku = {s["sku"]: s for s in out["skus"]}
    assert by_sku["B"]["new_margin_pct"] == pytest.approx(22.1) and by_sku["B"]["below_margin"] is False
    assert by_sku["A"]["price_for_min_margin"] == pytest.approx(106.88)  # 85.5 / 0.8, rounded up to the cent


@pytest.mark.parametrize("rows, error", [
    ([["A", "v", 1, 2, 10, "web"], ["B", "v", 1, 2, 10, "web"], ["A", "v", 1, 3, 10, "web"]],
     r"c.csv:4: duplicate sku 'A' \(first on line 2\)"),
    ([["A", "v", "cheap", 2, 10, "web"]], r"c.csv:2: column unit_cost is 'cheap'; it must be a number >= 0"),
    ([["A", "v", 1, 0, 10, "web"]], r"c.csv:2: column list_price is '0'; it must be a number > 0"),
    ([["", "v", 1, 2, 10, "web"]], r"c.csv:2: column sku is empty"),
])
async def test_a_bad_catalogue_is_refused_with_its_line_and_column(company, tmp_path, rows, error):
    catalogue = write_csv(tmp_path / "c.csv", ["sku", "vendor", "unit_cost", "list_price", "min_margin_pct", "channels"], rows)
    with pytest.raises(RunFailed, match=error):
        await run(company, tmp_path, {"vendor": "v", "change_pct": 5, "catalogue": catalogue})
    assert company.received() == []


async def test_bad_inputs_say_what_to_give(company, tmp_path):
    bad = write_csv(tmp_path / "c.csv", ["sku", "vendor", "unit_cost", "list_price"], [["A", "v", 1, 2]])
    with pytest.raises(RunFailed, match=r"c.csv:1: missing column\(s\) min_margin_pct, channels"):
        await run(company, tmp_path, {"vendor": "v", "change_pct": 5, "catalogue": bad})
    po = write_csv(tmp_path / "po.csv", ["po_id", "sku", "qty", "unit_cost", "status"], [["P1", "A", 1, 1, "open"], ["P1", "A", 1, 1, "open"]])
    with pytest.raises(RunFailed, match=r"po.csv:3: duplicate po_id 'P1' \(first on line 2\)"):
        await run(company, tmp_path, {"vendor": "acme", "change_pct": 5, "purchase_orders": po})
    with pytest.raises(RunFailed, match='"change_pct" is -120'):
        await run(company, tmp_path, {"vendor": "acme", "change_pct": -120})
    with pytest.raises(RunFailed, match='"approval_timeout" is \x27soon\x27'):
        await run(company, tmp_path, {"vendor": "acme", "change_pct": 5, "approval_timeout": "soon"})
    with pytest.raises(RunFailed, match='"effective" is \'next week\''):
        await run(company, tmp_path, {"vendor": "acme", "change_pct": 5, "effective": "next week"})
    with pytest.raises(RunFailed, match="input field 'catalogue': .*nope.csv does not exist"):
        await run(company, tmp_path, {"vendor": "acme", "change_pct": 5, "catalogue": str(tmp_path / "nope.csv")})


async def _parked(c: Client, run_id: str) -> dict[str, Any]:
    for _ in range(6000):  # poll with a deadline for the condition, not for a time
        if (await c.get(run_id)).status is RunStatus.WAITING and (found := await c.approvals(run_id=run_id)):
            return found[0]
        await asyncio.sleep(0.05)
    raise AssertionError("the run never asked for approval")


@pytest.mark.parametrize("approve", [False, True])
async def test_a_large_change_waits_for_a_pricing_manager(company, tmp_path, approve):
    from examples.scenarios import pricing

    async with Client(f"sqlite:///{tmp_path}/p.db", connectors=company.connectors()) as c:
        handle = await c.start(pricing.workflow, {"vendor": "kitewire", "change_pct": 25, "writer": "template"})
        req = await _parked(c, handle.id)
        assert req["role"] == "pricing-manager" and "+25%" in req["title"]
        assert company.received() == []  # nothing is written before the decision
        await c.decide(handle.id, req["name"], approve=approve, comment="checked with the vendor")
        out = await c.result(handle.id, timeout=120)
    assert out["approval"]["needed"] and out["applied"] is approve and out["flagged_pos"]
    if approve:
        assert {r["operation"] for r in company.received("erp")} == {"updateProducts", "publishListings", "flagPurchaseOrders"}
        assert len(company.mails()) == 1
    else:
        assert company.received() == [] and company.mails() == [] and "not approved" in out["message"]


@needs_local
@pytest.mark.timeout(900)
async def test_the_embedded_model_writes_only_the_opening_and_never_a_wrong_number(company, tmp_path):
    from examples.scenarios import pricing

    async with Client(f"sqlite:///{tmp_path}/p.db", connectors=company.connectors()) as c:
        out = await c.run(pricing.workflow, {"vendor": "acme", "change_pct": 8, "effective": "2027-01-01"})
    alert = out["finance_alert"]
    assert alert["sent"] and alert["opening_by"] in ("model", "template")
    [mail] = company.mails()
    opening = mail["body"].replace("\r\n", "\n").split("\n\n", 1)[0]
    assert opening and "Catalogue:" not in opening, mail["body"]
    facts = f"acme 8 2027-01-01 12 {len(out['below_margin_skus'])} {len(out['flagged_pos'])}"
    assert pricing._numbers(opening) <= pricing._numbers(facts)  # whoever wrote it, no made-up figure
    assert len(out["flagged_pos"]) == 3  # the arithmetic decided, not the model


@needs_local
@pytest.mark.timeout(900)
def test_podium_demo_pricing_runs_unattended(tmp_path, monkeypatch):
    """The demo's two events: the routine one is applied at once, the large one after the approval
    the demo gives; the ERP and the finance mailbox received both."""
    from click.testing import CliRunner

    from podium.cli import cli

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("PODIUM_HOME", str(tmp_path))
    result = CliRunner().invoke(cli, ["demo", "pricing", "--decide", "approve", "--db", f"sqlite:///{tmp_path}/demo.db"])
    out = result.output
    assert result.exit_code == 0, out
    assert out.count("completed") == 2 and "approval requested" in out and "+25%" in out
    assert out.count("flagPurchaseOrders") >= 2 and out.count("publishListings") >= 6
    assert "finance mailbox: to finance@northwind.example" in out and "the sandbox is stopped" in out


async def test_an_unanswered_large_change_is_not_applied(company, tmp_path):
    from examples.scenarios import pricing

    async with Client(f"sqlite:///{tmp_path}/p.db", connectors=company.connectors(), poll_interval=0.05) as c:
        handle = await c.start(pricing.workflow, {"vendor": "kitewire", "change_pct": -40, "approval_timeout": 1,
                                                  "writer": "template"})
        out = await c.result(handle.id, timeout=120)
    assert out["approval"]["needed"] and out["approval"]["by"].startswith("sla") and out["applied"] is False
    assert company.received() == [] and company.mails() == []


async def test_attack_the_run_input_cannot_switch_off_the_approval(company, tmp_path):
    """The attack: whoever starts the run (or publishes the price.changed event that starts it)
    passes approve_above_pct null or 100, and a +25% change is applied with nobody asked. The input
    may only ask for approval more often; the limit itself is the operator's."""
    for loosened in (None, 30, 100):
        with pytest.raises(RunFailed, match="approve_above_pct.*only lower"):
            await run(company, tmp_path, {"vendor": "kitewire", "change_pct": 25, "approve_above_pct": loosened})
    assert company.received() == []
    from examples.scenarios import pricing

    async with Client(f"sqlite:///{tmp_path}/p.db", connectors=company.connectors()) as c:  # stricter is fine
        handle = await c.start(pricing.workflow, {"vendor": "acme", "change_pct": 8, "approve_above_pct": 5, "writer": "template"})
        req = await _parked(c, handle.id)
        assert "+8%" in req["title"] and company.received() == []
        await c.cancel(handle.id)


async def test_the_operator_sets_the_approval_limit(company, tmp_path, monkeypatch):
    monkeypatch.setenv("PODIUM_PRICING_APPROVE_ABOVE_PCT", "30")
    out = await run(company, tmp_path, {"vendor": "kitewire", "change_pct": 25})
    assert out["applied"] and out["approval"]["by"] == "policy"
    monkeypatch.setenv("PODIUM_PRICING_APPROVE_ABOVE_PCT", "lots")
    with pytest.raises(RunFailed, match="PODIUM_PRICING_APPROVE_ABOVE_PCT is 'lots'"):
        await run(company, tmp_path, {"vendor": "kitewire", "change_pct": 25})


async def test_attack_the_finance_mail_goes_nowhere_else(company, tmp_path):
    """The attack: the run's input (or an event's payload) sends the margins and purchase orders to
    an outside address, adds a recipient or a header, or puts a line break in the subject through
    the vendor's name. Refused before any system is touched."""
    for to in ("spy@evil.example", "finance@northwind.example, spy@evil.example",
               "finance@northwind.example\r\nBcc: spy@evil.example", "spy@evil.example?@northwind.example"):
        with pytest.raises(RunFailed, match='"finance_to"'):
            await run(company, tmp_path, {"vendor": "acme", "change_pct": 8, "finance_to": to})
    with pytest.raises(RunFailed, match='"vendor"'):
        await run(company, tmp_path, {"vendor": "acme\r\nBcc: spy@evil.example", "change_pct": 8})
    assert company.received() == []
    out = await run(company, tmp_path, {"vendor": "acme", "change_pct": 8, "finance_to": "Treasury@Northwind.example"})
    assert company.mails()[0]["recipients"] == "Treasury@Northwind.example" and out["applied"]


async def test_attack_a_device_or_a_huge_file_as_the_catalogue_is_refused(company, tmp_path):
    """The attack: ``"catalogue": "/dev/zero"`` read without end (memory, the worker), or a file of
    gigabytes. Refused at once, naming the field's file."""
    huge = tmp_path / "huge.csv"
    with open(huge, "wb") as f:
        f.truncate(2 * 1024**3)  # sparse: costs no disk
    for path, why in (("/dev/zero", "not a regular file"), (str(huge), "larger than")):
        with pytest.raises(RunFailed, match=why):
            await asyncio.wait_for(run(company, tmp_path, {"vendor": "acme", "change_pct": 8, "catalogue": path}), 60)
    assert company.received() == []


def test_a_change_too_large_to_compute_is_a_clear_error():
    """``change_pct`` 1e306 made the new cost infinite and the analysis fail with an OverflowError."""
    from examples.scenarios import pricing
    from podium import ConfigError

    with pytest.raises(ConfigError, match='"change_pct" is 1e\\+306.*at most 10000'):
        pricing.event({"vendor": "acme", "change_pct": 1e306})
    assert pricing.event({"vendor": "acme", "change_pct": 10_000})["change_pct"] == 10_000
