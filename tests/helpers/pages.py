"""The extraction tests' own pages: tests/fixtures/pages/*.html, written for
these tests, and the article bodies they hold (expected.json), plus a small
hand-written article built in code.

Article pages: ``ARTICLES``. Block pages (JavaScript shell, bot challenge,
paywall stub, a too-short notice): ``BLOCK_PAGES``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from summaries.fetching import decode_html

PAGES = Path(__file__).resolve().parents[1] / "fixtures" / "pages"


@dataclass(frozen=True)
class Expected:
    """What a fixture page holds: its URL, headline and article body."""

    url: str
    title: str
    body: str


@cache
def _expected() -> dict[str, Expected]:
    raw = json.loads((PAGES / "expected.json").read_text(encoding="utf-8"))
    return {name: Expected(e["url"], e["title"], e["articleBody"]) for name, e in raw.items()}


def expected(name: str) -> Expected:
    return _expected()[name]


def page_path(name: str) -> Path:
    return PAGES / name


def page_bytes(name: str) -> bytes:
    return page_path(name).read_bytes()


def page_html(name: str) -> str:
    """The page decoded as the fetcher would (BOM, <meta charset>, UTF-8)."""
    return decode_html(page_bytes(name))


# A news story with nav, cookie banner, share tools, related links, comments,
# a sidebar (most read, newsletter, ad slot) and a footer.
NEWS = "harbour-ferry.html"
# The body split into three containers, each in its own grid row with an ad rail.
SPLIT_BODY = "orchard-split.html"
# Lists of links to other stories between the body's paragraphs.
LINK_LISTS = "comet-probe.html"
# A blog post whose body ends with newsletter and follow prompts; comments below.
BLOG = "sourdough-blog.html"
# ISO-8859-1 bytes, declared only by <meta charset>.
LATIN1 = "village-fete-latin1.html"
ARTICLES = (NEWS, SPLIT_BODY, LINK_LISTS, BLOG, LATIN1)

BLOCK_PAGES = {
    "js-shell.html": "page requires JavaScript",
    "bot-challenge.html": "page is a CAPTCHA/bot challenge",
    "paywall.html": "page is a paywall stub",
    "office-notice.html": "extracted text too short (",
}

PARAGRAPHS = [
    "The city council voted on Tuesday to expand the harbour ferry service to three new "
    "stops, a decision that local businesses had been requesting for nearly a decade.",
    "Officials said the first of the new boats would enter service next spring, with the "
    "remaining two following in the autumn once crews have completed their training.",
    "Residents of the northern districts, who currently spend up to an hour commuting by "
    "bus, welcomed the plan but asked for evening sailings to be added as well.",
    "The project is expected to cost about twelve million euros, most of which will come "
    "from a regional transport fund rather than from the city's own budget.",
]
