"""Labels from evidence the chain already has, beyond the hand-labelled seed set.

* ``reference`` (high): articles of the bundled reference text (People's Daily 1998) that the reference LM is
  *not* trained on (``reference_label_share`` of them, chosen by a hash of the text), so their perplexity is
  what new news gets.
* ``boilerplate`` (low): the visible text of real pages that the extract stage does not keep — navigation,
  related-article lists, footers, share bars — one example per run of consecutive dropped lines. The pages'
  kept text comes from the extract stage's own library (``extract_main_text``), read-only.
* corruptions of the ``high`` examples, the shapes of SEO "伪原创" spam and of broken text:
  ``shuffled_words`` (low: the words of the text in random order), ``keyword_stuffing`` (low: its most frequent
  words strung together and glued between its sentences), ``repeated`` (low: one of its sentences 4-8 times,
  the shape of spun and scraped pages), ``shuffled_sentences`` (medium: every sentence fluent,
  the whole incoherent) and ``truncated`` (medium: a fragment cut mid-sentence). The medium ones stay medium on
  purpose: each sentence is good Chinese, and calling such text low would teach the model that short fluent text
  — a review, a reply — is low.
* The clean stage's spam and repetition rejects (``weak``) and the trusted sources' kept documents come from
  tasks/quality/labels.py; the optional LLM annotator from tasks/quality/annotate.py.

Every example says where it came from in ``origin``; the training summary counts them per origin.
"""

from __future__ import annotations

import hashlib
import random
import re
from collections import Counter
from collections.abc import Callable, Iterable
from pathlib import Path

from tasks.quality.labels import Example

CORRUPTIONS = ("shuffled_words", "keyword_stuffing", "repeated", "shuffled_sentences", "truncated")
_SENTENCE = re.compile(r"[^。！？!?；;\n]+[。！？!?；;]*")
_HAN_WORD = re.compile(r"^[\u4e00-\u9fff]{2,}$")
_BLOCK_TAGS = ("p", "div", "li", "tr", "td", "th", "h1", "h2", "h3", "h4", "h5", "h6", "dt", "dd", "section",
               "article", "header", "footer", "nav", "aside", "ul", "ol", "table", "br", "form", "blockquote")


def held_for_labels(text: str, share: float) -> bool:
    """Return True for the ``share`` of texts (by a hash of the text, the same in every process) kept out of the LM."""
    return int.from_bytes(hashlib.sha256(text.encode("utf-8", "replace")).digest()[:8], "big") < share * 2**64


def split_reference(paragraphs: list[str], share: float, group: int = 4) -> tuple[list[str], list[str]]:
    """Return (paragraphs for the LM, paragraphs held out for labels): groups of ``group`` consecutive paragraphs,
    each group on one side, chosen by ``held_for_labels`` of its first paragraph."""
    lm, held = [], []
    for start in range(0, len(paragraphs), group):
        chunk = paragraphs[start : start + group]
        (held if held_for_labels(chunk[0], share) else lm).extend(chunk)
    return lm, held


def reference_examples(paragraphs: list[str], max_examples: int, seed: int = 0, min_chars: int = 20) -> list[Example]:
    """Return up to ``max_examples`` `high` examples, each 2-6 consecutive held-out reference paragraphs."""
    rng = random.Random(seed)
    out: list[Example] = []
    at = 0
    while at < len(paragraphs) and len(out) < max_examples:
        n = rng.randint(2, 6)
        text = "\n".join(paragraphs[at : at + n])
        at += n
        if len(text) >= min_chars:
            out.append({"text": text, "label": "high", "reason": "reference text, held out of the LM", "origin": "reference"})
    return out


def visible_lines(html: str) -> list[str]:
    """Return the visible text lines of an HTML page's body, in order (scripts, styles and the like left out)."""
    from bs4 import BeautifulSoup

    from tasks.extract.html import NEVER_TEXT_TAGS

    soup = BeautifulSoup(html, "lxml")
    for tag in soup.find_all(list(NEVER_TEXT_TAGS)):
        tag.decompose()
    root = soup.body or soup
    for tag in root.find_all(_BLOCK_TAGS):
        tag.insert_before("\n")
        tag.insert_after("\n")
    return [" ".join(line.split()) for line in root.get_text().split("\n") if line.strip()]


def _squeeze(text: str) -> str:
    return "".join(text.split())


def boilerplate_blocks(html: str | bytes, min_chars: int = 20) -> list[str]:
    """Return the page's runs of consecutive visible lines that the extract stage does not keep, each ``\\n``-joined."""
    from tasks.crawl.charset import decode_html
    from tasks.extract.config import ExtractConfig
    from tasks.extract.html import extract_main_text

    if isinstance(html, bytes):
        html, _ = decode_html(html, None)
    kept = _squeeze(extract_main_text(html, ExtractConfig(keep_title=True)).text)
    blocks, run = [], []
    for line in visible_lines(html):
        if _squeeze(line) in kept:
            if run:
                blocks.append("\n".join(run))
            run = []
        else:
            run.append(line)
    if run:
        blocks.append("\n".join(run))
    return [b for b in blocks if len(_squeeze(b)) >= min_chars]


