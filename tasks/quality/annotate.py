"""Labels from an LLM through any OpenAI-compatible chat API (DeepSeek, a local Ollama, vLLM, …).

One ``POST {base_url}/chat/completions`` per document, asking for ``{"label": ..., "reason": ...}``. The
key travels only in the Authorization header: it is read from the environment variable the config names,
held by the annotator out of its repr, and never put in a returned example, a failure message or a log
(a failure records the exception's type and message, which httpx builds from the URL, never the headers).
Off by default; nothing in the chain needs it.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field

import httpx

from tasks.quality.config import LABELS, AnnotatorConfig
from tasks.quality.labels import Example

SYSTEM_PROMPT = (
    "You rate Chinese web documents as pretraining data for a language model. Answer with one JSON object "
    '{"label": "high" | "medium" | "low", "reason": "<at most 20 words>"} and nothing else. '
    "high: well-formed, informative prose (news, encyclopedic, technical, careful explanation). "
    "medium: acceptable but thin: forum chatter, short comments, lists, boilerplate-heavy pages. "
    "low: spam, ads, SEO keyword stuffing, gibberish, machine-garbled or repeated text."
)
_JSON_OBJECT = re.compile(r"\{.*\}", re.S)
_LABEL_WORD = re.compile(r"\b(high|medium|low)\b", re.I)


class AnnotationError(RuntimeError):
    """A reply that holds no label."""


def api_key_from_env(cfg: AnnotatorConfig, environ: Mapping[str, str] = os.environ) -> str | None:
    """Return the API key from the environment variable named by ``cfg.api_key_env`` (None when unset or empty)."""
    return environ.get(cfg.api_key_env) or None


def parse_reply(content: str) -> tuple[str, str]:
    """Return (label, reason) from a chat reply: a JSON object (fenced or not), else the first label word.

    >>> parse_reply('```json\\n{"label": "low", "reason": "赌博广告"}\\n```')
    ('low', '赌博广告')
    >>> parse_reply("Medium. Mostly a list of links.")
    ('medium', 'Medium. Mostly a list of links.')
    """
    match = _JSON_OBJECT.search(content)
    if match:
        try:
            obj = json.loads(match.group())
        except json.JSONDecodeError:
            obj = None
        if isinstance(obj, dict) and str(obj.get("label", "")).lower() in LABELS:
            return str(obj["label"]).lower(), str(obj.get("reason", ""))[:200]
    word = _LABEL_WORD.search(content)
    if word:
        return word.group(1).lower(), content.strip()[:200]
    raise AnnotationError(f"no label in the reply ({len(content)} characters)")


@dataclass
class AnnotationResult:
    """What the annotator made of a batch: labelled examples, and the documents it could not label and why."""

    examples: list[Example]
    failures: list[dict[str, str]]  # {"id", "error"}: no key, no headers, no text


@dataclass
class Annotator:
    """Labels documents by asking a chat model; one HTTP client for all requests."""

    cfg: AnnotatorConfig
    api_key: str | None = field(default=None, repr=False)
    _client: httpx.Client = field(init=False, repr=False)

    def __post_init__(self) -> None:
        headers = {"Authorization": f"Bearer {self.api_key}"} if self.api_key else {}
        base_url = self.cfg.base_url.rstrip("/") + "/"  # so "chat/completions" is joined under a path like /v1
        self._client = httpx.Client(base_url=base_url, headers=headers, timeout=self.cfg.timeout_s)

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> Annotator:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def label(self, text: str) -> tuple[str, str]:
        """Return (label, reason) the model gives one text; raise httpx.HTTPError or AnnotationError."""
        body = {
            "model": self.cfg.model,
            "temperature": self.cfg.temperature,
            "messages": [
                {"role": "system", "content": SYSTEM_PROMPT},
                {"role": "user", "content": text[: self.cfg.max_chars]},
            ],
        }
        response = self._client.post("chat/completions", json=body)
        response.raise_for_status()
        try:
            content = response.json()["choices"][0]["message"]["content"]
        except (ValueError, KeyError, IndexError, TypeError) as e:
            raise AnnotationError(f"not a chat completion: {type(e).__name__}") from e
        return parse_reply(content or "")

    def __call__(self, docs: list[dict]) -> AnnotationResult:
        """Return the examples labelled from ``docs`` ({id, text, …}), at most cfg.max_docs of them."""
        examples: list[Example] = []
        failures: list[dict[str, str]] = []
        for doc in docs[: self.cfg.max_docs]:
            try:
                label, reason = self.label(doc["text"])
            except (httpx.HTTPError, AnnotationError) as e:
                failures.append({"id": str(doc.get("id", "")), "error": f"{type(e).__name__}: {e}"})
                continue
            examples.append({"text": doc["text"], "label": label, "reason": f"{self.cfg.model}: {reason}", "origin": "llm"})
        return AnnotationResult(examples, failures)
