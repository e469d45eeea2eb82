"""Extract an article's main text from a fetched web page.

trafilatura (precision mode) does the heavy lifting. ``ExtractionOptions``
switches a few generic repairs on top of it; each is explained where it
happens, and ``bench/extraction.py`` decides by cross-validation which ones
earn their place in the shipped configuration (``SHIPPED``):

1. before extraction, re-join an article body split into several same-class
   containers and drop lists made only of links (teaser lists);
2. after extraction, drop a repeated headline and short boilerplate lines.

No rule drops body text that trafilatura kept unless the text is clearly not
body: a line that IS the headline (not one that contains it), a short line
that IS a call to action or a label (not a sentence that mentions one).

Rules that did not raise held-out F1 were removed (see the bench): a
recall-mode fallback for truncated output, dateline removal and advertising
labels.

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
    "MAX_HTML_TAGS",
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
BOILERPLATE_GROUPS = ("share", "newsletter", "teasers", "page_tools", "credits")
# Fewer words than this is not worth summarising.
MIN_WORDS = 40
# Extraction only sees the start of a page: at most this many characters and
# this many tags ("<"). Its cost grows faster than linearly with the number of
# elements and with the text (5 MB of tiny paragraphs took 48 s, of "<p>a</p>"
# over 5 minutes), while the largest benchmark page has 1.5 M characters (mostly
# scripts) and 3,229 tags. With these caps a 5 MB page takes at most ~2.5 s.
MAX_HTML_CHARS = 2_000_000
MAX_HTML_TAGS = 20_000
# A block notice only counts when the page yields less article text than this:
# real articles often mention "JavaScript" or "subscribe" somewhere.
_BLOCK_MAX_WORDS = 150
# Boilerplate patterns only apply to lines this short; paragraphs are kept.
_BOILERPLATE_MAX_WORDS = 30


@dataclass(frozen=True)
class Article:
    """An extracted article: ``text`` holds paragraphs separated by newlines."""

    title: str | None
    text: str


@dataclass(frozen=True)
class ExtractionOptions:
    """Which repairs run on top of trafilatura; defaults are what ships.

    All switches off is plain trafilatura in precision mode.
    """

    merge_split_bodies: bool = True
    drop_link_lists: bool = True
    drop_headline: bool = True
    # Names of the _BOILERPLATE line-pattern groups to apply.
    boilerplate: frozenset[str] = frozenset(BOILERPLATE_GROUPS)

    def __post_init__(self) -> None:
        unknown = self.boilerplate - frozenset(BOILERPLATE_GROUPS)
        if unknown:
            raise ValueError(f"unknown boilerplate groups: {sorted(unknown)}")


@dataclass(frozen=True)
class RawExtraction:
    """trafilatura's output before clean-up."""

    title: str | None
    text: str


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
    empty = RawExtraction(title=None, text="")
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
        result = trafilatura.bare_extraction(
            tree, url=url, favor_precision=True, include_comments=False, with_metadata=True
        )
    except SoftTimeLimitExceeded:
        raise
    except Exception:  # trafilatura is defensive but not total on odd trees
        return empty
    return RawExtraction(
        title=_clean(getattr(result, "title", None)) or None,
        text=_clean(getattr(result, "text", None)),
    )


def finish(raw: RawExtraction, options: ExtractionOptions) -> Article:
    """The cheap part of ``extract_article``: clean up trafilatura's text."""
    lines = raw.text.split("\n")
    if options.drop_headline:
        lines = _drop_headline(lines, raw.title)
    lines = [line.strip() for line in lines]
    lines = [line for line in lines if line and not _is_boilerplate(line, options)]
    return Article(title=raw.title, text="\n".join(lines))


