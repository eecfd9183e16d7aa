"""Which person names in a document are personal data: the NER's PER entities, kept or masked by the names policy.

The names come from Baidu LAC (``ner.py``); this module decides which of them are private:

* ``all``: every PER entity, and every other mention of it in the document.
* ``contextual``: a name within ``CONTEXT_CHARS`` characters (inside one sentence) of a personal
  identifier (phone, ID card, bank card, e-mail, QQ/WeChat, plate, IP, street address) or of a form
  label (收件人, 联系人, 姓名, 户名, 家住 …), or written right next to a private role (患者, 房东,
  租客, 失主, 本人 …), is a private person: it and every other mention of it are masked. Other names — officials, reporters, authors, people in the news — are
  kept, and so is a name written right after a public role (记者, 通讯员, 书记, 总统 …) or right
  before a public title (…主席, …市长), even next to a cue. The NER runs only on the stretches of
  text around identifiers and cues, so news without personal data costs the pattern scan alone.

Under both: a name written as the value of a name field (姓名：…, 联系人 …, 患者：…, see
``NAME_LABELS``) is masked even where the NER misses it (rare surnames: 亓官正清, 仉大明), unless the
value is a refusal, a department, anonymous, or read by LAC as a place, date, pronoun or number. Glued to its
label or role with no separator (患者谢艳，女 / 租客单雷签订), where the clause misleads LAC (谢 thank, 单 single), the
continuation is read again after 我叫, and a person LAC then tags right at its start is the name.

Everywhere: a surname with a title or 某 (李女士, 王某, 张总) is how Chinese text already writes
people anonymously and is kept, as are names on the allow-list (``DeidConfig.name_allow_list``,
empty by default: on People's Daily a list of 86 historical figures cost 4 points of recall under
``all`` for under one of precision). The cue and role lists are
written from the forms, notices and news bylines these words occur in, not from any one corpus;
``benchmarks/deid_eval.py`` measures both policies on text they were not tuned on.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

from tasks.deid.detectors import Span

CONTEXT_CHARS = 24  # a cue or identifier this close (same sentence) makes a name private: one form field or clause away
_NER_MARGIN = 8  # characters of text beyond the window the NER also sees, so a name at the window's edge is read whole

# Form labels: the name written within CONTEXT_CHARS of one is a private individual whose data is being written down.
FORM_CUES = (
    "收件人 寄件人 收货人 发货人 联系人 紧急联系人 姓名 名字 户名 开户名 开户人 持卡人 户主 用户名 账户名 身份证 "
    "收货地址 送货地址 家庭住址 家庭地址 家住 住址 现住 居住地 户籍"
).split()
# Roles of private individuals; news uses them in passing too (为乘客服务, 他本人), so they make only the
# name written right after them private (房东张建国, 患者：李秀英), and 本人 the name right before it.
ROLE_CUES = (
    "本人 患者 病人 病患 家长 学生家长 监护人 失主 房东 租客 租户 业主 住户 客户 顾客 买家 卖家 学员 考生 乘客 车主 "
    "借款人 贷款人 出借人 担保人 申请人 投保人 被保险人 受益人 求职者 应聘者 会员"
).split()
CUES = FORM_CUES + ROLE_CUES
_ROLE_GAP = 1  # characters allowed between a role and its name: a colon or a space
# Roles said right before a public person's name (本报记者 张晓明, 总统克林顿): not private, even next to a cue.
PUBLIC_BEFORE = (
    "记者 本报记者 通讯员 特约记者 实习生 编辑 责任编辑 责编 主编 作者 撰稿 撰文 摄影 评论员 主持人 发言人 "
    "主席 副主席 总理 副总理 总统 副总统 首相 国王 总书记 书记 省长 市长 县长 区长 镇长 部长 局长 厅长 主任 "
    "委员 代表 大使 院士 教授 总裁 董事长 总经理 院长 校长 导演 演员 歌手 教练 队长 运动员 选手"
).split()
# Titles said right after a public person's name (江泽民主席, 王小明市长).
PUBLIC_AFTER = (
    "主席 总理 总统 首相 总书记 书记 省长 市长 县长 区长 部长 局长 厅长 委员 代表 大使 院士 教授 总裁 董事长 "
    "同志 记者 通讯员 报道 摄"
).split()

# Labels whose value is a person's name (姓名：亓官正清, 联系人 帅强, 患者：仉大明). The NER, trained on news,
# misses names with rare surnames; written as such a field's value, a name is read as one anyway.
NAME_LABELS = (
    "姓名 名字 真实姓名 联系人 紧急联系人 收件人 寄件人 收货人 发货人 户名 开户名 开户人 持卡人 户主 失主 患者 病人 "
    "房东 租客 租户 业主 借款人 担保人 申请人 投保人 被保险人 受益人 监护人 家长 学员 考生 乘客 车主 客户"
).split()
# What a field's value may be followed by: the next field's label, or anything that is not a Han character.
_NEXT_FIELD = "电话 手机 联系 身份证 证件 卡号 账号 地址 住址 家住 微信 邮箱 性别 年龄 QQ 男 女".split()
# Values of a name field that are not names: refusals, placeholders, and departments or shops (…部, …公司).
_NOT_NAMES = frozenset("本人 未知 不详 待定 同上 见下 见上 保密 暂无 隐私 匿名 无名 某某 如下 另告 略".split())
_ORG_END = tuple("部处科室组办局院所队站厅店司行会社厂校中心")
# LAC's kinds that a name never is: places, dates, pronouns, numbers, measure words, function words, punctuation.
_NOT_NAME_KINDS = frozenset("LOC TIME r m q p c u xc w f s t d".split())


def _alternation(words: Iterable[str]) -> str:
    return "|".join(sorted(map(re.escape, set(words)), key=len, reverse=True))


_LABELLED_NAME = re.compile(
    rf"(?:{_alternation(NAME_LABELS)})(?:[ \t]*[:：][ \t]*|[ \t]+)"
    rf"([\u4e00-\u9fff]{{2,4}}?(?:·[\u4e00-\u9fff]{{1,6}})?)(?=$|[^\u4e00-\u9fff·]|{_alternation(_NEXT_FIELD)})"
)
_LABEL_CHARS = frozenset(w[0] for w in NAME_LABELS)
# A label or private role glued to what follows it (患者谢艳，…, 租客单雷签订…): no separator says where a name
# ends, and LAC, reading the whole clause, often takes a rare or verb-like name for words (谢 thank, 单 single).
_GLUED_LABELS = tuple(w for w in dict.fromkeys(NAME_LABELS + ROLE_CUES) if w != "本人")
_GLUED_NAME = re.compile(rf"(?:{_alternation(_GLUED_LABELS)})(?=[\u4e00-\u9fff]{{2}})")
# What a glued label's continuation is read after: LAC, shown it as the complement of 我叫, tags a name PER and a
# word as a word (我叫谢艳，女 / 单雷签订了 / 李华同学: the name alone PER; 家属表示, 出院后, 满意度, 安全须知: none).
NAME_FRAME = "我叫"
_GLUED_READ = 8  # characters of the continuation read with it: enough for a four-character name and what ends it


_CUE_RE = re.compile(_alternation(CUES))
_ROLES = frozenset(ROLE_CUES)
_CUE_CHARS = frozenset(w[0] for w in CUES)  # a text without any cue's first character needs no regex pass
_PUBLIC_BEFORE_RE = re.compile(rf"(?:{_alternation(PUBLIC_BEFORE)})[\s:：]{{0,2}}$")
_PUBLIC_AFTER_RE = re.compile(rf"\s?(?:{_alternation(PUBLIC_AFTER)})")
_SENTENCE_END = re.compile(r"[。！？!?]+|\n\s*\n")
# Already anonymous: a surname with a title or 某 (李女士, 王某某, 张总, 刘老师). A nickname (小王, 老谭) is
# masked under all (People's Daily's annotators tag it nr), not made private by context.
_ANONYMOUS = re.compile(r".{1,2}(?:某+|女士|先生|小姐|老师|师傅|阿姨|大爷|大妈|同学|医生|总|工|经理|书记|局长|主任|姓).*")
_NICKNAME = re.compile(r"[小老阿].")
_ROLE_WORDS = tuple(PUBLIC_BEFORE + ROLE_CUES)  # a field value starting with one (记者王磊) is left to the NER's reading


def is_anonymous(name: str) -> bool:
    """Return whether a PER entity is a way of not naming someone (李女士, 王某, 张总) or too short to be a name.

    >>> [is_anonymous(n) for n in ("李女士", "王某某", "王总都", "小王", "王秀英", "欧阳娜娜")]
    [True, True, True, False, False, False]
    """
    return len(name) < 2 or bool(_ANONYMOUS.fullmatch(name))


def sentences(text: str) -> list[tuple[int, int]]:
    """Return the (start, end) of each sentence of ``text``: cut after 。！？ and at blank lines."""
    out, start = [], 0
    for m in _SENTENCE_END.finditer(text):
        out.append((start, m.end()))
        start = m.end()
    if start < len(text):
        out.append((start, len(text)))
    return out


def cue_spans(text: str, roles: bool = True) -> list[tuple[int, int]]:
    """Return where personal-data cue words stand in ``text`` (form labels only, unless ``roles``)."""
    if not _CUE_CHARS.intersection(text):
        return []
    return [m.span() for m in _CUE_RE.finditer(text) if roles or m.group() not in _ROLES]


def is_public(text: str, start: int, end: int) -> bool:
    """Return whether the name at text[start:end] is written as a public person's: after a public role or before a public title."""
    return bool(_PUBLIC_BEFORE_RE.search(text, max(0, start - 8), start) or _PUBLIC_AFTER_RE.match(text, end))


