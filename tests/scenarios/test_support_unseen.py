"""The support scenario on tickets it never saw (60 written for this test, in other words than the
training and held-out sets), and a model draft that passes tone and PII but answers something else."""

from __future__ import annotations

import asyncio
import json

from .conftest import needs_local

TICKETS = [
    ('hey so you guys billed me twice for the same headlamp?? pls fix', 'billing'),
    ('The VAT on my receipt looks wrong, it should be 19% not 21%', 'billing'),
    ('Can I get a copy of the invoice for order 88213 with my company name on it', 'billing'),
    ('my card got charged 149 EUR but the order total was 129', 'billing'),
    ('Why is there a subscription fee on my bank statement, I never signed up for one', 'billing'),
    ('I returned the boots three weeks ago and still no money back', 'billing'),
    ('Payment declined at checkout even though my card works everywhere else', 'billing'),
    ('Please change the billing address on my last invoice to our new office', 'billing'),
    ('Is it possible to pay in instalments for the 4-season tent?', 'billing'),
    ("The discount code SPRING10 wasn't applied and I paid full price", 'billing'),
    ('the GPS watch freezes on the loading screen after the latest update', 'technical'),
    ('Bluetooth pairing fails every time, the app just spins forever', 'technical'),
    ("My solar charger doesn't output any power even in full sun", 'technical'),
    ('Heart rate readings are way off during runs, like 190 while walking', 'technical'),
    ('The app crashes as soon as I open the map on my iPhone 15', 'technical'),
    ('Battery of the headlamp drains overnight even when switched off', 'technical'),
    ("firmware update stuck at 73% and now the device won't turn on", 'technical'),
    ("The stove igniter clicks but there's no spark", 'technical'),
    ("Tracker shows steps from yesterday, data isn't syncing to the cloud", 'technical'),
    ('Water filter pump makes a grinding noise and flow is very slow', 'technical'),
    ("I can't log in, the reset password email never arrives", 'account'),
    ('Please delete my account and all the data you hold about me', 'account'),
    ('How do I change the email address on my profile?', 'account'),
    ('Someone else seems to have logged into my account from another country', 'account'),
    ('I want to merge my two accounts, I accidentally created a second one', 'account'),
    ("Two-factor code isn't accepted when I try to sign in", 'account'),
    ('How can I unsubscribe from the newsletter but keep my account', 'account'),
    ('my username shows the wrong name, can you update it to Maria Lopez', 'account'),
    ("I'm locked out after too many login attempts", 'account'),
    ('Where can I download all my personal data (GDPR request)?', 'account'),
    ('Do you offer group discounts for a scout troop buying 20 sleeping bags?', 'sales'),
    ('Is the ultralight tent going to be back in the 2-person version?', 'sales'),
    ("What's the difference between the Trail 40 and the Trail 55 backpack?", 'sales'),
    ('Can I get a quote for 50 branded water bottles for our company event?', 'sales'),
    ('Do you have these hiking boots in size 47 wide?', 'sales'),
    ('Are you planning a Black Friday sale this year?', 'sales'),
    ('Which sleeping bag would you recommend for -10 degrees?', 'sales'),
    ('Do you ship wholesale to retailers in Austria?', 'sales'),
    ("I'd like to buy a gift card, what amounts are available", 'sales'),
    ('Is there a student discount on the GPS watches?', 'sales'),
    ("The tracking number you sent me doesn't work on the DHL site", 'shipping'),
    ('my package says delivered but nothing was at my door', 'shipping'),
    ('Can you ship to a Packstation instead of my home address?', 'shipping'),
    ('How long does delivery to Norway usually take?', 'shipping'),
    ('Parcel has been stuck in customs for 10 days', 'shipping'),
    ('I need the order before Friday, can I upgrade to express shipping?', 'shipping'),
    ('Box arrived crushed and the lantern glass is broken', 'shipping'),
    ('You sent me the blue jacket but I ordered the green one', 'shipping'),
    ('Order placed two weeks ago still says processing, has it even left the warehouse', 'shipping'),
    ("Can I change the delivery address for an order that's already shipped?", 'shipping'),
    ('Just wanted to say your staff at the Lyon store were lovely', 'other'),
    ('Do you have any job openings in your warehouse?', 'other'),
    ('Are your down jackets ethically sourced?', 'other'),
    ("I'm writing a blog about hiking gear, could I interview someone from your team?", 'other'),
    ('What are your opening hours on public holidays?', 'other'),
    ('Can I recycle old tents with you?', 'other'),
    ('Is your company sponsoring any trail races this summer?', 'other'),
    ('I found a lost wallet in your store parking lot, who do I give it to', 'other'),
    ('Do you have a physical store in Hamburg?', 'other'),
    ('Thanks for the great hiking tips in your newsletter!', 'other'),
]


