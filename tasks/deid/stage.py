"""The de-identification stage as a step: personal data in each text becomes a typed placeholder.

Every record gets a ``pii_counts`` column (found spans per enabled kind), whatever the policy; a kind
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
from tasks.deid.names import NameFinder
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
    "pii_address",  # a street address was found and cfg.address is "drop"
    "pii_person",  # a person's name was found and cfg.person is "drop"
    "not_text",  # the record's text is not a string (raw bytes never reach this stage from extract/OCR)
    "too_long",  # the text is longer than cfg.max_chars
]
DEID_REASONS: tuple[str, ...] = get_args(DeidReason)
PII_COUNTS = "pii_counts"  # the column: {kind: spans found} for every enabled kind


def mask_text(text: str, spans: list[Span], cfg: DeidConfig) -> str:
    """Return ``text`` with each span replaced by its placeholder, or by a salted hash where the kind's policy is hash.

    >>> from tasks.deid.detectors import Span
    >>> mask_text("电话13800138000", [Span(2, 13, "phone", "13800138000")], DeidConfig())
    '电话<PHONE>'
    """
    parts: list[str] = []
    last = 0
    for span in sorted(spans, key=lambda s: s.start):
        parts.append(text[last : span.start])
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


@dataclass
class PiiMasker:
    """Batch step: replace, hash or drop the personal data of each record per the config.

    The name tagger (jieba, about two seconds to load) is built here only when ``person`` is enabled.
    """

    cfg: DeidConfig
    name: str = "mask_pii"
    _names: NameFinder | None = field(init=False, default=None, repr=False)

    def __post_init__(self) -> None:
        self.kinds = frozenset(self.cfg.types)
        if "person" in self.kinds:
            self._names = NameFinder(allow=self.cfg.name_allow_list)

    def __call__(self, docs: list[Doc]) -> list[Doc | Reject]:
        return [self.mask(doc) for doc in docs]

    def find(self, text: str) -> list[Span]:
        """Return the non-overlapping spans of enabled personal data in ``text``, in order."""
        spans = find_pattern_pii(text, self.kinds)
        if self._names is not None:
            spans += self._names(text)
        return [s for s in resolve_overlaps(spans) if s.kind in self.kinds]

    def mask(self, doc: Doc) -> Doc | Reject:
        """Return the record with its personal data masked and a ``pii_counts`` column, or the reason it leaves."""
        text = doc.get("text")
        if text is None:
            text = ""
        if not isinstance(text, str):
            return Reject("not_text", f"text is {type(text).__name__}")
        if len(text) > self.cfg.max_chars:
            return Reject("too_long", f"{len(text)} chars > {self.cfg.max_chars}")
        text = repair_text(text)
        spans = self.find(text)
        counts = Counter(s.kind for s in spans)
        for kind in PII_TYPES:
            if counts[kind] and kind in self.kinds and getattr(self.cfg, kind) == "drop":
                return Reject(f"pii_{kind}", f"{counts[kind]} {kind.replace('_', ' ')} found")
        pii_counts = {kind: counts[kind] for kind in PII_TYPES if kind in self.kinds}
        return {**doc, "text": mask_text(text, spans, self.cfg), PII_COUNTS: pii_counts}

    def mask_line(self, text: str) -> str:
        """Return one line with every enabled kind masked, however long (no reject: the caller shows it, never keeps it)."""
        text = repair_text(text)
        return mask_text(text, self.find(text), self.cfg)

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
    return [masker.mask_line(str(line)) for line in lines]