def windows(text: str, triggers: Sequence[tuple[int, int]], reach: int) -> list[tuple[int, int]]:
    """Return the merged stretches of text within ``reach`` characters of a trigger, each inside the trigger's sentence."""
    bounds = sentences(text)
    out: list[tuple[int, int]] = []
    k = 0
    for start, end in sorted(triggers):
        while k < len(bounds) - 1 and bounds[k][1] <= start:
            k += 1
        lo, hi = max(bounds[k][0], start - reach), min(max(bounds[k][1], end), end + reach)
        if out and lo <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], hi))
        else:
            out.append((lo, hi))
    return out


class NameFinder:
    """Callable over a batch: (texts, the identifier spans found in each) → the private person-name spans of each.

    Holds the NER (one ``PersonTagger``, built once per worker by the stage's step cache).
    """

    def __init__(self, tagger, policy: str = "contextual", allow: Iterable[str] = ()):
        self.tagger = tagger
        self.policy = policy
        self.allow = frozenset(allow)

    def __call__(self, texts: list[str], found: list[list[Span]]) -> list[list[Span]]:
        if self.policy == "off":
            return [[] for _ in texts]
        if self.policy == "all":
            tagged, labelled = self.tagger.tag(texts), self.labelled_names(texts)
            return [
                self._mentions(text, self._names(text, spans) | extra, bounds)
                for text, (spans, bounds), extra in zip(texts, tagged, labelled)
            ]
        return self._contextual(texts, found)

    def _contextual(self, texts: list[str], found: list[list[Span]]) -> list[list[Span]]:
        """Return the names standing near an identifier or a cue, and their other mentions."""
        pieces: list[tuple[int, int, int]] = []  # (text index, start, end) of each stretch the NER reads
        triggers: list[list[tuple[int, int]]] = []
        for i, text in enumerate(texts):
            near = [(s.start, s.end) for s in found[i] if s.kind != "person"] + cue_spans(text)
            triggers.append(near)
            pieces += [(i, lo, hi) for lo, hi in windows(text, near, CONTEXT_CHARS + _NER_MARGIN)]  # roles need less; one window serves both
        entities = self.tagger([texts[i][lo:hi] for i, lo, hi in pieces]) if pieces else []
        private: list[set[str]] = [set() for _ in texts]
        for (i, lo, _), spans in zip(pieces, entities):
            text = texts[i]
            for a, b in spans:
                start, end = lo + a, lo + b
                if self._private(text, start, end, triggers[i]):
                    private[i].add(text[start:end])
        for i, names in enumerate(self.labelled_names(texts)):
            private[i] |= names
        return [self._mentions(text, names) for text, names in zip(texts, private)]

    def labelled_names(self, texts: list[str]) -> list[set[str]]:
        """Return the names written as the value of a name field (姓名：…, 联系人 …, 患者：…) in each text.

        A value is a name unless it is a refusal or placeholder (本人, 不详), a department or shop
        (客服部, …公司), anonymous (王女士), public, or read by LAC as a place, date, pronoun or number.
        """
        found: list[tuple[int, str, str]] = []  # (text index, name, the name with what follows it, for LAC)
        for i, text in enumerate(texts):
            if not _LABEL_CHARS.intersection(text):
                continue
            for m in _LABELLED_NAME.finditer(text):
                name = m.group(1)
                if not self._not_a_name(text, m.start(1), m.end(1)):
                    found.append((i, name, text[m.start(1) : m.end(1) + 4]))
        out: list[set[str]] = [set() for _ in texts]
        for (i, name, seen), kinds in zip(found, self.tagger.char_kinds([s for _, _, s in found])):
            if not _NOT_NAME_KINDS.intersection(kinds[: len(name)]):
                out[i].add(name)
        for i, name in self.glued_names(texts):
            out[i].add(name)
        return out

    def glued_names(self, texts: list[str]) -> list[tuple[int, str]]:
        """Return (text index, name) for each name written glued after a name label or private role (患者谢艳，).

        The continuation after the label is read again after ``NAME_FRAME``; a person LAC then tags right at its
        start, 2–4 characters, is the name. Refusals, departments, anonymous and public forms are left out as for
        field values.
        """
        found: list[tuple[int, int]] = []  # (text index, where the continuation starts)
        for i, text in enumerate(texts):
            if _LABEL_CHARS.intersection(text) or _CUE_CHARS.intersection(text):
                found += [(i, m.end()) for m in _GLUED_NAME.finditer(text)]
        if not found:
            return []
        at = len(NAME_FRAME)
        reads = [NAME_FRAME + texts[i][start : start + _GLUED_READ] for i, start in found]
        names = []
        for (i, start), kinds in zip(found, self.tagger.char_kinds(reads)):
            n = 0
            while at + n < len(kinds) and kinds[at + n] == "PER":
                n += 1
            if 2 <= n <= 4 and not self._not_a_name(texts[i], start, start + n):
                names.append((i, texts[i][start : start + n]))
        return names

    def _not_a_name(self, text: str, start: int, end: int) -> bool:
        """Whether the field value (or glued name) ``text[start:end]`` names no private person: a refusal or
        placeholder (本人, 不详), a department or shop (…部, …公司), allowed, anonymous (王女士), a nickname, a role
        word, or public."""
        name = text[start:end]
        if name in _NOT_NAMES or name.endswith(_ORG_END) or name in self.allow or is_anonymous(name):
            return True
        return bool(_NICKNAME.fullmatch(name)) or name.startswith(_ROLE_WORDS) or is_public(text, start, end)

    def _private(self, text: str, start: int, end: int, triggers: list[tuple[int, int]]) -> bool:
        name = text[start:end]
        if name in self.allow or is_anonymous(name) or _NICKNAME.fullmatch(name) or is_public(text, start, end):
            return False  # a nickname beside a phone (客服小王的电话) names no one; under all it is masked like any name
        for a, b in triggers:
            gap = a - end if a >= end else start - b
            cue = text[a:b]
            if cue in _ROLES:  # a role names the person after it (房东张建国); only 本人 follows its name (王秀英本人)
                if (b <= start and gap <= _ROLE_GAP) or (cue == "本人" and gap == 0 and a >= end):
                    return True
            elif -len(name) < gap <= CONTEXT_CHARS and not _SENTENCE_END.search(text, min(end, b), max(start, a)):
                return True
        return False

    def _names(self, text: str, spans: list[tuple[int, int]]) -> set[str]:
        return {text[a:b] for a, b in spans if text[a:b] not in self.allow and not is_anonymous(text[a:b])}

    @staticmethod
    def _mentions(text: str, names: set[str], bounds: set[int] | None = None) -> list[Span]:
        """Return every occurrence of each name in the text (longer names first where two overlap).

        Where the whole text was segmented (``bounds``: where LAC's words begin and end), an
        occurrence must be a whole word: 比亚 tagged a name somewhere is not masked inside 赞比亚.
        """
        if not names:
            return []
        return [
            Span(m.start(), m.end(), "person", m.group())
            for m in re.finditer(_alternation(names), text)
            if bounds is None or (m.start() in bounds and m.end() in bounds)
        ]
