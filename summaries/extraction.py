"""Extract an article's main text from a fetched web page.

trafilatura (precision mode) does the heavy lifting. ``ExtractionOptions``
switches a few generic repairs on top of it; each is explained where it
happens, and ``bench/extraction.py`` decides by cross-validation which ones
earn their place in the shipped configuration (``SHIPPED``):

1. before extraction, re-join an article body split into several same-class
   containers and drop lists made only of links (teaser lists);
2. fall back to trafilatura's recall mode when the precise output looks
   truncated;
3. after extraction, drop a repeated headline and short boilerplate lines.

``unavailable_reason`` tells a block page (JavaScript shell, bot challenge,
paywall stub) or a too-short extraction apart from a real article.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import trafilatura
from celery.exceptions import SoftTimeLimitExceeded
from lxml.html import HtmlElement
from trafilatura.utils import load_html

__all__ = [
    "BOILERPLATE_GROUPS",
    "MAX_HTML_CHARS",
    "MIN_WORDS",
    "SHIPPED",
    "Article",
    "ExtractionOptions",
    "RawExtraction",
    "extract_article",
    "extract_raw",
    "finish",
    "unavailable_reason",
    "word_count",
]

# Kinds of short boilerplate lines dropped after extraction (see _BOILERPLATE).
BOILERPLATE_GROUPS = ("share", "newsletter", "ads", "teasers", "page_tools", "credits")
# Fewer words than this is not worth summarising.
MIN_WORDS = 40
# Only this many characters of HTML are parsed: see _bounded.
MAX_HTML_CHARS = 2_000_000
# A block notice only counts when the page yields less article text than this:
# real articles often mention "JavaScript" or "subscribe" somewhere.
_BLOCK_MAX_WORDS = 150
# Boilerplate patterns only apply to lines this short; paragraphs are kept.
_BOILERPLATE_MAX_WORDS = 30
# A line with a date or time is a dateline if at most this many other words
# remain ("5:45 AM PST 11/19/2019 by Jane Doe"), not a sentence.
_DATELINE_MAX_OTHER_WORDS = 2


@dataclass(frozen=True)
class Article:
    """An extracted article: ``text`` holds paragraphs separated by newlines."""

    title: str | None
    text: str


@dataclass(frozen=True)
class ExtractionOptions:
    """Which repairs run on top of trafilatura; defaults are what ships.

    All switches off (and ``truncated_share`` 0) is plain trafilatura in
    precision mode.
    """

    merge_split_bodies: bool = True
    drop_link_lists: bool = True
    # Fall back to recall mode when the precise text is shorter than this
    # share of the recall text (in characters, so it works for scripts
    # without spaces); 0 disables the fallback and the recall pass.
    truncated_share: float = 0.25
    drop_headline: bool = True
    # Names of the _BOILERPLATE line-pattern groups to apply.
    boilerplate: frozenset[str] = frozenset(BOILERPLATE_GROUPS)
    drop_datelines: bool = True

    def __post_init__(self) -> None:
        unknown = self.boilerplate - frozenset(BOILERPLATE_GROUPS)
        if unknown:
            raise ValueError(f"unknown boilerplate groups: {sorted(unknown)}")


@dataclass(frozen=True)
class RawExtraction:
    """trafilatura's output before clean-up (``recall`` empty if not run)."""

    title: str | None
    precise: str
    recall: str


def extract_article(
    html: str, *, url: str | None = None, options: ExtractionOptions | None = None
) -> Article:
    """Return the main text and title of ``html``.

    Never raises on bad input: unparseable or empty HTML gives
    ``Article(None, "")``. Celery's SoftTimeLimitExceeded (and anything not an
    Exception) always propagates, so a job over its time limit times out.
    ``url`` is only a hint for trafilatura (metadata, relative links).
    """
    options = SHIPPED if options is None else options
    return finish(extract_raw(html, url=url, options=options), options)


def extract_raw(html: str, *, url: str | None, options: ExtractionOptions) -> RawExtraction:
    """The expensive part of ``extract_article``: parse, repair, run trafilatura."""
    empty = RawExtraction(title=None, precise="", recall="")
    try:
        tree = load_html(_bounded(html))
    except SoftTimeLimitExceeded:
        raise
    except Exception:  # lxml raises a variety of errors on garbage input
        return empty
    if tree is None:
        return empty
    if options.merge_split_bodies:
        _merge_split_bodies(tree)
    if options.drop_link_lists:
        _drop_link_lists(tree)
    try:
        precise = trafilatura.bare_extraction(
            tree, url=url, favor_precision=True, include_comments=False, with_metadata=True
        )
        recall = (
            trafilatura.extract(tree, url=url, favor_recall=True, include_comments=False)
            if options.truncated_share > 0
            else None
        )
    except SoftTimeLimitExceeded:
        raise
    except Exception:  # trafilatura is defensive but not total on odd trees
        return empty
    return RawExtraction(
        title=_clean(getattr(precise, "title", None)) or None,
        precise=_clean(getattr(precise, "text", None)),
        recall=_clean(recall),
    )


