"""The extract stage's one config model; its fields are the flow parameters and the recipe section."""

from __future__ import annotations

import re
from typing import Annotated

import soupsieve
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator


def compiled_pattern(pattern: str) -> str:
    """Return ``pattern`` unchanged when it compiles as a regular expression; raise ValueError naming it."""
    try:
        re.compile(pattern)
    except re.error as e:
        raise ValueError(f"bad regular expression {pattern!r}: {e}") from e
    return pattern


# A config field's regular expression, checked when the config is built rather than mid-shard.
# Here because the clean stage reuses this stage's boilerplate patterns and imports them from here.
RegexPattern = Annotated[str, AfterValidator(compiled_pattern)]

# Removed before scoring (unless they hold most of the page's text, see `drop_guard_share`).
# Forms are here because comment boxes and search bars are forms; an ASP.NET `<form>` wrapping
# the whole page is saved by the guard.
DEFAULT_DROP_SELECTORS = [
    "nav",
    "header",
    "footer",
    "aside",
    "form",
    "iframe",
    "button",
    "select",
    "textarea",
    "[hidden]",
    "[aria-hidden=true]",
    "[style*='display:none']",
    "[style*='display: none']",
    "[style*='visibility:hidden']",
    "[role=navigation]",
    "[role=banner]",
    "[role=contentinfo]",
    "[role=complementary]",
]

# Matched against the words of an element's class and id ("top-ad", "shareBar", "news_comment"
# split into top/ad, share/bar, news/comment); a trailing * matches words starting with it.
# Pinyin names are common on Chinese sites: fenxiang 分享, pinglun 评论, guanggao 广告,
# tuijian 推荐, xgxw 相关新闻, xgyd 相关阅读, bqsm 版权声明.
DEFAULT_DROP_CLASS_WORDS = [
    "ad",
    "ads",
    "adv",
    "advert*",
    "advertisement",
    "guanggao*",
    "gg",
    "banner*",
    "share*",
    "fenxiang*",
    "social",
    "comment*",
    "pinglun*",
    "cmt",
    "recommend*",
    "tuijian*",
    "related*",
    "xgxw",
    "xgyd",
    "breadcrumb*",
    "crumb*",
    "sidebar*",
    "copyright*",
    "bqsm",
    "footer*",
    "nav*",
    "menu*",
    "toolbar*",
    "topbar*",
    "hotnews",
    "qrcode*",
    "popup*",
    "modal",
    "cookie*",
    "login",
    "search*",
    "pager",
    "pagination",
    "print",
    "sign",
    "signature",
    "author",
    "byline",
]

# The heading of a related-articles list: 相关阅读, 延伸 · 推荐, 猜你喜欢 …
RELATED_HEADING = (
    r"(相关\s*[·・•|]?\s*(阅读|新闻|文章|链接|推荐|报道|稿件)|相關\s*[·・•|]?\s*(閱讀|新聞|文章|連結|推薦|報導|稿件)"
    r"|(推荐|推薦|延伸|扩展|擴展)\s*[·・•|]?\s*(阅读|閱讀|推荐|推薦|新闻|新聞)|为你推荐|為你推薦|更多(精彩|阅读|閱讀|新闻|新聞)"
    r"|热门(文章|推荐|新闻)|熱門(文章|推薦|新聞)|猜你喜欢|猜你喜歡|精彩推荐|精彩推薦)"
)

