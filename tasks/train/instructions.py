"""Instruction data in the formats users already have, normalised to one shape: a conversation as a list of
``{"role", "content"}`` messages (system first if any, then user/assistant turns, ending with the assistant).

Read from JSON lines (or a JSON array, as the original ``alpaca_data.json``) or a ``datasets`` folder
(``save_to_disk``), in any of three row shapes:

- alpaca: ``instruction``, ``input`` (may be empty), ``output``; optional ``system`` and ``history``
  (earlier ``[question, answer]`` turns, as LLaMA-Factory writes them);
- sharegpt: ``conversations`` of ``{"from": "system"|"human"|"gpt", "value": ...}``;
- messages: ``messages`` of ``{"role": "system"|"user"|"assistant", "content": ...}`` (OpenAI / TRL).

A row that fits none of them, or breaks the turn order, stops the load with an ``InstructionError`` that
names the file and line: a silently skipped row is a silently different training set.
The chat template renders the conversations later (TRL, with the loss on the assistant's tokens only).
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from pathlib import Path
from typing import Literal

from tasks.store import resolve_data_path

DataFormat = Literal["auto", "alpaca", "sharegpt", "messages"]
Message = dict[str, str]
Conversation = list[Message]

ROLES = ("system", "user", "assistant")
# ShareGPT's speaker names (and the aliases other exporters use) → chat roles
_SHAREGPT_ROLES = {"system": "system", "human": "user", "user": "user", "gpt": "assistant", "assistant": "assistant", "chatgpt": "assistant", "bing": "assistant"}


class InstructionError(ValueError):
    """An instruction row that cannot become a conversation: the message names the file, the line and the field."""


def detect_format(row: dict) -> Literal["alpaca", "sharegpt", "messages"]:
    """Return the format of one row by its keys; raise InstructionError when none fits.

    >>> detect_format({"instruction": "翻译", "input": "", "output": "好"})
    'alpaca'
    >>> detect_format({"messages": []})
    'messages'
    """
    if "messages" in row:
        return "messages"
    if "conversations" in row:
        return "sharegpt"
    if "instruction" in row and "output" in row:
        return "alpaca"
    raise InstructionError(f"a row needs 'messages', 'conversations', or 'instruction' and 'output'; it has {sorted(row)}")


def _text(value: object, field: str) -> str:
    if not isinstance(value, str):
        raise InstructionError(f"'{field}' must be a string, got {type(value).__name__}")
    return value


def alpaca_messages(row: dict) -> Conversation:
    """Return an alpaca row as messages: the instruction and the input (a blank line apart) are the user turn.

    >>> alpaca_messages({"instruction": "给这段话拟个标题。", "input": "今天下雨。", "output": "下雨"})
    [{'role': 'user', 'content': '给这段话拟个标题。\\n\\n今天下雨。'}, {'role': 'assistant', 'content': '下雨'}]
    """
    instruction = _text(row.get("instruction"), "instruction")
    extra = _text(row.get("input") or "", "input")
    messages: Conversation = []
    if row.get("system"):
        messages.append({"role": "system", "content": _text(row["system"], "system")})
    for i, turn in enumerate(row.get("history") or []):
        if not (isinstance(turn, (list, tuple)) and len(turn) == 2):
            raise InstructionError(f"'history[{i}]' must be a [question, answer] pair")
        messages += [{"role": "user", "content": _text(turn[0], f"history[{i}][0]")}, {"role": "assistant", "content": _text(turn[1], f"history[{i}][1]")}]
    messages.append({"role": "user", "content": f"{instruction}\n\n{extra}" if extra.strip() else instruction})
    messages.append({"role": "assistant", "content": _text(row.get("output"), "output")})
    return messages


def sharegpt_messages(row: dict) -> Conversation:
    """Return a sharegpt row's ``conversations`` as messages (human → user, gpt → assistant)."""
    turns = row.get("conversations")
    if not isinstance(turns, list):
        raise InstructionError("'conversations' must be a list of {from, value} turns")
    messages = []
    for i, turn in enumerate(turns):
        if not isinstance(turn, dict) or "from" not in turn or "value" not in turn:
            raise InstructionError(f"'conversations[{i}]' must be an object with 'from' and 'value'")
        role = _SHAREGPT_ROLES.get(str(turn["from"]).lower())
        if role is None:
            raise InstructionError(f"'conversations[{i}].from' is {turn['from']!r}; expected one of system, human, gpt")
        messages.append({"role": role, "content": _text(turn["value"], f"conversations[{i}].value")})
    return messages


def messages_messages(row: dict) -> Conversation:
    """Return a messages row's ``messages``, keeping only role and content."""
    turns = row.get("messages")
    if not isinstance(turns, list):
        raise InstructionError("'messages' must be a list of {role, content} messages")
    out = []
    for i, turn in enumerate(turns):
        if not isinstance(turn, dict) or "role" not in turn or "content" not in turn:
            raise InstructionError(f"'messages[{i}]' must be an object with 'role' and 'content'")
        out.append({"role": _text(turn["role"], f"messages[{i}].role"), "content": _text(turn["content"], f"messages[{i}].content")})
    return out