def html_files(paths: Iterable[Path]) -> list[Path]:
    """Return the .html / .htm files named or found (recursively) under the paths, sorted."""
    found: set[Path] = set()
    for path in map(Path, paths):
        if path.is_dir():
            found.update(p for p in path.rglob("*") if p.suffix.lower() in (".html", ".htm") and p.is_file())
        elif path.is_file():
            found.add(path)
    return sorted(found)


def boilerplate_examples(paths: Iterable[Path], max_examples: int, seed: int = 0, min_chars: int = 20) -> list[Example]:
    """Return `low` examples: the dropped blocks of every page under ``paths`` (a seeded sample of max_examples)."""
    out: list[Example] = []
    for page in html_files(paths):
        for block in boilerplate_blocks(page.read_bytes(), min_chars):
            out.append({"text": block, "label": "low", "reason": f"not kept by extract: {page.name}", "origin": "boilerplate"})
    if len(out) > max_examples:
        keep = sorted(random.Random(seed).sample(range(len(out)), max_examples))
        out = [out[i] for i in keep]
    return out


def sentences(text: str) -> list[str]:
    """Return the sentences of a text (split after 。！？；, kept with their punctuation)."""
    return [s.strip() for s in _SENTENCE.findall(text) if s.strip()]


def shuffled_words(text: str, rng: random.Random, words: Callable[[str], list[str]]) -> str:
    """Return the text's words in random order (punctuation tokens shuffled along), each line on its own."""
    lines = []
    for line in text.split("\n"):
        tokens = words(line)
        rng.shuffle(tokens)
        lines.append("".join(tokens))
    return "\n".join(line for line in lines if line)


def keyword_stuffing(text: str, rng: random.Random, words: Callable[[str], list[str]]) -> str:
    """Return the text's most frequent Han words strung together, or glued between its first sentences."""
    counts = Counter(w for w in words(text) if _HAN_WORD.match(w))
    top = [w for w, _ in counts.most_common(6)] or [text[:4]]
    sep = rng.choice([" ", "，", "|", "、", " "])
    if rng.random() < 0.5:
        items = [rng.choice(top) + rng.choice(top) if rng.random() < 0.5 else rng.choice(top) for _ in range(rng.randint(10, 24))]
        return sep.join(items)
    glue = "".join(rng.sample(top, min(len(top), 3)))
    return "".join(s + glue + sep for s in sentences(text)[:6])


def repeated(text: str, rng: random.Random) -> str | None:
    """Return one of the text's sentences repeated 4-8 times, one per line, or None when it has none of 10+ characters."""
    parts = [s for s in sentences(text) if len(s) >= 10]
    if not parts:
        return None
    return "\n".join([rng.choice(parts)] * rng.randint(4, 8))


def shuffled_sentences(text: str, rng: random.Random) -> str | None:
    """Return the text's sentences in random order, or None when it has fewer than three."""
    parts = sentences(text)
    if len(parts) < 3:
        return None
    order = list(range(len(parts)))
    while order == sorted(order):
        rng.shuffle(order)
    return "".join(parts[i] for i in order)


def truncated(text: str, rng: random.Random) -> str | None:
    """Return a fragment of 20-60 characters cut from inside a sentence, or None when the text is too short."""
    flat = text.replace("\n", "")
    if len(flat) < 40:
        return None
    n = rng.randint(20, min(60, len(flat) - 10))
    start = rng.randint(1, len(flat) - n)
    return flat[start : start + n]


def corrupted_examples(
    positives: list[Example],
    words: Callable[[str], list[str]],
    per_kind: int,
    seed: int = 0,
    min_chars: int = 20,
    kinds: Iterable[str] = CORRUPTIONS,
) -> list[Example]:
    """Return up to ``per_kind`` examples of each corruption in ``kinds``, made from a seeded sample of the positives."""
    rng = random.Random(seed)
    pool = positives[:]
    rng.shuffle(pool)
    wanted = set(kinds)
    made: dict[str, list[Example]] = {kind: [] for kind in CORRUPTIONS if kind in wanted}
    for ex in pool:
        if all(len(v) >= per_kind for v in made.values()):
            break
        text = ex["text"]
        candidates = {
            "shuffled_words": ("low", shuffled_words(text, rng, words)),
            "keyword_stuffing": ("low", keyword_stuffing(text, rng, words)),
            "repeated": ("low", repeated(text, rng)),
            "shuffled_sentences": ("medium", shuffled_sentences(text, rng)),
            "truncated": ("medium", truncated(text, rng)),
        }
        for kind, (label, new) in candidates.items():
            if kind in made and new and new != text and len(new) >= min_chars and len(made[kind]) < per_kind:
                made[kind].append({"text": new, "label": label, "reason": f"{kind} of a {ex['origin']} high text", "origin": kind})
    return [ex for kind in made for ex in made[kind]]
