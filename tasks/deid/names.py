"""Person names in Chinese text: jieba's part-of-speech tags (``nr``) plus the words around a name.

Without context, a name is a word jieba's HMM guessed and tagged ``nr`` (王磊, 纪丽娟), a
three-character word its dictionary files under ``nr`` (周秀兰), or a surname joined to a name-like
word (罗/nr 红梅/nr, 贾/nr 建华/nz) — and its given name must be made of common given-name characters,
because the same dictionary files 银行卡, 马拉松 and 明白 under ``nr`` too. With context, two or
three characters from a surname are a name whatever jieba tagged them: before a title (先生, 女士,
老师, 经理, …), after a role (记者, 联系人, 患者, …), or between 据 and 介绍/说. A bare surname with a
title (李女士, 刘先生) is how Chinese news already anonymises people, and is kept; so are the names
on the allow-list (historical and public figures).

jieba's POS tagger spends nine tenths of its time in a per-character HMM over runs of characters
its dictionary does not know. A name starts with a surname, so ``NameFinder`` runs that HMM only on
runs that hold a surname character before their last one, several times faster than
``jieba.posseg`` (``benchmarks/deid_eval.py`` measures both and counts where they differ).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from typing import NamedTuple

import jieba
import jieba.posseg

from tasks.deid.detectors import Span

# The common surnames (about 400, the 百家姓 in use today) and the compound ones.
SURNAMES = frozenset(
    "王李张刘陈杨黄吴赵周徐孙马朱胡林郭何高罗郑梁谢宋唐许邓冯韩曹曾彭萧肖蔡潘田董袁于余叶蒋杜苏魏程吕丁沈任姚卢傅钟"
    "姜崔谭廖范汪陆金石戴贾韦夏邱方侯邹熊孟秦白江阎闫薛尹段雷黎史龙陶贺顾毛郝龚邵万钱严赖覃洪武莫孔汤向常温康施文"
    "牛樊葛邢安齐易乔伍庞颜倪庄聂章鲁岳翟殷詹申欧耿关兰焦俞左柳甘祝包宁尚符舒阮柯纪梅童凌毕单季裴霍涂成苗谷盛曲翁"
    "冉骆蓝路游辛靳管柴蒙鲍华喻祁蒲房滕屈饶解牟艾尤阳时穆农司卓古吉缪简车项连芦麦褚娄窦戚岑景党宫费卜冷晏席卫米柏"
    "宗瞿桂全佟应臧闵苟邬边卞姬师和仇栾隋商刁沙荣巫寇桑郎甄丛仲虞敖巩明佘池查麻苑迟邝官封谈匡鞠惠荆乐冀郁胥南班储"
    "原栗燕楚鄢劳谌奚皮粟冼蔺楼盘满闻位厉伊仝区郜海阚花权强帅屠豆朴盖练廉禹井祖漆巴丰支卿国狄平计索宣晋相初门云容"
    "敬来扈晁芮都普阙浦戈伏鹿薄邸雍辜羊阿乌母裘亓修邰赫杭况那宿鲜印逯隆茹诸战慕危玉银亢嵇公哈湛宾戎勾茅利呼居揭干"
    "但尉冶斯元束檀衣信展阴昝智幸奉植衡富尧闭由钮荀桓郦宓濮庾竺蒯訾逄厍谯"
)
COMPOUND_SURNAMES = (
    "欧阳 司马 诸葛 上官 东方 皇甫 令狐 慕容 尉迟 长孙 宇文 司徒 夏侯 端木 公孙 西门 独孤 南宫 轩辕 呼延 申屠 澹台 "
    "公冶 太史 闻人 万俟 钟离 宗政 濮阳 淳于 单于 赫连 拓跋 百里 东郭 司空 第五"
).split()

# Said right after a name: 王建国先生, 张丽老师, 陈明经理.
TITLES_AFTER = (
    "先生 女士 小姐 老师 同学 经理 医生 大夫 护士 教授 律师 主任 同志 师傅 阿姨 大爷 大妈 奶奶 爷爷 叔叔 老板 总经理 "
    "董事长 总裁 院长 校长 局长 处长 科长 所长 书记 县长 市长 镇长 村长 村支书 厂长 队长 班长 警官 民警 法官 会计 "
    "工程师 研究员 博士 硕士 教练 主播 总理 主席 总书记 部长 省长 厅长 司长 委员 代表 大使 将军 总统 队员 选手 运动员 "
    "教师 编辑 记者 作家 画家 诗人 导演 演员 歌手"
).split()
# Said right before a name: 记者李明, 联系人：蔡利, 患者王某某.
ROLES_BEFORE = (
    "记者 通讯员 编辑 责编 作者 摄影 撰稿 联系人 负责人 收件人 寄件人 收货人 申请人 法定代表人 法人代表 代理人 经办人 "
    "户主 患者 病人 市民 村民 居民 网友 学生 嫌疑人 犯罪嫌疑人 被告人 被告 原告 被害人 受害人 当事人 证人 委托人 "
    "姓名 名字 叫 名叫 叫做 我叫 新郎 新娘 老公 老婆 丈夫 妻子 儿子 女儿 父亲 母亲 同事 朋友 室友 邻居"
).split()
# Role words jieba's dictionary does not hold as one word; looked for in the text itself.
_ROLE_RE = re.compile(
    "(?:" + "|".join(sorted(map(re.escape, ROLES_BEFORE), key=len, reverse=True)) + r")[\s:：]*$"
)
_TITLE_RE = re.compile(r"\s*副?(?:" + "|".join(sorted(map(re.escape, TITLES_AFTER), key=len, reverse=True)) + ")")

# Characters of given names (the few hundred that make most of them). A word jieba calls a name
# is trusted without context only when its given name is made of these: its dictionary files 银行卡,
# 马拉松 and 明前茶 under nr too.
GIVEN_NAME_CHARS = frozenset(
    "伟芳娜秀敏静丽强磊军洋勇艳杰娟涛明超霞平刚桂英华玉兰萍红鹏辉飞鑫波斌宇浩凯健俊帆帅旭宁龙林欢佳阳建亮成峰国晨瑞"
    "志兵雷东博彬坤想岩杨文利楠梅琴云莉婷雪慧晶颖倩玲燕凤丹琳蕾洁媛薇梦晓小春海金德福荣生新永长庆光天学友正忠义礼智"
    "信仁宏伯仲启振家武立树勤泽民江山水河卫诚彦嘉怡欣悦然涵睿轩宸皓铭昊子一诺依可心语梓萱思雨诗琪晗逸辰豪哲航翔瀚锐"
    "毅鸿硕淑珍惠芝香珠翠娥莲菊芬琼美素彩秋月蓉婉璐瑶琦璇瑾瑜琰珊佩绮霖露冰清洪润源沛渊潇振宝贵财发富祥吉喜顺安康寿"
    "乐和登科胜定远方圆岭峻松柏杉桐森枫棠芸茜蔚蓓蕊芮菲萌茹莎虹彤青紫嫣妍娇婕妮姗娴婧姝忆恩宜容寒岚峥巍崇嵘彪虎鹰鹤"
    "麟骏驰腾跃进达耀炜烨煜灿炎熙照捷聪贤良雅冬凯柳畅莹花少中大立世士仕守延廷胤修伦凡彭斐宏弘强孝承继祖维纯绍经纬"
    "兴勋丰为汉有培基堂增均坚垚鑫钧铁锋钢铭镇锦长开阔关迎进连逸道遥邦郁配醇钦铎铠锴霆霈震霄靖静韵韬顺颂领频馨驹骥"
    "鸣鹏黎鼎齐桦栋梁楷榕槐樟檀欧步殿毓沁沐沫泉泓波泰洛洲浚涌淼渝湘滨漫澄澜灵焕煌燊爱牧珂玮珏琛瑛瑞璋瑗璟环甜田甫男"
    "画畅盈盛真睿石磊祺禄秉程稳穗笑笛筱简米素紫红纪纳纶绪绫缘美羽翊翔翠耀聪肖舒舟航良艺芃芙芝芷苇苗若英茂茵荃荷莉莺"
    "菁萍蓝蔼蕙蕴薇藤虹蜜衡裕誉诗谦豫贞贤赫超越轶辉迪逊鑫雁雯霏露韦飒飘馥香驿骁高魁鲁鸾鹃黛"
)

# Historical and widely known public figures, whose names are knowledge, not personal data.
DEFAULT_ALLOW = (
    "孔子 孟子 老子 庄子 荀子 墨子 韩非 孙子 屈原 司马迁 李白 杜甫 白居易 王维 李商隐 杜牧 苏轼 苏东坡 辛弃疾 陆游 李清照 "
    "欧阳修 王安石 韩愈 柳宗元 曹操 刘备 孙权 诸葛亮 关羽 张飞 秦始皇 汉武帝 唐太宗 李世民 武则天 朱元璋 康熙 乾隆 "
    "岳飞 文天祥 郑和 林则徐 孙中山 孙文 鲁迅 胡适 巴金 老舍 茅盾 郭沫若 冰心 曹雪芹 罗贯中 施耐庵 吴承恩 蒲松龄 "
    "毛泽东 周恩来 朱德 刘少奇 邓小平 钱学森 袁隆平 屠呦呦 杨振宁 李政道 华罗庚 陈景润 梅兰芳 齐白石 徐悲鸿"
).split()

_HAN_RUN = re.compile("[\u4e00-\u9fff]+")
# Tags jieba gives whole names (it files some given names and names under place names: 徐洋/ns, 丹丹/ns).
_NAME_TAGS = {"nr", "nrfg"}  # not nrt: jieba's transliterations are mostly places (伊拉克) and foreign public figures
# Tags the given-name half of a split name carries: 罗/nr 红梅/nr, 贾/nr 建华/nz, 吴/nr 丹丹/ns, 邓/nr 婷婷/z.
_GIVEN_NAME_TAGS = {"nr", "nrfg", "nrt", "nz", "ns", "z", "a", "ag", "j"}
# Tags that are never the first word of a name found by context (particles, pronouns, numbers, adverbs…).
_FUNCTION_TAGS = {"u", "ud", "ug", "uj", "ul", "uv", "uz", "p", "c", "r", "rr", "rz", "m", "mq", "q", "d", "f", "y", "e", "o"}
# Surnames that are mostly function words: 和/都/向/于 before a word tagged nr are not a name, nor are
# the HMM's guesses that start with them (和盖城, 由葛营, 平峰).
_FUNCTION_SURNAMES = frozenset("和都向于但由来为时相初原国花强乐信元平全应成利干")
# Last characters of place, organisation and common words that jieba's dictionary tags nr (张家口,
# 尚义县, 许可证, 严重性, 印尼盾) or its HMM guesses as names; given names do not end in them.
_NOT_NAME_ENDINGS = tuple("村县市区省镇乡州盾证性局厂店站院校馆部委办队团处科室所岛港湾路街巷寺庙楼机型式率量业界类费口湖城营场库塔桥网社台法期没")
# Verbs of saying after a name: 张宁介绍, 王磊说 (used for names jieba's dictionary itself holds).
_SPEECH_AFTER = re.compile(r"(?:说|表示|介绍|指出|认为|告诉|透露|回忆|坦言|称|讲|笑着说|解释|强调|提到)")
_SAID_BY = re.compile("据$")
_TRAILING_FUNCTION_CHARS = frozenset("是的了在和说也就都又把被给让向对从与及等们着过吗呢吧啊")
_RARE = 500  # dictionary count under which a word after a role may be a name (金风, not 单位 or 宣布)
# A surname and a title is how news anonymises (李女士, 王老师); 某/总/工 make 王某, 张总, 李工: not a full name.
_TITLE_PREFIXES = tuple(TITLES_AFTER) + ("某", "总", "工", "姓", "副")
# Three-character words jieba's dictionary tags nr that are not names.
_NOT_NAMES = frozenset(
    "阿拉伯 莫斯科 斯巴达 黄金周 花岗岩 杜鹃花 古建筑 师兄弟 赵州桥 金水河 阿根廷 明永乐 屈家岭 马克思 和平区 "
    "高峰期 文化部 安全感 白领丽人 成都市 海洋局 江山市 高速路 田园诗 周年庆 常务委".split()
)


class Token(NamedTuple):
    """A word of the text as jieba tags it; ``guessed`` when the HMM made it up (the dictionary does not hold it)."""

    word: str
    tag: str
    start: int
    guessed: bool


def _surname_len(word: str) -> int:
    """Return the length of the surname ``word`` starts with (2 for 欧阳…), or 0."""
    if word[:2] in COMPOUND_SURNAMES:
        return 2
    return 1 if word[:1] in SURNAMES else 0


class NameFinder:
    """Callable that returns the person-name spans of a text; holds jieba's dictionary and POS table.

    Build one per worker: loading jieba takes about two seconds.
    """

    def __init__(self, allow: Iterable[str] = DEFAULT_ALLOW, full_hmm: bool = False):
        self.allow = frozenset(allow)
        self.full_hmm = full_hmm  # run the POS HMM on every unknown run, as jieba.posseg does (for the benchmark)
        self._tokenizer = jieba.Tokenizer()
        self._tokenizer.initialize()
        self._tags = jieba.posseg.POSTokenizer(self._tokenizer).word_tag_tab

    def __call__(self, text: str) -> list[Span]:
        spans: list[Span] = []
        for run in _HAN_RUN.finditer(text):
            spans += self._names_in(text, list(self.tag(run.group(), run.start())))
        return spans

    def tag(self, han: str, offset: int = 0) -> Iterator[Token]:
        """Yield the tokens of a run of Han characters, tagged the way jieba.posseg tags them."""
        dag = self._tokenizer.get_DAG(han)
        route: dict[int, tuple[float, int]] = {}
        self._tokenizer.calc(han, dag, route)
        x, buf_start, n = 0, 0, len(han)
        buf = ""
        while x < n:
            y = route[x][1] + 1
            if y - x == 1:
                if not buf:
                    buf_start = x
                buf += han[x]
            else:
                if buf:
                    yield from self._tag_buffer(buf, offset + buf_start)
                    buf = ""
                word = han[x:y]
                yield Token(word, self._tags.get(word, "x"), offset + x, False)
            x = y
        if buf:
            yield from self._tag_buffer(buf, offset + buf_start)

    def _tag_buffer(self, buf: str, start: int) -> Iterator[Token]:
        """Tag a run of single characters: one word if the dictionary knows it, else by the POS HMM."""
        if len(buf) == 1 or self._tokenizer.FREQ.get(buf) or not (self.full_hmm or any(c in SURNAMES for c in buf[:-1])):
            for i, c in enumerate(buf):
                yield Token(c, self._tags.get(c, "x"), start + i, False)
            return
        _, states = jieba.posseg.viterbi(
            buf, jieba.posseg.char_state_tab_P, jieba.posseg.start_P, jieba.posseg.trans_P, jieba.posseg.emit_P
        )
        begin = 0
        for i, (pos, tag) in enumerate(states):
            if pos == "B":
                begin = i
            elif pos == "E":
                yield Token(buf[begin : i + 1], tag, start + begin, True)
            elif pos == "S":
                yield Token(buf[i], tag, start + i, True)
            if i == len(buf) - 1 and pos in "BM":
                yield Token(buf[begin:], tag, start + begin, True)

    def _names_in(self, text: str, tokens: list[Token]) -> list[Span]:
        spans: list[Span] = []
        i = 0
        while i < len(tokens):
            found = self._tagged_name(tokens, i)
            if found is not None:  # without context, the given name must be made of given-name characters
                given = text[tokens[i].start : found[0]][_surname_len(tokens[i].word) :]
                found = found if all(c in GIVEN_NAME_CHARS for c in given) else None
            found = found or self._context_name(text, tokens, i)
            if found is None:
                i += 1
                continue
            end, used = found
            start = tokens[i].start
            name = text[start:end]
            given = name[_surname_len(name) :]
            if (
                name not in self.allow
                and name not in _NOT_NAMES
                and not given.startswith(_TITLE_PREFIXES)
                and not name.endswith(_NOT_NAME_ENDINGS)
            ):
                spans.append(Span(start, end, "person", name))
            i += used
        return spans

    def _tagged_name(self, tokens: list[Token], i: int) -> tuple[int, int] | None:
        """Return (end, tokens used) of a name jieba found at token i, or None.

        王建国/nr guessed by its HMM, or a three-character word its dictionary files as nr (周秀兰,
        张桂芳); a surname and a name-like word: 罗/nr 红梅/nr, 刘/zg 桂花/nr, 贾/nr 建华/nz. Two-character
        dictionary words tagged nr are mostly ordinary words the dictionary mistags (明白, 阳光,
        智慧); they need context (``_context_name``).
        """
        tok = tokens[i]
        s = _surname_len(tok.word)
        if not s:
            return None
        if tok.tag in _NAME_TAGS and s < len(tok.word) <= s + 2:
            if tok.word[:s] in _FUNCTION_SURNAMES:
                return None
            if tok.guessed and len(tok.word) > s + 1 and tok.word[-1] in _TRAILING_FUNCTION_CHARS:
                return tok.start + len(tok.word) - 1, 1  # the HMM ran on into the next word: 鲁迅是, 王磊说
            if tok.guessed or (len(tok.word) == s + 2 and not self._common_word(tok.word[s:])):
                return tok.start + len(tok.word), 1
            return None
        if i + 1 >= len(tokens):
            return None
        nxt = tokens[i + 1]
        if nxt.start != tok.start + len(tok.word) or nxt.word in TITLES_AFTER:
            return None
        if len(tok.word) == s and tok.tag in _NAME_TAGS and _TITLE_RE.match(nxt.word, 1):
            return nxt.start + 1, 2  # 秦/nr 雷先生/nr: the dictionary glued the given name to the title
        end = nxt.start + len(nxt.word)
        if len(tok.word) == s + 1 and len(nxt.word) == 1 and nxt.tag in _NAME_TAGS and tok.tag not in _FUNCTION_TAGS:
            return end, 2  # 胡金/n 凤/nr
        if len(tok.word) != s or not 1 <= len(nxt.word) <= 2:
            return None
        if nxt.tag in _NAME_TAGS | {"z"} and (tok.tag in _NAME_TAGS or tok.word not in _FUNCTION_SURNAMES):
            return end, 2  # 刘/zg 桂花/nr, 郑/ns 婷婷/z
        if tok.tag in _NAME_TAGS and nxt.tag in _GIVEN_NAME_TAGS:
            return end, 2  # 贾/nr 建华/nz, 吴/nr 丹丹/ns
        return None

    def _common_word(self, given: str) -> bool:
        """Return whether the part after a surname is a frequent dictionary word that is not a name (师兄弟, 古建筑)."""
        return self._tags.get(given, "nr") not in _GIVEN_NAME_TAGS - {"n", "ng"} and self._tokenizer.FREQ.get(given, 0) >= 50

    def _context_name(self, text: str, tokens: list[Token], i: int) -> tuple[int, int] | None:
        """Return (end, tokens used) of two or three characters from a surname at token i, said before a title or after a role."""
        tok = tokens[i]
        s = _surname_len(tok.word)
        # a lone surname may carry any tag (许/m 婷婷/z after 记者), unless it is being a function word
        lone = len(tok.word) == s and tok.word not in _FUNCTION_SURNAMES
        if not s or (tok.tag in _FUNCTION_TAGS and (not (tok.guessed or lone) or tok.word[:s] in _FUNCTION_SURNAMES)):
            return None
        said = bool(_SAID_BY.search(text, max(0, tok.start - 1), tok.start))
        role_before = bool(_ROLE_RE.search(text, max(0, tok.start - 8), tok.start))
        # the name is made of whole tokens: 1 to 3 of them covering 2-3 (compound: 3-4) characters
        length, used = 0, 0
        for j in range(i, min(i + 3, len(tokens))):
            if tokens[j].start != tok.start + length:
                break
            length += len(tokens[j].word)
            used += 1
            if length > s + 2:
                break
            if length < s + 1:
                continue
            # 高中老师, 项目经理: one dictionary word that is not a name is not made a name by a title
            later = tokens[j]
            if j > i and (later.tag in _FUNCTION_TAGS or later.word in _TRAILING_FUNCTION_CHARS or (len(later.word) > 1 and later.tag.startswith("v"))):
                return None  # 公司的, 和她的, 关键在: the words after a surname are not a given name
            # one dictionary word: a name (nr) before a title (not 韩国/ns 总统, 高中/n 老师); after a role also 徐洋/ns
            known_word = used == 1 and not tok.guessed
            end = tok.start + length
            namelike = all(c in GIVEN_NAME_CHARS for c in text[tok.start + s : end])
            # 高建国/ns 经理 is a name; 韩国/ns 总统 and 高中/s 老师 are not
            title_ok = not known_word or tok.tag in _NAME_TAGS or (length == s + 2 and namelike and tok.tag not in _FUNCTION_TAGS)
            if _TITLE_RE.match(text, end) and title_ok:
                return end, used
            # after a role, a word that ends its run (记者王言彬、 （记者金风）) is taken whatever jieba tagged it
            run_end = (j + 1 == len(tokens) or tokens[j + 1].start != end) and self._tokenizer.FREQ.get(tok.word, 0) < _RARE
            role_ok = run_end or not known_word or namelike or tok.tag in _NAME_TAGS | {"ns", "nz"}
            if role_before and self._name_ends_at(tokens, j) and role_ok:
                return end, used
            if (said or (used == 1 and tok.tag in _NAME_TAGS)) and _SPEECH_AFTER.match(text, end):
                return end, used  # 据兰丹介绍, 张宁说
        return None

    def _name_ends_at(self, tokens: list[Token], j: int) -> bool:
        """Return whether a name after a role may end at token j: what follows is a new word, not more of the name."""
        if j + 1 >= len(tokens) or tokens[j + 1].start != tokens[j].start + len(tokens[j].word):
            return True
        nxt = tokens[j + 1]
        return len(nxt.word) > 1 or nxt.tag in _FUNCTION_TAGS | {"v", "vd", "vg", "x"}
