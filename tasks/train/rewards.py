"""Rule rewards for Chinese arithmetic answers, in TRL's shape ``f(completions, **kwargs) -> list[float | None]``,
and the one registry of them that GRPO and DPO's on-policy ranking share.

GRPO calls them with ``completions`` (strings, or conversational lists of messages) and every dataset column as
a keyword (``answer``). No model judges anything: an answer is right when its number equals the reference after
normalising full-width digits, Chinese numerals (十二, 二十一, 一百零五, 两), thousands separators and trailing
units (本, 个, 元). A reward that cannot judge a completion returns None for it, as TRL expects.

``REWARDS`` maps each reward's name (the name TRL logs, ``rewards/<name>/mean``) to its function;
``RewardWeights`` (a config mixin of GRPO's and DPO's configs) weighs them, and ``weighted_reward`` is the
score both trainers use: the weighted sum over the rewards that could score, None when none could — what TRL's
GRPOTrainer computes (a NaN-skipping weighted sum, unscorable rows marked apart).

- ``accuracy_reward``: 1.0 when the answer's number equals the reference, else 0.0; None when the reference
  itself states no number (nothing to check against).
- ``format_reward``: 1.0 for exactly ``<think>…</think><answer>…</answer>``; partial credit (0.2 per well-placed
  tag, at most 0.8) otherwise — a barely trained policy never hits the exact shape, and an all-zero reward gives
  GRPO no advantage to learn from.
- ``language_reward``: the share of Han characters among the letters written (1.0 for Chinese, lower for
  English or mixed text, 0.0 for no letters at all).
- ``chain_reward``: a process reward for the reasoning itself, checked by rule from the question alone: the mean of
  three shares — the first sum's operands that are numbers of the question, the chain's equations that are true,
  and whether the answer is the chain's last result. A small policy's right answers are mostly luck after a wrong
  chain (``benchmarks/demo_stages.py``'s ``grpo_signal``), which the accuracy reward pays and this one does not;
  it reads the question from ``prompts`` (TRL passes them) and is None without one. Off by default (weight 0).
"""

from __future__ import annotations

import re
import unicodedata
from collections import Counter
from collections.abc import Callable
from decimal import Decimal

from pydantic import BaseModel, ConfigDict, Field, model_validator

_DIGITS = {
    "零": 0, "〇": 0, "一": 1, "壹": 1, "二": 2, "贰": 2, "两": 2, "三": 3, "叁": 3, "四": 4, "肆": 4,
    "五": 5, "伍": 5, "六": 6, "陆": 6, "七": 7, "柒": 7, "八": 8, "捌": 8, "九": 9, "玖": 9,
}  # fmt: skip
_SMALL_UNITS = {"十": 10, "拾": 10, "百": 100, "佰": 100, "千": 1000, "仟": 1000}
_BIG_UNITS = {"万": 10_000, "亿": 100_000_000}
_NUMERAL_CHARS = "".join(_DIGITS) + "".join(_SMALL_UNITS) + "".join(_BIG_UNITS)
_TOKEN = re.compile(rf"\d+|[{_NUMERAL_CHARS}]")
_CHINESE_RUN = re.compile(rf"(?:\d+|[{_NUMERAL_CHARS}])*[{_NUMERAL_CHARS}](?:\d+|[{_NUMERAL_CHARS}])*")
_ARABIC = re.compile(r"\d+(?:\.\d+)?")
_THOUSANDS = re.compile(r"(?<![\d.])\d{1,3}(?:,\d{3})+(?![\d,])")
_ANSWER = re.compile(r"<answer>(.*?)</answer>", re.DOTALL)
_FORMAT = re.compile(r"^<think>.*</think>\s*<answer>(.*)</answer>$", re.DOTALL)
_TAGS = ("<think>", "</think>", "<answer>", "</answer>")
_HAN = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0002ffff]")


def completion_text(completion: str | list[dict]) -> str:
    """Return the text of one completion: the string itself, or the assistant messages' contents joined.

    >>> completion_text([{"role": "assistant", "content": "二十一"}])
    '二十一'
    """
    if isinstance(completion, str):
        return completion
    return "".join(m["content"] for m in completion if m.get("role", "assistant") == "assistant")


