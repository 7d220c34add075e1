"""Classification by a language model, with constrained output: the label is one of the labels."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from ..models import Message, Model, Request, default_gateway
from ._base import Classification, Classifier


class LLMClassifier(Classifier):
    """Asks a model for ``{"label": one of labels, "confidence": 0..1}``.

    The confidence is the model's own estimate, which small models calibrate poorly: prefer an
    :class:`~podium.classifiers.EmbeddingClassifier` for routing on a tiny local model.

    :param labels: label names, or label -> description.
    :param examples: a few example texts per label, shown to the model.
    """

    def __init__(
        self,
        labels: Sequence[str] | Mapping[str, str],
        *,
        model: str | Model | None = None,
        instructions: str = "Classify the user's message.",
        examples: Mapping[str, Sequence[str]] | None = None,
        max_tokens: int = 60,
    ) -> None:
        self.descriptions = dict(labels) if isinstance(labels, Mapping) else {label: "" for label in labels}
        self.labels = list(self.descriptions)
        self.model_spec = model
        self.instructions = instructions
        self.examples = {k: list(v) for k, v in (examples or {}).items()}
        self.max_tokens = max_tokens
        self.schema: dict[str, Any] = {
            "type": "object",
            "properties": {
                "label": {"type": "string", "enum": self.labels},
                "confidence": {"type": "number", "minimum": 0, "maximum": 1},
            },
            "required": ["label", "confidence"],
        }

    def prompt(self) -> str:
        lines = [self.instructions, "Labels:"]
        for label, desc in self.descriptions.items():
            lines.append(f"- {label}" + (f": {desc}" if desc else ""))
        for label, texts in self.examples.items():
            for t in texts:
                lines.append(f"Example: {t!r} -> {label}")
        lines.append('Answer with JSON: {"label": <label>, "confidence": <0 to 1>}.')
        return "\n".join(lines)

    def resolved_model(self) -> Model:
        """The model it asks (named models come from the default gateway)."""
        return self.model_spec if isinstance(self.model_spec, Model) else default_gateway().model(self.model_spec)

    def request(self, text: str) -> Request:
        """The request that classifies ``text``."""
        return Request(
            messages=(Message.system(self.prompt()), Message.user(text)),
            output_schema=self.schema,
            output_name="classification",
            max_tokens=self.max_tokens,
            temperature=0.0,
        )

    async def classify(self, text: str) -> Classification:
        return self.parse(await self.resolved_model().complete(self.request(text)))

    def parse(self, response: Any) -> Classification:
        """The classification in a model's answer (the first label at confidence 0 if it has none)."""
        try:
            data = json.loads(response.text)
            label = str(data["label"])
            confidence = min(1.0, max(0.0, float(data.get("confidence", 0.5))))
        except (ValueError, KeyError, TypeError):
            label, confidence = self.labels[0], 0.0
        if label not in self.labels:
            label, confidence = self.labels[0], 0.0
        rest = (1.0 - confidence) / max(1, len(self.labels) - 1)
        scores = {lb: (confidence if lb == label else rest) for lb in self.labels}
        return Classification(
            label=label,
            confidence=confidence,
            scores=scores,
            method="llm",
            model=response.model,
            usage=response.usage,
        )
