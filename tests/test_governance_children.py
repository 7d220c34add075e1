"""Child runs under their parents' policies: the paths a child's calls take besides a tool or a
connector (attacker review, sixth session). A child works on behalf of the run that started it, so
each parent workflow's policy holds its model calls too: the providers it names, and what it says
about personal data in prompts. The attack tests passed their attack on the code before the fix."""

from __future__ import annotations

from pathlib import Path

import pytest

from podium import Client, Policy, RunFailed, Workflow, ai
from podium.models import Response
from podium.models.testing import ScriptedModel


def _child(name: str, prompt: str) -> Workflow:
    """A workflow whose one step asks a model of provider ``scripted`` (a service, not ``local``)."""
    child = Workflow(name)

    @child.step
    async def draft(ctx, input):
        answer = await ai.llm(ctx, prompt, model=ScriptedModel(default=Response(text="done")))
        return answer.text

    return child


def _parent(name: str, child: Workflow) -> Workflow:
    parent = Workflow(name)
    parent.subworkflow("delegate", child, input=lambda input: input)
    return parent


async def test_attack_a_child_with_no_policy_calls_a_provider_its_parents_policy_forbids(tmp_path: Path) -> None:
    """The attack: workflow ``drafts-local``'s policy keeps it on local models; there is no ``*``.
    Its author moves the model call into a sub-workflow that no policy names. A model call outside
    an agent asked the policies only when the run's own workflow had one, so the parent's never
    held the child: the prompt went to the service. Now it is refused, naming the parent's policy."""
    parent = _parent("drafts-local", _child("drafts-helper", "draft a reply"))
    async with Client(f"sqlite:///{tmp_path}/p.db") as c:
        await c.set_policy("drafts-local", Policy(allowed_providers=["local"]))
        with pytest.raises(RunFailed, match=r"drafts-local.*a parent run's.*may not call provider 'scripted'"):
            await c.run(parent, None)
        await c.set_policy("drafts-local", Policy(allowed_providers=["local", "scripted"]))
        assert await c.run(parent, None) == "done"


async def test_attack_a_child_sends_personal_data_its_parents_policy_keeps_on_local_models(tmp_path: Path) -> None:
    """The attack: workflow ``support``'s policy keeps personal data on local models
    (``pii_local_only``) and allows the ``scripted`` provider for the rest. A sub-workflow of its,
    under ``*`` (which says nothing about personal data), sent a prompt holding an e-mail address
    to the service: redaction and ``pii_local_only`` were read from the run's own policy alone.
    Now the parent's hold the child: the call is refused."""
    parent = _parent("support", _child("support-helper", "write to ada@example.com about her refund"))
    async with Client(f"sqlite:///{tmp_path}/p.db") as c:
        await c.set_policy("*", Policy(allowed_providers=["local", "scripted"]))
        await c.set_policy("support", Policy(allowed_providers=["local", "scripted"], pii_local_only=True))
        with pytest.raises(RunFailed, match="personal data"):
            await c.run(parent, None)
        # redaction of prompts in the parent's policy lets the child call the service, redacted
        await c.set_policy("support", Policy(allowed_providers=["local", "scripted"], pii_local_only=True, redact=["prompts"]))
        assert await c.run(parent, None) == "done"


async def test_attack_a_child_stores_what_its_parents_policy_redacts(tmp_path: Path) -> None:
    """The attack: workflow ``intake``'s policy keeps personal data out of the store
    (``redact: [payloads]``). Its sub-workflow, under no policy, returned the customer's e-mail
    address, and the child's log kept it as written: payload redaction was read from the run's own
    policy alone. Now the parent's policy holds the child's log too."""
    child = Workflow("intake-helper")

    @child.step
    async def lookup(ctx, input):
        return {"email": "ana@example.com", "phone": "+44 20 7946 0958"}

    parent = _parent("intake", child)
    async with Client(f"sqlite:///{tmp_path}/p.db") as c:
        await c.set_policy("intake", Policy(redact=["payloads"]))
        await c.run(parent, None)
        kid = (await c.list(workflow="intake-helper"))[0]
        stored = (kid.input or "") + "".join(e.data or "" for e in await c.store.load_events(kid.id))
        assert "ana@example.com" not in stored and "7946 0958" not in stored, stored