def _bounded(html: str) -> str:
    """The start of ``html``: at most MAX_HTML_CHARS characters and the text
    before its (MAX_HTML_TAGS + 1)-th "<". Cutting the string costs nothing
    next to parsing it; lxml closes whatever the cut leaves open."""
    html = html[:MAX_HTML_CHARS]
    position = -1
    for _ in range(MAX_HTML_TAGS + 1):
        position = html.find("<", position + 1)
        if position < 0:
            return html
    return html[:position]


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
    <h1> (or a repeat of it after the lead) as a first paragraph. Only a line
    that IS the title, or one of its parts ("Headline | Site" gives
    "Headline" and "Site"), is a headline: a line that merely contains the
    title ("Notice version 1: the museum changes..." under the title
    "Notice") or that the title contains is body text, and stays.
    """
    if not title:
        return lines
    wanted = {_norm(part) for part in (title, *_TITLE_SEPARATOR.split(title))} - {""}
    for index, line in enumerate(lines[:3]):
        if _norm(line) in wanted:
            return lines[:index] + lines[index + 1 :]
    return lines


# What sites put between a headline and their name in <title>: "A | B", "A - B".
_TITLE_SEPARATOR = re.compile(r"\s+[|\-\u2013\u2014:\u00b7\u2022\u00bb/]\s+")


# Short lines that are page furniture, not article text, by kind. Each pattern
# matches from a line's start: furniture is a call to action or a label that
# the line IS ("Follow us on Twitter", "Related: ..."), while a sentence of the
# article may well mention one ("Fans follow him on Instagram", "...in the
# city's newsletter") and is body text trafilatura kept, so it stays.
_BOILERPLATE: dict[str, list[re.Pattern[str]]] = {
    name: [re.compile(pattern, re.I) for pattern in patterns]
    for name, patterns in {
        "share": [
            r"^(share|tweet|email|print|save)( (this|the))?( (article|story|page|post))?\W*$",
            r"^share (it|this( \w+)?) with (a friend|your friends|friends)\b",
            r"^share (on|via) (facebook|twitter|whatsapp|linkedin|email)\b",
            r"^follow\b.{0,60}\b(on|at) (twitter|facebook|instagram|youtube|linkedin)\b",
            r"^follow (us|him|her|me|them) (on|at|@)",
        ],
        "newsletter": [
            r"^(subscribe|sign up|join|register)\b.{0,80}\b(newsletter|inbox|updates)\b",
            r"^(subscribe|sign up|register)( (now|today|here))?\W*$",
            r"^(subscribe (now|today|here)|by subscribing)\b",
            r"^([\w'\u2019]+ ){0,3}newsletter\W*$",
            r"^(get|try|read) (our|the|a) [\w\s]{0,30}newsletter\b",
            r"^get\b.{0,60}\bdelivered (to your inbox|through your letterbox|to your door)\b",
            r"^sign up for\b.{0,60}\b(newsletter|today|inbox|updates)\b",
        ],
        "teasers": [
            r"^(related|see more|read more|more|also read|read also|don'?t miss|most read"
            r"|you may also like|recommended|leggi anche|lesen sie auch|lire aussi|leia também)"
            r"\b.{0,5}(:|$|\.\.\.|…)",
            r"^(related|see more|read more|also read|also on|more)\s*:",
        ],
        "page_tools": [
            r"^\d*\s*comments?\W*$",
            r"^tell us what you think\b",
            r"^(order reprints|print article|text size|reprints?)\W*$",
        ],
        "credits": [
            r"^write to .{0,60}@",
            r"^([\w.'\u2019-]+ ){1,6}contributed (to this (report|story|article)|reporting)\b",
            r"^(additional reporting|contributing (reporting|writer|editor))\b",
            # A byline names someone: capitalised words ("By train or by car."
            # is a sentence), and the particles of names.
            r"^(by|written by|posted by|published by)"
            r"(?-i:( [A-Z\u00c0-\u00d6\u00d8-\u00de][\w.'\u2019-]*| (and|de|da|van|von|der|del)\b)"
            r"{0,6})\W*$",
        ],
    }.items()
}


def _is_boilerplate(line: str, options: ExtractionOptions) -> bool:
    """Is ``line`` (stripped) a short line matching an enabled pattern group?"""
    if len(line.split()) > _BOILERPLATE_MAX_WORDS:
        return False
    return any(
        pattern.search(line) for name in options.boilerplate for pattern in _BOILERPLATE[name]
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