def finish(raw: RawExtraction, options: ExtractionOptions) -> Article:
    """The cheap part of ``extract_article``: choose a text and clean it up."""
    text = raw.precise
    # Precision mode sometimes latches onto a teaser box and drops the story
    # (a small share of what recall finds is far below its usual trimming).
    if len(text) < options.truncated_share * len(raw.recall):
        text = raw.recall
    lines = text.split("\n")
    if options.drop_headline:
        lines = _drop_headline(lines, raw.title)
    lines = [line for line in lines if line.strip() and not _is_boilerplate(line, options)]
    return Article(title=raw.title, text="\n".join(lines))


def _bounded(html: str) -> str:
    """At most MAX_HTML_CHARS of ``html``: parsing and extraction cost grows
    with the page, and no article needs more (the longest benchmark page is
    far below it); the rest of an over-long page is dropped."""
    return html[:MAX_HTML_CHARS]


def unavailable_reason(html: str, article: Article) -> str | None:
    """Why ``article`` (extracted from ``html``) cannot be summarised, or None.

    A block notice (JavaScript shell, bot challenge, paywall) only counts
    together with a short extraction, so a real article that merely mentions
    JavaScript or subscriptions somewhere on the page passes.
    """
    words = word_count(article.text)
    if words < _BLOCK_MAX_WORDS:
        text, page = article.text.lower(), html.lower()
        for pattern, reason in _BLOCK_SIGNALS:
            # The notice is what we extracted; or nothing usable was extracted
            # and the notice sits in the page (noscript, challenge scripts).
            if pattern.search(text) or (words < MIN_WORDS and pattern.search(page)):
                return reason
        # Paywalls show a teaser of a few paragraphs and put the notice in an
        # overlay that extraction drops, so the page-wide notice is enough.
        if _PAYWALL.search(page):
            return _PAYWALL_REASON
    if words < MIN_WORDS:
        return f"extracted text too short ({words} words)"
    return None


def word_count(text: str) -> int:
    """Count words, taking two CJK characters as one word (no spaces there)."""
    cjk = len(_CJK.findall(text))
    return len(_WORD.findall(_CJK.sub(" ", text))) + cjk // 2


# --- tree repairs (before extraction) --------------------------------------

# Class names that mark an article body container.
_BODY_CLASS = re.compile(r"(?:article|story|entry|post)(?:-|_|__)?(?:body|content|text)", re.I)


def _merge_split_bodies(tree: HtmlElement) -> None:
    """Move the content of repeated body containers into the first one.

    Sites interleave ad rails by splitting the body into several containers
    with the same class; trafilatura keeps only the first and loses the rest.
    """
    groups: dict[str, list[HtmlElement]] = {}
    for element in tree.iter("div", "section"):
        css = (element.get("class") or "").strip()
        if _BODY_CLASS.search(css):
            groups.setdefault(css, []).append(element)
    for elements in groups.values():
        first, rest = elements[0], elements[1:]
        members = set(elements)
        # Nested containers are one body, not a split one.
        if not rest or any(a in members for e in elements for a in e.iterancestors()):
            continue
        for element in rest:
            first.extend(list(element))


def _drop_link_lists(tree: HtmlElement) -> None:
    """Remove lists whose items are nothing but links ("related stories")."""
    for lst in list(tree.iter("ul", "ol")):
        items = [child for child in lst if child.tag == "li"]
        if len(items) >= 2 and all(_is_link_only(item) for item in items):
            lst.drop_tree()


def _is_link_only(element: HtmlElement) -> bool:
    words = len(element.text_content().split())
    linked = sum(len(a.text_content().split()) for a in element.iter("a"))
    return words > 0 and linked >= 0.9 * words


# --- text clean-up (after extraction) ---------------------------------------


def _clean(text: object) -> str:
    return text.strip() if isinstance(text, str) else ""


def _norm(text: str) -> str:
    return " ".join(_WORD.findall(text.lower()))


def _drop_headline(lines: list[str], title: str | None) -> list[str]:
    """Drop the headline if it is repeated near the top of the text.

    The title is returned separately; trafilatura often keeps the page's
    <h1> (or a repeat of it after the lead) as a first paragraph.
    """
    if not title:
        return lines
    wanted = _norm(title)
    for index, line in enumerate(lines[:3]):
        found = _norm(line)
        # Sites append " | Site name" to <title>, hence the containment test,
        # limited to lines long enough not to be a generic word like "Review".
        if found and (
            found == wanted or (len(found.split()) >= 4 and (found in wanted or wanted in found))
        ):
            return lines[:index] + lines[index + 1 :]
    return lines


