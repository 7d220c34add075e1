"""The support scenario's plain replies (sent when the model's draft fails the checks): a ticket the
classifier is unsure of gets a question, not the guessed intent's template, and a template cites
only a product the ticket names, with what its intent needs of it."""

from __future__ import annotations

import asyncio

from .conftest import needs_local

TRACKER = (
    "Pulse Fitness Tracker (FT-2): Fitness tracker that syncs with the Northwind app on iOS 16+ and Android 12+; "
    "firmware 2.4 fixes Android 14 sync. Price 69.00 EUR, in stock."
)
BOOTS = (
    "Ridge Boots (RB-39): Leather hiking boots, sizes 36-47, currently out of stock, restock expected in 2 weeks. "
    "Price 149.00 EUR, out of stock."
)
STOVE = "Camp Stove Duo (CS-4): Two-burner gas stove; gas cartridges are not shipped by air. Price 89.00 EUR, in stock."
JACKET = (
    "Summit Jacket (SJ-01): Insulated waterproof jacket, sizes XS-XXL, free returns within 30 days, volume discount "
    "from 20 pieces. Price 189.00 EUR, in stock."
)


def test_a_technical_reply_cites_the_named_product_without_its_price() -> None:
    from examples.scenarios.support import template_fact

    said = template_fact("technical", [TRACKER, BOOTS], "My Pulse tracker stopped syncing with the app on my Android 14 phone")
    assert said.startswith("About the Pulse Fitness Tracker:") and "firmware 2.4 fixes Android 14 sync" in said
    assert "EUR" not in said and "stock" not in said  # a sync problem's reply quoted the price and stock before


def test_a_product_the_ticket_does_not_name_is_not_cited() -> None:
    from examples.scenarios.support import template_fact

    assert template_fact("technical", [TRACKER], "I need help with the thing I bought") == ""
    assert template_fact("sales", [JACKET, BOOTS], "What do you sell for winter hikes?") == ""
    assert template_fact("billing", [TRACKER], "The Pulse tracker was charged twice") == ""  # billing cites no product


def test_a_sales_reply_gives_price_and_stock_once_and_a_shipping_reply_what_bears_on_delivery() -> None:
    from examples.scenarios.support import template_fact

    sales = template_fact("sales", [JACKET, BOOTS], "Do you have the RIDGE BOOTS in size 44?")
    assert sales.startswith("About the Ridge Boots:") and "price 149.00 EUR" in sales
    assert sales.count("out of stock") == 1
    assert "in stock" in template_fact("sales", [JACKET], "price for 25 summit jackets?")
    assert template_fact("shipping", [STOVE], "the camp stove came without gas cartridges") == (
        "About the Camp Stove Duo: gas cartridges are not shipped by air. "
    )
    assert template_fact("shipping", [BOOTS], "when will the RB-39 ship?") == (
        "About the Ridge Boots: currently out of stock, restock expected in 2 weeks. "
    )
    assert template_fact("shipping", [JACKET], "my summit jacket has not arrived") == ""  # nothing of it bears on that
    assert template_fact("technical", ["a note someone remembered by hand"], "the pulse tracker") == ""


@needs_local
def test_an_unsure_ticket_gets_a_question_not_the_guessed_intents_template() -> None:
    """The demo's vague ticket ("I need help with the thing I bought") read as account at 0.33 and was
    proposed (and, approved, sent) the account template's security link."""
    from examples.scenarios import support

    context = {"customer": {"name": "Ann Lee", "email": "ann.lee@example.com"}, "facts": [TRACKER], "history": []}
    draft = {"text": "I'm sorry, but as an AI I am unable to assist."}
    unsure = asyncio.run(
        support.check(None, {"message": "I need help with the thing I bought"}, {"label": "account", "confidence": 0.33}, context, draft)
    )
    assert unsure["source"] == "template" and "which product or order" in unsure["reply"]
    assert "link" not in unsure["reply"]
    sure = asyncio.run(
        support.check(
            None, {"message": "my Pulse tracker won't sync"}, {"label": "technical", "confidence": 0.8}, context, draft
        )
    )
    assert "technical team" in sure["reply"] and "About the Pulse Fitness Tracker" in sure["reply"]

