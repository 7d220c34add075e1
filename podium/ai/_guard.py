"""What a workflow's policy does around each model call: PII redaction of prompts and answers,
keeping PII on local models, output validators (block or ask a person), the audit record of the
call, and the day and entity budgets it is charged to."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from typing import TYPE_CHECKING, Any

from ..governance.enforcement import account, audit, charge, policy_of, refused_by
from ..governance.policy import PolicyViolation
from ..models import Model, Request, Response

if TYPE_CHECKING:
    from ..engine.context import StepContext
    from ..governance.policy import Policy
    from ._stream import LiveText


def _redact_answer(text: str) -> str:
    """Redact an answer; a JSON answer (structured output) has only its string values redacted, so
    numbers such as ids stay numbers and it still parses."""
    from ..governance.pii import redact, redact_json

    stripped = text.strip()
    if stripped[:1] in ("{", "["):
        try:
            return redact_json(stripped)
        except ValueError:
            pass
    return redact(text)


def prompt_hash(request: Request) -> str:
    """SHA-256 of the messages sent: the audit log proves which prompt was used without holding it."""
    body = [[m.role, m.content, m.name, m.tool_call_id] for m in request.messages]
    return hashlib.sha256(json.dumps(body, ensure_ascii=False).encode()).hexdigest()


async def prepare(ctx: StepContext | None, request: Request, providers: list[str]) -> Request:
    """Apply the policy to a request before it leaves: redact prompts; refuse PII to remote models."""
    policy = policy_of(ctx)
    if policy is None:
        return request
    from ..governance.pii import contains_pii, redact

    if "prompts" in policy.redact:
        messages = tuple(
            dataclasses.replace(m, content=redact(m.content)) if m.content else m for m in request.messages
        )
        request = dataclasses.replace(request, messages=messages)
    remote = sorted({p for p in providers if p != "local"})
    if policy.pii_local_only and remote and any(contains_pii(m.content) for m in request.messages):
        await audit(ctx, "policy.refuse", providers=remote, reason="PII in prompt")
        raise PolicyViolation(
            f"the prompt holds personal data and this workflow's policy keeps it on local models, but "
            f"the call would go to {', '.join(remote)}; use model='local:...', or redact the prompt "
            f"first (policy redact: [prompts])"
        )
    return request


def live_call(ctx: StepContext | None, model: Model, live: LiveText | None = None) -> Any:
    """The function a durable model call runs: call, then audit and charge it. It runs only when the
    call really happens, so a replayed call is neither audited nor charged twice."""

    async def call(request: Request) -> Response:
        response = await (model.complete(request) if live is None else live.run(model, request))
        usage = response.usage
        await audit(
            ctx,
            "model.call",
            model=response.model or model.spec,
            prompt_hash=prompt_hash(request),
            input_tokens=usage.input_tokens,
            output_tokens=usage.output_tokens,
            cost=usage.cost,
            latency=round(usage.latency, 4),
            tool_calls=[c.name for c in response.tool_calls],
        )
        account(ctx, usage)
        await charge(ctx, usage)
        return response

    call.__name__ = "complete"
    return call


async def check(ctx: StepContext | None, response: Response, *, name: str) -> Response:
    """Apply the policy to an answer: redact it, then run its validators (block, or ask a person)."""
    policy = policy_of(ctx)
    if policy is None or (not policy.has_output_checks and "outputs" not in policy.redact):
        return response
    if "outputs" in policy.redact and response.text:

        response = response.replace(text=_redact_answer(response.text))
    if not policy.has_output_checks or not response.text:
        return response
    assert ctx is not None  # policy_of returns None outside a run
    # The verdict is a durable call: judged (and audited) once, replayed as logged.
    problems = await ctx.call(_judge, ctx, policy, response.text, name=f"{name}.check")
    if not problems:
        return response
    return await _violation(ctx, policy, response, problems, name)


async def _judge(ctx: StepContext, policy: Policy, text: str) -> list[dict[str, str]]:
    from ..governance.validators import check_output, validators_for

    problems = await check_output(text, validators_for(policy))
    if problems:
        await audit(ctx, "policy.output", problems=problems, on_violation=policy.on_violation)
    return problems


async def _violation(
    ctx: StepContext, policy: Policy, response: Response, problems: list[dict[str, str]], name: str
) -> Response:
    from ..governance.validators import OutputBlocked

    what = "; ".join(p["problem"] for p in problems)
    if policy.on_violation == "approval":
        decision = await ctx.approval(
            {"answer": response.text, "problems": problems},
            title=f"a model answer in step {ctx.step_id!r} failed its checks ({what}): pass it?",
            name=f"approval:output:{ctx.step_id}:{ctx.iteration}:{ctx.index}/{name}:{ctx.call_count(name + '.check')}",
        )
        if decision.get("approved"):
            edited = decision.get("payload")
            if decision.get("edited"):
                if not (isinstance(edited, dict) and isinstance(edited.get("answer"), str)):
                    raise OutputBlocked(
                        f"step {ctx.step_id!r}: the approver's edit must look like {{\"answer\": \"...\"}}, got "
                        f"{str(edited)[:200]}; the answer was not used"
                    )
                return response.replace(text=edited["answer"])
            return response
        raise OutputBlocked(
            f"step {ctx.step_id!r}: the model's answer {what}, and " + refused_by(decision, "rejected it")
        )
    raise OutputBlocked(
        f"step {ctx.step_id!r}: the model's answer {what}; the workflow's policy blocks it "
        f"(set on_violation: approval to let a person decide)"
    )