def prompt_text(prompt: str | list[dict]) -> str:
    """Return the question of one prompt: the string itself, or the content of its last user turn ("" without one).

    >>> prompt_text([{"role": "system", "content": "先思考再回答"}, {"role": "user", "content": "3+4=?"}])
    '3+4=?'
    """
    if isinstance(prompt, str):
        return prompt
    return next((m["content"] for m in reversed(prompt) if m.get("role") == "user"), "")


def chinese_number(text: str) -> int | None:
    """Return the integer a Chinese numeral spells (十二, 一百零五, 两万五, 二〇二四, 3万5千), or None if it is not one.

    >>> [chinese_number(s) for s in ("十二", "二十一", "一百零五", "两", "一百五", "二〇二四", "三万零五十", "十几")]
    [12, 21, 105, 2, 150, 2024, 30050, None]
    """
    text = text.strip()
    tokens = _TOKEN.findall(text)
    if not tokens or "".join(tokens) != text:
        return None
    values = [int(t) if t.isdigit() else _DIGITS.get(t) for t in tokens]
    if all(v is not None for v in values) and len(tokens) > 1 and all(t in _DIGITS or t.isdigit() for t in tokens):
        # digit by digit, as years and phone numbers are read: 二〇二四 → 2024
        return int("".join(str(v) for v in values)) if all(v < 10 for v in values) else None
    total = 0  # finished 亿 groups
    wan = 0  # the finished 万 group inside the current 亿 group
    section = 0  # below 万
    digit: int | None = None
    last_unit = 0  # the unit the previous token was, for the colloquial 一百五 (=150) and 两万五 (=25000)
    for token, value in zip(tokens, values):
        if value is not None and token not in ("零", "〇"):
            if digit is not None:
                return None  # two digits in a row inside a numeral with units: 二三十 is "twenty or thirty", not a number
            digit = value
            continue
        if token in ("零", "〇"):
            digit, last_unit = None, 0
            continue
        if token in _SMALL_UNITS:
            unit = _SMALL_UNITS[token]
            section += (1 if digit is None else digit) * unit
        else:
            unit = _BIG_UNITS[token]
            group = section + (digit or 0)
            if group == 0 and not (unit == 10_000 and total):
                return None
            if unit == 10_000:
                wan, section = group * unit, 0
            else:
                total, wan, section = (total + wan + group) * unit, 0, 0
        digit, last_unit = None, unit
    if digit is not None and last_unit >= 100:
        digit *= last_unit // 10  # 一百五 is 150, 两万五 is 25000: the digit takes the next unit down
    return total + wan + section + (digit or 0)


def extract_number(text: str) -> Decimal | None:
    """Return the number a short answer states — its last Arabic number, else its last Chinese numeral — or None.

    Full-width characters are folded first (１２ → 12) and thousands separators dropped (1,050 → 1050).

    >>> [extract_number(s) for s in ("21本", "共有２１个", "二十一元", "1,050元", "答：两人一共有四十二本书。", "不知道")]
    [Decimal('21'), Decimal('21'), Decimal('21'), Decimal('1050'), Decimal('42'), None]
    """
    text = unicodedata.normalize("NFKC", text)
    text = _THOUSANDS.sub(lambda m: m.group(0).replace(",", ""), text)
    arabic = _ARABIC.findall(text)
    if arabic:
        return Decimal(arabic[-1])
    for run in reversed(_CHINESE_RUN.findall(text)):
        value = chinese_number(run)
        if value is not None:
            return Decimal(value)
    return None


def extract_answer(text: str) -> str:
    """Return the content of the last ``<answer>`` tag, or the whole text when there is none.

    >>> extract_answer("<think>12-3=9，12+9=21</think><answer>21本</answer>")
    '21本'
    """
    found = _ANSWER.findall(text)
    return found[-1] if found else text


def answers_match(text: str, reference: str) -> bool:
    """Return whether the number answered in ``text`` equals the reference answer's number."""
    got, want = extract_number(extract_answer(text)), extract_number(reference)
    return got is not None and got == want


def accuracy_reward(completions: list, answer: list[str], **kwargs) -> list[float | None]:
    """Return 1.0 for each completion whose answer equals its reference number, else 0.0; None where the reference has no number.

    >>> accuracy_reward(["<think>…</think><answer>二十一</answer>", "<answer>20</answer>", "所以共有２１本", "<answer>21</answer>"], answer=["21", "21", "21", "见图"])
    [1.0, 0.0, 1.0, None]
    """
    rewards: list[float | None] = []
    for completion, reference in zip(completions, answer, strict=True):
        want = extract_number(reference)
        if want is None:
            rewards.append(None)  # unscorable: TRL leaves it out of the sum and of the logged mean
            continue
        got = extract_number(extract_answer(completion_text(completion)))
        rewards.append(1.0 if got is not None and got == want else 0.0)
    return rewards