@needs_local
def test_intent_on_newly_written_tickets(tmp_path):
    """Measured 0.883 (53/60) on this machine; docs/status.md ("Scenarios on unseen data")."""
    from examples.scenarios import support

    path = tmp_path / "tickets.jsonl"
    path.write_text("".join(json.dumps({"text": t, "label": lab}) + "\n" for t, lab in TICKETS))
    got = asyncio.run(support.evaluate(str(path)))
    assert got["tickets"] == 60 and got["intent_accuracy"] >= 0.85, got
    assert got["auto_answered_accuracy"] >= 0.9, got


@needs_local
def test_a_draft_about_something_else_is_not_sent():
    """A double-billing complaint got a draft that passed tone and PII and was sent: "I'm glad to hear
    you're interested in Northwind Gear's gear... a headlamp with a USB-C connector?" (a sales reply)."""
    from examples.scenarios import support

    intent = {"label": "billing", "confidence": 0.47}
    context = {"customer": {"name": None, "email": None}, "facts": [], "history": []}
    draft = ("Hi, I'm glad to hear you're interested in Northwind Gear's gear. I'm happy to help you with your request. "
             "Could you please specify what you're looking for? Is it a headlamp with a USB-C connector, or perhaps a "
             "headlamp with a USB-C connector with a 2-year warranty? I'm here to help you find the perfect gear for "
             "your needs.")
    out = asyncio.run(support.check(None, {}, intent, context, {"text": draft}))
    assert out["source"] == "template" and any("not the ticket's billing" in p for p in out["problems"]), out
    assert "finance team" in out["reply"]
    fine = ("I am sorry about the double charge. Our finance team will check both payments on your card and refund "
            "the duplicate within one working day.")
    assert asyncio.run(support.check(None, {}, intent, context, {"text": fine}))["source"] == "model"




OTHER_LANGUAGES = [
    ("Mir wurde der Betrag doppelt von der Kreditkarte abgebucht", "billing"),
    ("La montre ne se synchronise plus avec l'application depuis la mise à jour", "technical"),
    ("No puedo iniciar sesión, el correo para restablecer la contraseña no llega", "account"),
    ("Haben Sie den Schlafsack auch in Größe L?", "sales"),
    ("Mon colis est bloqué à la douane depuis une semaine", "shipping"),
    ("¿Tienen ofertas de trabajo en la tienda de Madrid?", "other"),
    ("Die Rechnung enthält einen Artikel, den ich nie bestellt habe", "billing"),
    ("L'appli plante dès que j'ouvre la carte", "technical"),
    ("Bitte löschen Sie mein Konto", "account"),
    ("¿Cuánto tarda el envío a Canarias?", "shipping"),
    ("Quel sac à dos conseillez-vous pour une randonnée de 5 jours ?", "sales"),
    ("Danke für den tollen Service im Laden!", "other"),
]


@needs_local
def test_a_ticket_in_a_language_the_model_was_not_trained_on_goes_to_a_person(tmp_path):
    """Unseen data (review): the intent classifier learned English tickets; on German, French and
    Spanish ones it was right 5 times in 12, and two wrong ones ('Bitte löschen Sie mein Konto' read
    as 'other' at 0.50) were answered with no person. A ticket whose words are mostly unknown to the
    training examples and to common English now goes to a person, and no English ticket more does."""
    from examples.scenarios import support

    path = tmp_path / "other.jsonl"
    path.write_text("".join(json.dumps({"text": t, "label": lab}) + "\n" for t, lab in OTHER_LANGUAGES))
    got = asyncio.run(support.evaluate(str(path)))
    assert got["escalated"] == len(OTHER_LANGUAGES) and got["auto_answered_accuracy"] is None, got
    assert all(support.familiarity(t) >= support.FAMILIAR for t, _ in TICKETS)  # English: as before
    english = tmp_path / "english.jsonl"
    english.write_text("".join(json.dumps({"text": t, "label": lab}) + "\n" for t, lab in TICKETS))
    assert asyncio.run(support.evaluate(str(english)))["escalated"] == sum(
        1 for c in asyncio.run(support.classifier().classify_many([t for t, _ in TICKETS])) if c.confidence < support.CONFIDENT
    )


async def test_a_bad_training_file_fails_the_run_before_a_ticket_is_opened(tmp_path):
    """Unseen data (fifth session): the ticket was opened in the support desk in parallel with
    reading the ``train`` file, so a training file with a mistake failed the run after the
    customer's ticket existed (opened, never answered). The file is now checked first: the run
    fails naming the file's line and nothing is opened."""
    import pytest

    import podium
    from examples.scenarios import support
    from podium.sandbox import Sandbox

    bad = tmp_path / "train.jsonl"
    bad.write_text('{"text": "I was charged twice", "label": "billing"}\n{"text": "the app crashes"}\n')
    with Sandbox() as company:
        async with podium.Client(f"sqlite:///{tmp_path}/p.db", connectors=company.connectors()) as c:
            handle = await c.start(support.workflow, {"message": "my order never came", "customer_id": "C001",
                                                      "train": str(bad)})
            with pytest.raises(podium.RunFailed, match="train.jsonl:2"):
                await c.result(handle.id, timeout=120)
        opened = [r for r in company.received("support_desk") if r["operation"] == "createTicket"]
    assert not opened, opened