# Whole-line boilerplate, tried (re.search, case-insensitive) only on lines up to `boilerplate_max_chars`
# long. Simplified and traditional spellings both, since Big5 and zh-TW pages share the crawl.
DEFAULT_DROP_LINE_PATTERNS = [
    r"^(分享到|分享至|分享[:：])",
    r"^(上一篇|下一篇|上一页|下一页|上一頁|下一頁|上一条|下一条|上一條|下一條)",
    r"^返回(顶部|頂部|首页|首頁|列表|上一?页|上一?頁)",
    r"^[【\[（(]?\s*(责任编辑|責任編輯|编辑|編輯|责编|責編|审核|審核|校对|校對|来源|來源|作者|发布时间|發佈時間|發布時間"
    r"|发布日期|發佈日期|更新时间|更新時間|浏览次数|瀏覽次數|阅读次数|閱讀次數|点击数?|點擊數?)\s*[:：]",
    r"(版权所有|版權所有|Copyright|©|ICP备|ICP備|ICP证|ICP證|公网安备|公網安備|All Rights Reserved)",
    r"^([【\[]?(打印|打印本页|关闭|关闭窗口|關閉|關閉視窗|收藏|加入收藏|举报|舉報|纠错|糾錯|字号[:：]?|字號[:：]?|大|中|小)[】\]]?\s*)+$",
    "^" + RELATED_HEADING,
    r"^(扫一扫|掃一掃|扫描二维码|掃描二維碼|微信扫一扫|关注我们|關注我們|点击(进入|查看|这里)|點擊(進入|查看|這裡))",
    r"^((您|你)的|(您|你)?(当前|當前|现在|現在|所在|目前)的?)位置",  # breadcrumbs: 您所在的位置：首页 > …
    r"^[【\[（(]?\s*(本文|文章|稿件|信息|新闻|新聞|内容|內容)?(来源|來源|出处|出處)\s*[:：]",
    r"^[【\[（(]?\s*(原标题|原標題|原题|原題)\s*[:：]",
    r"(责任编辑|責任編輯|责编|責編)\s*[:：]",  # also glued to a source: 本文来源：新京报责任编辑：…
    # a line of staff credits without colons: 编辑 刘晓阳 校对 李铭, 新京报记者 陆一夫
    r"^(\s*(\S{0,8}记者|\S{0,8}記者|编辑|編輯|校对|校對|审核|審核|审校|審校|责编|責編|监制|監製|统筹|統籌|美编|美編"
    r"|实习生|實習生|通讯员|通訊員|摄影|攝影|制图|製圖)(\s*[:：]\s*|\s+)[\u4e00-\u9fff·]{2,5}([、，,\s]+[\u4e00-\u9fff·]{2,5})*)"
    r"{1,6}\s*$",
    r"^(https?://|www\.)\S+$",  # a bare address line
    r"^[【\[（(]?(点击|點擊)?(看|查看)?(清晰|高清)?(大图|大圖)[】\]）)]?$",
    r"(扫码关注|掃碼關注|扫码下载|掃碼下載|长按(识别|二维码|关注)|長按(識別|二維碼|關注)|关注(我们的)?(微信)?公众号|關注(我們的)?(微信)?公眾號)",
    r"^(已)?(关注|關注|点赞|點讚|收藏|分享|评论|評論|转发|轉發|打赏|打賞|阅读原文|閱讀原文|在看|赞|讚)(\s*\d+)?$",
    r"^(商品|产品|產品|宝贝|寶貝)(详情|詳情|介绍|介紹|描述|参数|參數|信息|資訊)$",
    r"^(网友评论|網友評論|发表评论|發表評論|我要评论|我要評論|评论区|評論區|全部评论|全部評論|最新评论|最新評論|热门评论|熱門評論)",
    r"^(已有)?\d+\s*(人|条|條)(参与|參與|评论|評論)",
    r"^(首页|首頁|主页|主頁)\s*[>»›/]",
    r"(发表于|發表於|发布于|發佈於|發布於)\s*\d{4}",
    r"^(签名|簽名|个性签名|個性簽名)[:：]",
    r"^([^\s\d:：|｜]{1,4}[:：]?\s*\d+\s*[|｜]?\s*){2,}$",  # counters: 主题 3 帖子 12 积分 40
    r"^(楼主|樓主|\d+\s*[楼樓#])\s+\S{1,20}$",
    r"^\d{4}[-/.年]\d{1,2}[-/.月]\d{1,2}日?\s*(\d{1,2}:\d{2}|$|来源|來源|作者|编辑|編輯|发布|發佈|發布|浏览|瀏覽|阅读|閱讀"
    r"|点击|點擊|字号|字號)",
]

# Lines that are boilerplate however long they are: disclaimers and notices run past `boilerplate_max_chars`,
# and no paragraph of an article starts with "免责声明：".
DEFAULT_NOTICE_PATTERNS = [
    r"^[【\[（(]?\s*(特别声明|特別聲明|免责声明|免責聲明|版权声明|版權聲明|郑重声明|鄭重聲明|声明|聲明)\s*[:：]",
    r"^(disclaimer|notice|copyright notice)\s*[:：]",
    r"^[【\[（(]?\s*(原标题|原標題)\s*[:：]",
]
# A heading that ends the article when it comes after most of the text: the related list below it goes too.
DEFAULT_END_PATTERNS = ["^" + RELATED_HEADING + r"\s*[:：>»]?$"]

_CLASS_WORD = re.compile(r"[a-z0-9]+\*?")


