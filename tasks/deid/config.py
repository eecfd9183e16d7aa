"""The de-identification stage's one config model; its fields are the flow parameters and the recipe section."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from tasks.deid.detectors import PII_TYPES, PiiType

PiiPolicy = Literal["replace", "hash", "drop"]
NamesPolicy = Literal["contextual", "all", "off"]

_POLICY = (
    "replace: the span becomes {placeholder}; hash: {placeholder_hash} (a salted sha256 prefix of the normalised "
    "value, the same for the same value, for joins); drop: the document is rejected as {reason}."
)


def _policy(kind: str, default: PiiPolicy = "replace") -> PiiPolicy:
    return Field(
        default=default,
        description=f"What happens to a found {kind.replace('_', ' ')}. "
        + _POLICY.format(placeholder=f"`<{kind.upper()}>`", placeholder_hash=f"`<{kind.upper()}:1a2b3c…>`", reason=f"pii_{kind}"),
    )


class DeidConfig(BaseModel):
    """De-identification: which personal data to find (IDs, phones, e-mails, cards, IPs, QQ/WeChat, plates,
    addresses, names) and whether to replace it with a placeholder, hash it, or drop the document."""

    model_config = ConfigDict(extra="forbid")

    types: list[PiiType] = Field(
        default=list(PII_TYPES),
        min_length=1,
        max_length=len(PII_TYPES),
        description="The kinds of personal data looked for. Leaving out 'person' (or names: off) skips the NER model, "
        "by far the slowest detector (see benchmarks/deid_throughput.py).",
    )
    names: NamesPolicy = Field(
        default="contextual",
        description="Which person names (and street addresses) are personal data. contextual: a name standing near a "
        "personal identifier (phone, ID card, bank card, e-mail, QQ/WeChat, plate, street address) or a personal-data "
        "cue (收件人, 联系人, 姓名, 患者, 房东 …) is a private person: it and every other mention of it in the document "
        "is masked, and so is a street address near such a person, cue or identifier; officials, reporters and people "
        "in the news are kept. all: every name the NER finds and every street-level address. off: names untouched, "
        "addresses only in a personal context; identifiers are masked under every policy.",
    )
    email: PiiPolicy = _policy("email")
    id_card: PiiPolicy = _policy("id_card")
    bank_card: PiiPolicy = _policy("bank_card")
    phone: PiiPolicy = _policy("phone")
    ip: PiiPolicy = _policy("ip")
    qq: PiiPolicy = _policy("qq")
    wechat: PiiPolicy = _policy("wechat")
    plate: PiiPolicy = _policy("plate")
    address: PiiPolicy = _policy("address")
    person: PiiPolicy = _policy("person")
    salt: str = Field(
        default="",
        max_length=256,
        description="Secret mixed into every hash of the 'hash' policy. Set your own: an unsalted hash of an "
        "11-digit phone number is reversed by trying all of them.",
    )
    hash_chars: int = Field(default=12, ge=8, le=64, description="Hex digits of the hash kept in a hashed placeholder.")
    name_allow_list: list[str] = Field(
        default=[],
        max_length=100_000,
        description="Names never masked under any policy, matched exactly (孔子, 鲁迅): public figures whose names you "
        "want the model to learn even next to personal data or under names: all.",
    )
    max_chars: int = Field(
        default=2_000_000,
        ge=1_000,
        le=100_000_000,
        description="Longer documents are rejected as too_long instead of being scanned (a 50 MB line would hold "
        "a worker for an hour in the name tagger, and cannot be published unscanned).",
    )