_MONTH = r"(?:jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec)[a-z]*\.?"
# Short lines that are page furniture, not article text, by kind.
_BOILERPLATE: dict[str, list[re.Pattern[str]]] = {
    name: [re.compile(pattern, re.I) for pattern in patterns]
    for name, patterns in {
        "share": [
            r"^(share|tweet|email|print|save)( (this|the))?( (article|story|page|post))?\W*$",
            r"\bshare (it|this( \w+)?) with (a friend|your friends|friends)\b",
            r"\bshare (on|via) (facebook|twitter|whatsapp|linkedin|email)\b",
            r"\bfollow\b.{0,60}\b(on|at) (twitter|facebook|instagram|youtube|linkedin)\b",
            r"\bfollow (us|him|her|me|them) (on|at|@)",
        ],
        "newsletter": [
            r"^(subscribe|sign up|join|register)\b.{0,80}"
            r"\b(newsletter|inbox|updates|today|now|here)\b",
            r"\b(your inbox|by subscribing|subscribe (now|today|here))\b",
            r"\bnewsletter\W*$",
            r"\b(our|free|daily|weekly) [\w\s]{0,30}newsletter\b",
            r"\bdelivered (to your inbox|through your letterbox|to your door)\b",
            r"\bsign up for\b.{0,60}\b(newsletter|today|inbox|updates)\b",
        ],
        "ads": [
            r"^(advertisement|advertising|sponsored( content)?|ad)\W*$",
            r"\bcontinues? below( (this|the))? (advertisement|ad)\b",
        ],
        "teasers": [
            r"^(related|see more|read more|more|also read|read also|don'?t miss|most read"
            r"|you may also like|recommended|leggi anche|lesen sie auch|lire aussi|leia também)"
            r"\b.{0,5}(:|$|\.\.\.|…)",
            r"^(related|see more|read more|also read|also on|more)\s*:",
        ],
        "page_tools": [
            r"^\d*\s*comments?\W*$",
            r"\btell us what you think\b",
            r"^(order reprints|print article|text size|reprints?)\W*$",
        ],
        "credits": [
            r"^write to .{0,60}@",
            r"\bcontributed (to this (report|story|article)|reporting)\b",
            r"^(additional reporting|contributing)\b",
            r"^(by|written by|posted by|published by)( [\w.'\u2019-]+){0,4}\W*$",
        ],
    }.items()
}
# A line that is mostly a date or time ("Updated at 1:23 p.m.").
_DATE = re.compile(r"\d{1,2}:\d{2}|\d{1,2}/\d{1,2}/\d{2,4}|\b" + _MONTH + r" \d{1,2},? \d{4}", re.I)
_DATE_WORDS = re.compile(
    r"\b(" + _MONTH + r"|(mon|tues|wednes|thurs|fri|satur|sun)day|[ap]\.?m\.?|(?-i:[A-Z]{2,4}T)"
    r"|updated|published|posted|last|at|on|by|\d+)\b",
    re.I,
)


def _is_boilerplate(line: str, options: ExtractionOptions) -> bool:
    stripped = line.strip()
    if len(stripped.split()) > _BOILERPLATE_MAX_WORDS:
        return False
    if options.drop_datelines and _DATE.search(stripped):
        rest = _WORD.findall(_DATE_WORDS.sub(" ", stripped))
        if len(rest) <= _DATELINE_MAX_OTHER_WORDS:
            return True
    return any(
        pattern.search(stripped) for name in options.boilerplate for pattern in _BOILERPLATE[name]
    )


# --- block pages --------------------------------------------------------------

_WORD = re.compile(r"\w+")
_CJK = re.compile(r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")

_PAYWALL_REASON = "page is a paywall stub"
_PAYWALL = re.compile(
    r"(subscribe|subscription|sign in|log in|register) to (continue|keep) reading"
    r"|to continue reading,? (please )?(subscribe|sign in|log in)"
    r"|(for|available to) (paid |paying )?subscribers only|subscriber[- ]only (content|article)"
    r"|you(\u2019|')ve reached your (free )?(monthly )?(article|story) limit"
    r"|this (article|content|story) is (for|reserved for) (members|subscribers)"
)
# Matched against lower-cased text: challenge pages give themselves away in
# markup and scripts as well as in their visible text.
_BLOCK_SIGNALS = [
    (
        re.compile(
            r"cf-browser-verification|cf-challenge|challenge-platform|cf_chl_"
            r"|checking (if the site connection is secure|your browser)"
            r"|verify(ing)? (that )?you are (a )?human|are you a robot"
            r"|g-recaptcha|h-captcha|hcaptcha|px-captcha|captcha-delivery"
            r"|unusual traffic from your (computer|network)"
        ),
        "page is a CAPTCHA/bot challenge",
    ),
    (
        re.compile(
            r"(enable|turn on|activate) javascript|javascript (is )?(disabled|required"
            r"|must be enabled|is not enabled)|requires javascript|without javascript"
        ),
        "page requires JavaScript",
    ),
    (_PAYWALL, _PAYWALL_REASON),  # also checked page-wide, see unavailable_reason
]


# What ships: see bench/extraction.py for the cross-validated evidence.
SHIPPED = ExtractionOptions()