def format_reward(completions: list, **kwargs) -> list[float]:
    """Return 1.0 for exactly ``<think>…</think><answer>…</answer>``, else 0.2 per tag that appears exactly once.

    >>> format_reward(["<think>12-3=9</think><answer>21</answer>", "<answer>21</answer>", "21", "<think>a</think><answer>21</answer>多余"])
    [1.0, 0.4, 0.0, 0.8]
    """
    rewards = []
    for completion in completions:
        text = completion_text(completion).strip()
        once = sum(text.count(tag) == 1 for tag in _TAGS)
        shape = _FORMAT.match(text)
        # exact: the four tags once each, in order, nothing outside them, and an answer to check
        rewards.append(1.0 if once == 4 and shape and shape.group(1).strip() else round(0.2 * once, 2))
    return rewards


def language_reward(completions: list, **kwargs) -> list[float]:
    """Return each completion's share of Han characters among its letters (tags not counted; no letters: 0.0).

    >>> language_reward(["<think>一共21本</think><answer>21</answer>", "The answer is 21", "答案是 forty", "<answer>21</answer>"])
    [1.0, 0.0, 0.375, 0.0]
    """
    rewards = []
    for completion in completions:
        text = completion_text(completion)
        for tag in _TAGS:
            text = text.replace(tag, "")
        letters = [ch for ch in text if ch.isalpha()]
        rewards.append(sum(bool(_HAN.match(ch)) for ch in letters) / len(letters) if letters else 0.0)
    return rewards


_EQUATION = re.compile(r"(\d+(?:[+\-]\d+)+)=(\d+)")  # 3+4=7, 十位3+2+1=6, 借1得12-7=5
_COLUMN = re.compile(r"(\d+(?:[+\-]\d+)+)[:：][^。<]*?[;；]得(\d+)")  # 38+25：个位8+5=13，写3进1；十位3+2+1=6；得63
_TERM = re.compile(r"[+\-]?\d+")


def question_numbers(text: str) -> list[int]:
    """Return the whole numbers a question states: its Chinese numerals first, then its Arabic numbers.

    >>> question_numbers("小明有七个苹果，小红又给了小明12个，两人共有多少个？")
    [7, 2, 12]
    """
    text = unicodedata.normalize("NFKC", text)
    values = [chinese_number(run) for run in _CHINESE_RUN.findall(text)]
    values += [int(n) for n in re.findall(r"\d+", _CHINESE_RUN.sub(" ", text))]
    return [v for v in values if v is not None]


def chain_score(question: str, text: str) -> float:
    """Return the share-mean of a chain's three checks: operands from the question, true equations, answer = last result.

    >>> chain_score("小明有5个橘子，小杰又给了小明6个，现在小明有多少个？", "<think>现在有5+6=11</think><answer>11</answer>")
    1.0
    >>> round(chain_score("小明有5个橘子，小杰又给了小明6个，现在小明有多少个？", "<think>现在有5+7=11</think><answer>12</answer>"), 3)
    0.167
    """
    think = unicodedata.normalize("NFKC", text.split("</think>")[0])
    # every claim the chain makes, a sum and its result, with where it starts and ends: 5+6=11, and 38+25：…；得63
    claims = sorted((m.start(), m.end(), m.group(1), int(m.group(2))) for pattern in (_EQUATION, _COLUMN) for m in pattern.finditer(think))
    if not claims:
        return 0.0
    stated = Counter(question_numbers(question))
    operands = [abs(int(t)) for t in _TERM.findall(claims[0][2])]
    copied = sum((Counter(operands) & stated).values()) / len(operands)
    true = sum(sum(int(t) for t in _TERM.findall(left)) == right for _, _, left, right in claims) / len(claims)
    answered = extract_number(extract_answer(text))
    last = max(claims, key=lambda c: c[1])[3]
    consistent = float("<answer>" in text and answered is not None and answered == last)
    return (copied + true + consistent) / 3