class ExtractConfig(BaseModel):
    """Main-text extraction: which HTML boilerplate to cut, how to pick the article, when a page is too short."""

    model_config = ConfigDict(extra="forbid")

    min_chars: int = Field(
        default=50,
        ge=0,
        le=100_000,
        description="Pages whose extracted main text (title excluded, whitespace not counted) is shorter "
        "are rejected as too_short.",
    )
    keep_title: bool = Field(
        default=True,
        description="Put the page title as the first line of the text (it is always stored in meta.title).",
    )
    drop_selectors: list[str] = Field(
        default=DEFAULT_DROP_SELECTORS,
        max_length=500,
        description="CSS selectors of elements removed before scoring: navigation, headers, footers, forms, "
        "hidden blocks.",
    )
    drop_class_words: list[str] = Field(
        default=DEFAULT_DROP_CLASS_WORDS,
        max_length=500,
        description="Elements whose class or id has one of these words are removed before scoring "
        "(lowercase; 'share*' also matches 'sharebar'). Ads, share bars, comments, related links, sidebars.",
    )
    drop_guard_share: float = Field(
        default=0.8,  # a wrapper holds nearly all the prose; a comment box that outweighs the article still goes
        ge=0.0,
        le=1.0,
        description="An element matched by drop_selectors or drop_class_words is kept anyway when it holds more "
        "than this share of the page's sentence ends (。！？): it is the article, wrapped in a `<form>` or a badly "
        "named div. 1.0 disables the guard.",
    )
    drop_line_patterns: list[RegexPattern] = Field(
        default=DEFAULT_DROP_LINE_PATTERNS,
        max_length=500,
        description="Regular expressions (case-insensitive); a short line matching one is boilerplate "
        "(分享到, 上一篇/下一篇, 返回顶部, 责任编辑, 版权所有, ICP备 …).",
    )
    boilerplate_max_chars: int = Field(
        default=60,
        ge=0,
        le=1000,
        description="Only lines up to this many characters are tested against drop_line_patterns, so a long "
        "paragraph that mentions 版权所有 stays.",
    )
    notice_patterns: list[RegexPattern] = Field(
        default=DEFAULT_NOTICE_PATTERNS,
        max_length=500,
        description="Regular expressions (case-insensitive) tried on lines of any length: a line that opens as a "
        "notice (声明：, 免责声明：, 特别声明：, 原标题：, Notice:) is boilerplate however long it runs.",
    )
    end_patterns: list[RegexPattern] = Field(
        default=DEFAULT_END_PATTERNS,
        max_length=500,
        description="Regular expressions (case-insensitive) of headings that end the article (相关阅读, 延伸阅读, "
        "为你推荐 …): a short line matching one after end_after_share of the main block's text drops itself and "
        "every line after it.",
    )
    end_after_share: float = Field(
        default=0.5,
        ge=0.0,
        le=1.0,
        description="Share of the main block's article characters that must come before an end_patterns heading "
        "for it to end the article; one near the top is a subheading or a table of contents, not a trailing list.",
    )
    min_paragraph_chars: int = Field(
        default=10,
        ge=0,
        le=1000,
        description="A line shorter than this that contains a link is dropped (link lists, 'more' links); "
        "it also is the shortest line that counts as article text when choosing the main block.",
    )
    max_link_density: float = Field(
        default=0.5,
        ge=0.0,
        le=1.0,
        description="A line or block whose share of characters inside links is above this is boilerplate.",
    )

    max_block_link_density: float = Field(
        default=0.35,  # a linked headline over a two-line summary is ~0.4; prose with a few inline links ~0.05
        ge=0.0,
        le=1.0,
        description="A block inside the main block with three or more lines whose share of characters inside links "
        "is above this is a list of links (related articles: a linked headline and a summary each) and goes whole.",
    )

    @field_validator("drop_selectors")
    @classmethod
    def _selectors_compile(cls, selectors: list[str]) -> list[str]:
        for selector in selectors:
            try:
                soupsieve.compile(selector)
            except soupsieve.SelectorSyntaxError as e:
                raise ValueError(f"bad CSS selector {selector!r}: {e}") from e
        return selectors

    @field_validator("drop_class_words")
    @classmethod
    def _class_words_lowercase(cls, words: list[str]) -> list[str]:
        for word in words:
            if not _CLASS_WORD.fullmatch(word):
                raise ValueError(f"class word {word!r} must be lowercase letters/digits with an optional trailing *")
        return words
