"""The de-identification stage as a step: personal data in each text becomes a typed placeholder.

Identifiers (ID card, phone, bank card, e-mail, IP, QQ/WeChat, plate) are masked under every names
policy; person names and street addresses by ``DeidConfig.names`` (see ``names.py``): under
``contextual`` an address is masked when an identifier, a cue or a private person stands within
``CONTEXT_CHARS`` of it in its sentence, under ``all`` always, and under ``off`` as under contextual.

Placeholders: ``<PHONE>``, ``<ID_CARD>``, ``<ADDRESS>`` … name the kind; persons are numbered per
document in order of first mention, ``<PERSON_1>``, ``<PERSON_2>``, every mention of one name the same
number, so a model still sees who did what ("<PERSON_1>把房子租给了<PERSON_2>，<PERSON_2>…").
Under the ``hash`` policy a span becomes ``<KIND:salted-digest>`` instead, the same for the same value.

Every record gets a ``pii_counts`` column (spans masked per enabled kind), whatever the policy; a kind
whose policy is ``drop`` rejects the document as ``pii_<kind>``. The step's counters ``pii.<kind>``
count the spans replaced or hashed in the documents it kept.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from dataclasses import dataclass, field
from typing import Literal, get_args

from tasks.deid.config import DeidConfig
from tasks.deid.detectors import PII_TYPES, PLACEHOLDERS, Span, find_pattern_pii, resolve_overlaps
from tasks.deid.names import CONTEXT_CHARS, NameFinder, cue_spans, sentences
from tasks.records import Doc, Reject
from tasks.steps import Step, cached_steps
from tasks.store import config_digest

DeidReason = Literal[
    "pii_email",  # an e-mail address was found and cfg.email is "drop"
    "pii_id_card",  # a resident ID number was found and cfg.id_card is "drop"
    "pii_bank_card",  # a bank card number was found and cfg.bank_card is "drop"
    "pii_phone",  # a mobile or landline number was found and cfg.phone is "drop"
    "pii_ip",  # an IPv4/IPv6 address was found and cfg.ip is "drop"
    "pii_qq",  # a labelled QQ number was found and cfg.qq is "drop"
    "pii_wechat",  # a labelled WeChat id was found and cfg.wechat is "drop"
    "pii_plate",  # a licence plate was found and cfg.plate is "drop"
    "pii_address",  # a street address to mask was found and cfg.address is "drop"
    "pii_person",  # a person's name to mask was found and cfg.person is "drop"
    "not_text",  # the record's text is not a string (raw bytes never reach this stage from extract/OCR)
    "binary_text",  # the text is mostly control characters or U+FFFD: binary data decoded as text
    "too_long",  # the text is longer than cfg.max_chars
]
DEID_REASONS: tuple[str, ...] = get_args(DeidReason)
PII_COUNTS = "pii_counts"  # the column: {kind: spans masked} for every enabled kind
_BINARY_SHARE = 0.1  # a text with this share of control characters / U+FFFD is binary, not language
_BINARY_MIN = 8


def mask_text(text: str, spans: list[Span], cfg: DeidConfig) -> str:
    """Return ``text`` with each span replaced by its placeholder (persons numbered by first mention), or hashed.

    >>> from tasks.deid.detectors import Span
    >>> mask_text("电话13800138000", [Span(2, 13, "phone", "13800138000")], DeidConfig())
    '电话<PHONE>'
    >>> mask_text("张三和李四，张三", [Span(0, 2, "person", "张三"), Span(3, 5, "person", "李四"), Span(6, 8, "person", "张三")], DeidConfig())
    '<PERSON_1>和<PERSON_2>，<PERSON_1>'
    """
    parts: list[str] = []
    numbers: dict[str, int] = {}
    last = 0
    for span in sorted(spans, key=lambda s: s.start):
        parts.append(text[last : span.start])
        if span.kind == "person" and cfg.person != "hash":
            parts.append(f"<PERSON_{numbers.setdefault(span.value, len(numbers) + 1)}>")
        else:
            parts.append(placeholder(span, cfg))
        last = span.end
    parts.append(text[last:])
    return "".join(parts)


def placeholder(span: Span, cfg: DeidConfig) -> str:
    """Return what a span becomes: ``<PHONE>``, or ``<PHONE:1a2b3c4d5e6f>`` under the hash policy."""
    if getattr(cfg, span.kind) != "hash":
        return PLACEHOLDERS[span.kind]
    digest = hashlib.sha256(f"{cfg.salt}\x00{span.kind}\x00{span.value}".encode()).hexdigest()
    return f"<{span.kind.upper()}:{digest[: cfg.hash_chars]}>"


def repair_text(text: str) -> str:
    """Return ``text`` with lone UTF-16 surrogates (from JSON's \\ud800 escapes) as U+FFFD: they cannot be written as UTF-8."""
    try:
        text.encode("utf-8")
        return text
    except UnicodeEncodeError:
        return text.encode("utf-16", "surrogatepass").decode("utf-16", "replace")


def binary_share(text: str) -> float:
    """Return the share of characters that no language text holds: C0/C1 controls other than whitespace, and U+FFFD."""
    bad = sum(1 for c in text if (c < " " and c not in "\t\n\r\f") or "\x7f" <= c <= "\x9f" or c == "\ufffd")
    return bad / len(text) if bad >= _BINARY_MIN else 0.0


def private_addresses(text: str, spans: list[Span]) -> list[Span]:
    """Return ``spans`` without the street addresses that stand apart from any identifier, cue or private person.

    An address is personal when something personal is written within ``CONTEXT_CHARS`` of it in its
    sentence: a phone, a name masked as private, 收货地址/家住/房东 …; a shop's or an office's address
    in a news story is not.
    """
    if not any(s.kind == "address" for s in spans):
        return spans
    near = [(s.start, s.end) for s in spans if s.kind != "address"] + cue_spans(text, roles=False)
    bounds = sentences(text)
    sentence_of = lambda pos: next(k for k, (a, b) in enumerate(bounds) if a <= pos < b or k == len(bounds) - 1)  # noqa: E731
    kept = []
    for s in spans:
        if s.kind != "address" or any(
            (a - s.end if a >= s.end else s.start - b) <= CONTEXT_CHARS and sentence_of(a) == sentence_of(s.start) for a, b in near
        ):
            kept.append(s)
    return kept


@dataclass
class PiiMasker:
    """Batch step: replace, hash or drop the personal data of each record per the config.

    The NER (LAC's ONNX model, ~0.3 s to load) is built here only when ``person`` is enabled and the
    names policy is not ``off``; it tags the whole batch in one call.
    """

    cfg: DeidConfig
    name: str = "mask_pii"
    _names: NameFinder | None = field(init=False, default=None, repr=False)

    def __post_init__(self) -> None:
        self.kinds = frozenset(self.cfg.types)
        if "person" in self.kinds and self.cfg.names != "off":
            from tasks.deid.ner import PersonTagger  # onnxruntime: only when names are looked for

            self._names = NameFinder(PersonTagger(), self.cfg.names, self.cfg.name_allow_list)

    def __call__(self, docs: list[Doc]) -> list[Doc | Reject]:
        checked = [self.check(doc) for doc in docs]
        texts = [c for c in checked if isinstance(c, str)]
        found = iter(self.find_batch(texts))
        results: list[Doc | Reject] = []
        for doc, c in zip(docs, checked):
            results.append(c if isinstance(c, Reject) else self.finish(doc, c, next(found)))
        return results

    def check(self, doc: Doc) -> str | Reject:
        """Return the record's text, ready to scan, or the reason it cannot be."""
        text = doc.get("text")
        if text is None:
            text = ""
        if not isinstance(text, str):
            return Reject("not_text", f"text is {type(text).__name__}")
        if len(text) > self.cfg.max_chars:
            return Reject("too_long", f"{len(text)} chars > {self.cfg.max_chars}")
        text = repair_text(text)
        share = binary_share(text)
        if share >= _BINARY_SHARE:
            return Reject("binary_text", f"{share:.0%} control or replacement characters")
        return text

    def find_batch(self, texts: list[str]) -> list[list[Span]]:
        """Return the non-overlapping spans to mask in each text, in order (names for the whole batch in one NER call)."""
        found = [find_pattern_pii(text, self.kinds) for text in texts]
        if self._names is not None:
            settled = [[s for s in resolve_overlaps(spans) if s.kind in self.kinds] for spans in found]
            for spans, names in zip(found, self._names(texts, settled)):
                spans += names
        out = []
        for text, spans in zip(texts, found):
            spans = [s for s in resolve_overlaps(spans) if s.kind in self.kinds]
            out.append(spans if self.cfg.names == "all" else private_addresses(text, spans))
        return out

    def find(self, text: str) -> list[Span]:
        """Return the non-overlapping spans to mask in one text, in order."""
        return self.find_batch([text])[0]

    def finish(self, doc: Doc, text: str, spans: list[Span]) -> Doc | Reject:
        """Return the record with its spans masked and a ``pii_counts`` column, or the drop reason."""
        counts = Counter(s.kind for s in spans)
        for kind in PII_TYPES:
            if counts[kind] and kind in self.kinds and getattr(self.cfg, kind) == "drop":
                return Reject(f"pii_{kind}", f"{counts[kind]} {kind.replace('_', ' ')} found")
        pii_counts = {kind: counts[kind] for kind in PII_TYPES if kind in self.kinds}
        return {**doc, "text": mask_text(text, spans, self.cfg), PII_COUNTS: pii_counts}

    def mask(self, doc: Doc) -> Doc | Reject:
        """Return one record with its personal data masked and a ``pii_counts`` column, or the reason it leaves."""
        return self([doc])[0]

    def tally(self, results: list[Doc | Reject]) -> dict[str, int]:
        """Return spans masked per kind (``pii.phone``…) and documents that held any (``pii_docs``), over the kept documents."""
        totals: Counter[str] = Counter()
        for result in results:
            if isinstance(result, Reject):
                continue
            counts = result.get(PII_COUNTS) or {}
            for kind, n in counts.items():
                if n:
                    totals[f"pii.{kind}"] += n
            totals["pii_docs"] += any(counts.values())
        return dict(totals)


def build_steps(cfg: DeidConfig) -> list[Step]:
    """Return the deid stage's steps, in order."""
    return [PiiMasker(cfg)]


def mask_sample_lines(lines: list[str], cfg: DeidConfig | None = None) -> list[str]:
    """Return sample lines fit to log: every identifier, street address and person name masked (names policy ``all``).

    Stages that log sample lines before the deid stage has run (clean's examples of what a rule
    removed, …) pass them through here first. A kind whose policy is ``drop`` is replaced instead,
    since a sample line is shown, not kept; the masker is built once per worker thread.
    """
    cfg = cfg or DeidConfig()
    update: dict = {"names": "all", "types": list(PII_TYPES)}
    update |= {kind: "replace" for kind in PII_TYPES if getattr(cfg, kind) == "drop"}
    cfg = cfg.model_copy(update=update)
    [masker] = cached_steps(f"deid-samples:{config_digest(cfg)}", lambda: [PiiMasker(cfg)])
    texts = [repair_text(str(line)) for line in lines]
    return [mask_text(text, spans, cfg) for text, spans in zip(texts, masker.find_batch(texts))]