def chain_reward(completions: list, prompts: list | None = None, **kwargs) -> list[float | None]:
    """Return each completion's ``chain_score`` against its prompt's question (the last user turn); None without prompts.

    >>> chain_reward(["<think>现在有5+6=11</think><answer>11</answer>", "<answer>11</answer>"], prompts=[[{"role": "user", "content": "小明有5个，又得到6个，现在有几个？"}]] * 2)
    [1.0, 0.0]
    """
    if prompts is None:
        return [None] * len(completions)
    return [chain_score(prompt_text(prompt), completion_text(completion)) for completion, prompt in zip(completions, prompts, strict=True)]


RewardFunction = Callable[..., list[float | None]]

# The registry: every rule reward by the name TRL logs it under. GRPO passes them (in this order) to GRPOTrainer
# with RewardWeights.weights() as reward_weights; DPO's on-policy ranking scores with weighted_reward.
REWARDS: dict[str, RewardFunction] = {f.__name__: f for f in (accuracy_reward, format_reward, language_reward, chain_reward)}


class RewardWeights(BaseModel):
    """Which rule rewards score a completion and how much each counts; 0 leaves a reward out (not computed, not logged)."""

    model_config = ConfigDict(extra="forbid")

    accuracy_weight: float = Field(1.0, ge=0, le=100, description="Weight of the accuracy reward (1 when the answer's number is right).")
    format_weight: float = Field(0.5, ge=0, le=100, description="Weight of the format reward (1 for `<think>…</think><answer>…</answer>`, 0.2 per well-placed tag otherwise).")
    language_weight: float = Field(0.25, ge=0, le=100, description="Weight of the language reward (the share of Han characters among the letters written).")
    chain_weight: float = Field(
        0.0, ge=0, le=100, description="Weight of the chain reward (operands from the question, true equations, answer = the chain's result); 0: off."
    )

    @model_validator(mode="after")
    def _some_weight(self) -> RewardWeights:
        if not any(self.weights().values()):
            raise ValueError("at least one of accuracy_weight, format_weight, language_weight, chain_weight must be above 0")
        return self

    def weights(self) -> dict[str, float]:
        """Return each registered reward's weight, by name, in ``REWARDS`` order.

        >>> RewardWeights(format_weight=0).weights()
        {'accuracy_reward': 1.0, 'format_reward': 0.0, 'language_reward': 0.25, 'chain_reward': 0.0}
        """
        return {"accuracy_reward": self.accuracy_weight, "format_reward": self.format_weight, "language_reward": self.language_weight, "chain_reward": self.chain_weight}

    def active(self) -> dict[str, float]:
        """Return the weights above 0, by name, in ``REWARDS`` order: the rewards that score.

        >>> RewardWeights(format_weight=0).active()
        {'accuracy_reward': 1.0, 'language_reward': 0.25}
        """
        return {name: weight for name, weight in self.weights().items() if weight > 0}


assert list(RewardWeights.model_construct().weights()) == list(REWARDS), "every registered reward has one weight field, in registry order"


def weighted_reward(completions: list, weights: RewardWeights, **columns) -> list[float | None]:
    """Return each completion's score: the weighted sum of the active rewards that could score it, None when none could.

    ``columns`` are the dataset columns the rewards read (``answer``), one value per completion — as GRPO passes them.

    >>> weighted_reward(["<think>十二减三得九</think><answer>21</answer>", "<answer>20</answer>", "twenty-one"], RewardWeights(), answer=["21", "21", "21"])
    [1.75, 0.2, 0.0]
    >>> weighted_reward(["<answer>21</answer>", "<answer>21</answer>"], RewardWeights(format_weight=0, language_weight=0), answer=["21", "见图"])
    [1.0, None]
    """
    scores: list[float | None] = [None] * len(completions)
    for name, weight in weights.active().items():
        for i, reward in enumerate(REWARDS[name](completions, **columns)):
            if reward is not None:
                scores[i] = (scores[i] or 0.0) + weight * reward
    return scores


def rule_reward(completions: list, answer: list[str], **kwargs) -> list[float | None]:
    """Return accuracy + format + language per completion (0 to 3): the registry's score with every weight 1.

    >>> rule_reward(["<think>十二减三得九</think><answer>21</answer>", "twenty-one"], answer=["21", "21"])
    [3.0, 0.0]
    """
    return weighted_reward(completions, RewardWeights(accuracy_weight=1, format_weight=1, language_weight=1), answer=answer)