_CONVERTERS = {"alpaca": alpaca_messages, "sharegpt": sharegpt_messages, "messages": messages_messages}


def check_conversation(messages: Conversation) -> Conversation:
    """Return ``messages`` when they make a trainable chat; raise InstructionError saying what is wrong.

    Trainable: known roles, a system message only first, user and assistant taking turns, the last
    message the assistant's and no assistant message empty (the loss is on the assistant's tokens).
    """
    if not messages:
        raise InstructionError("the conversation is empty")
    turns = messages[1:] if messages[0]["role"] == "system" else messages
    for i, m in enumerate(messages):
        if m["role"] not in ROLES:
            raise InstructionError(f"message {i} has role {m['role']!r}; expected one of {', '.join(ROLES)}")
    if not turns:
        raise InstructionError("the conversation has a system message and nothing else")
    for i, m in enumerate(turns):
        expected = "user" if i % 2 == 0 else "assistant"
        if m["role"] != expected:
            raise InstructionError(f"turn {i} is {m['role']!r} where {expected!r} was expected (user and assistant take turns after an optional system message)")
        if expected == "assistant" and not m["content"].strip():
            raise InstructionError(f"turn {i}: the assistant's reply is empty")
    if turns[-1]["role"] != "assistant":
        raise InstructionError("the conversation must end with the assistant's reply")
    return messages


def to_messages(row: object, data_format: DataFormat = "auto") -> Conversation:
    """Return one row (of ``data_format``, or detected from its keys) as a checked conversation."""
    if not isinstance(row, dict):
        raise InstructionError(f"a row must be a JSON object, got {type(row).__name__}")
    fmt = detect_format(row) if data_format == "auto" else data_format
    return check_conversation(_CONVERTERS[fmt](row))


def _rows(path: Path) -> Iterator[tuple[str, object]]:
    """Yield (where, row) for every row of a JSON-lines file, a JSON array or a ``datasets`` folder."""
    if path.is_dir():
        import datasets

        data = datasets.load_from_disk(str(path))
        if isinstance(data, datasets.DatasetDict):
            if "train" not in data:
                raise InstructionError(f"{path}: a DatasetDict needs a 'train' split; it has {sorted(data)}")
            data = data["train"]
        for i, row in enumerate(data):
            yield f"{path} row {i}", row
        return
    text = path.read_text(encoding="utf-8")
    if path.suffix == ".json" and text.lstrip().startswith("["):
        try:
            rows = json.loads(text)
        except json.JSONDecodeError as e:
            raise InstructionError(f"{path}: not valid JSON ({e})") from None
        for i, row in enumerate(rows):
            yield f"{path} item {i}", row
        return
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as e:
            raise InstructionError(f"{path} line {n}: not valid JSON ({e.msg})") from None
        yield f"{path} line {n}", row


def load_conversations(paths: list[str | Path], data_format: DataFormat = "auto") -> list[Conversation]:
    """Return every row of ``paths`` as a conversation; raise InstructionError naming the file and line of a bad row."""
    conversations = []
    for p in paths:
        path = resolve_data_path(p)
        if not path.exists():
            raise InstructionError(f"{path}: no such file or folder")
        for where, row in _rows(path):
            try:
                conversations.append(to_messages(row, data_format))
            except InstructionError as e:
                raise InstructionError(f"{where}: {e}") from None
    if not conversations:
        raise InstructionError(f"no instruction rows in {', '.join(map(str, paths))}")
    return conversations


def split_conversations(conversations: list[Conversation], eval_fraction: float, seed: int) -> tuple[list[Conversation], list[Conversation]]:
    """Return (train, held out): a seeded shuffle, ``eval_fraction`` of it held out (at least one row when > 0, never all)."""
    order = list(range(len(conversations)))
    random.Random(seed).shuffle(order)
    n_eval = min(max(round(len(order) * eval_fraction), 1 if eval_fraction > 0 else 0), len(order) - 1)
    return [conversations[i] for i in order[n_eval:]], [conversations[i] for i in order[:n_eval]]


def prompt_of(conversation: Conversation) -> Conversation:
    """Return the conversation up to (not including) its last assistant reply: what a model is asked to complete."""
    return conversation[:-1]


def tokenize_conversation(tokenizer, conversation: Conversation, max_length: int) -> tuple[list[int], list[int]]:
    """Return (input_ids, labels) of a conversation through the chat template: labels are the ids on the
    assistant's tokens (``{% generation %}`` spans, ``<|im_end|>`` included) and -100 elsewhere, cut at ``max_length``.

    The same rendering and mask as TRL's SFTTrainer with ``assistant_only_loss``, for evaluating any model.
    """
    enc = tokenizer.apply_chat_template(conversation, tokenize=True, return_dict=True, return_assistant_tokens_mask=True)
    ids = list(enc["input_ids"])[:max_length]
    mask = list(enc["assistant_masks"])[:max_length]
    return ids, [t if m else -100 for t, m in zip(ids, mask, strict=True)]
