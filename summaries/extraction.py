"""Extract an article's main text from a fetched web page.

trafilatura does the heavy lifting; this module adds a few generic repairs
measured on ``bench/extraction.py`` (each one is explained where it happens):

1. before extraction, re-join an article body split into several same-class
   containers and drop lists made only of links (teaser lists);
2. run trafilatura in precision mode, falling back to recall mode when the
   precise output looks truncated;
3. after extraction, drop a repeated headline and short boilerplate lines
   (share/follow/newsletter prompts, "Related:" teasers, credits, bylines).

``unavailable_reason`` tells a block page (JavaScript shell, bot challenge,
paywall stub) or a too-short extraction apart from a real article.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import trafilatura
from lxml.html import HtmlElement
from trafilatura.utils import load_html

__all__ = ["MIN_WORDS", "Article", "extract_article", "unavailable_reason", "word_count"]

# Fewer words than this is not worth summarising.
MIN_WORDS = 40
# A block notice only counts when the page yields less article text than this:
# real articles often mention "JavaScript" or "subscribe" somewhere.
_BLOCK_MAX_WORDS = 150
# The precise output is considered truncated below this share of the recall
# output (in characters, so it works for scripts without spaces).
_TRUNCATED_SHARE = 0.25
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


def extract_article(html: str, *, url: str | None = None) -> Article:
    """Return the main text and title of ``html``.

    Never raises: unparseable or empty HTML gives ``Article(None, "")``.
    ``url`` is only a hint for trafilatura (metadata, relative links).
    """
    try:
        tree = load_html(html)
    except Exception:  # lxml raises a variety of errors on garbage input
        return Article(title=None, text="")
    if tree is None:
        return Article(title=None, text="")
    _merge_split_bodies(tree)
    _drop_link_lists(tree)
    try:
        precise = trafilatura.bare_extraction(
            tree, url=url, favor_precision=True, include_comments=False, with_metadata=True
        )
        recall = trafilatura.extract(tree, url=url, favor_recall=True, include_comments=False)
    except Exception:  # trafilatura is defensive but not total on odd trees
        return Article(title=None, text="")
    title = _clean(getattr(precise, "title", None)) or None
    text = _clean(getattr(precise, "text", None))
    recall_text = _clean(recall)
    # Precision mode sometimes latches onto a teaser box and drops the story
    # (a quarter of what recall finds is far below its usual trimming).
    if len(text) < _TRUNCATED_SHARE * len(recall_text):
        text = recall_text
    lines = _drop_headline(text.split("\n"), title)
    lines = [line for line in lines if not _is_boilerplate(line)]
    return Article(title=title, text="\n".join(line for line in lines if line.strip()))


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
_BOILERPLATE = [
    re.compile(pattern, re.I)
    for pattern in (
        # Share / follow widgets.
        r"^(share|tweet|email|print|save)( (this|the))?( (article|story|page|post))?\W*$",
        r"\bshare (it|this( \w+)?) with (a friend|your friends|friends)\b",
        r"\bshare (on|via) (facebook|twitter|whatsapp|linkedin|email)\b",
        r"\bfollow\b.{0,60}\b(on|at) (twitter|facebook|instagram|youtube|linkedin)\b",
        r"\bfollow (us|him|her|me|them) (on|at|@)",
        # Newsletter and subscription prompts.
        r"^(subscribe|sign up|join|register)\b.{0,80}\b(newsletter|inbox|updates|today|now|here)\b",
        r"\b(your inbox|by subscribing|subscribe (now|today|here))\b",
        r"\bnewsletter\W*$",
        r"\b(our|free|daily|weekly) [\w\s]{0,30}newsletter\b",
        r"\bdelivered (to your inbox|through your letterbox|to your door)\b",
        r"\bsign up for\b.{0,60}\b(newsletter|today|inbox|updates)\b",
        # Advertising labels.
        r"^(advertisement|advertising|sponsored( content)?|ad)\W*$",
        r"\bcontinues? below( (this|the))? (advertisement|ad)\b",
        # Teasers for other stories.
        r"^(related|see more|read more|more|also read|read also|don'?t miss|most read"
        r"|you may also like|recommended|leggi anche|lesen sie auch|lire aussi|leia também)"
        r"\b.{0,5}(:|$|\.\.\.|…)",
        r"^(related|see more|read more|also read|also on|more)\s*:",
        # Comment and page-tool leftovers.
        r"^\d*\s*comments?\W*$",
        r"\btell us what you think\b",
        r"^(order reprints|print article|text size|reprints?)\W*$",
        # Credits and bylines on their own line.
        r"^write to .{0,60}@",
        r"\bcontributed (to this (report|story|article)|reporting)\b",
        r"^(additional reporting|contributing)\b",
        r"^(by|written by|posted by|published by)( [\w.'\u2019-]+){0,4}\W*$",
    )
]
# A line that is mostly a date or time ("Updated at 1:23 p.m.").
_DATE = re.compile(r"\d{1,2}:\d{2}|\d{1,2}/\d{1,2}/\d{2,4}|\b" + _MONTH + r" \d{1,2},? \d{4}", re.I)
_DATE_WORDS = re.compile(
    r"\b(" + _MONTH + r"|(mon|tues|wednes|thurs|fri|satur|sun)day|[ap]\.?m\.?|(?-i:[A-Z]{2,4}T)"
    r"|updated|published|posted|last|at|on|by|\d+)\b",
    re.I,
)


def _is_boilerplate(line: str) -> bool:
    stripped = line.strip()
    words = len(stripped.split())
    if words > _BOILERPLATE_MAX_WORDS:
        return False
    if _DATE.search(stripped):
        rest = _WORD.findall(_DATE_WORDS.sub(" ", stripped))
        if len(rest) <= _DATELINE_MAX_OTHER_WORDS:
            return True
    return any(pattern.search(stripped) for pattern in _BOILERPLATE)


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
