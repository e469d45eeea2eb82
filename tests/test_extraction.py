"""Article extraction: quality on real pages, boilerplate, block pages.

No database or network: pages come from the shared extraction benchmark.
"""

from __future__ import annotations

import pytest

from bench.extraction import shingle_scores
from summaries.extraction import Article, extract_article, unavailable_reason
from tests.benchmark_data import PARAGRAPHS, ground_truth, page_html


def _f1(predicted: str, truth: str) -> float:
    precision, recall = shingle_scores(predicted, truth)
    return 2 * precision * recall / (precision + recall) if precision + recall else 0.0


def _article_html(*, before: str = "", after: str = "", body: str | None = None) -> str:
    paragraphs = "".join(f"<p>{text}</p>" for text in PARAGRAPHS)
    return (
        "<html><head><title>Ferry service to expand</title></head><body>"
        "<nav><a href='/'>Home</a> <a href='/news'>News</a></nav>"
        f"<article><h1>Ferry service to expand</h1>{before}"
        f"<div class='article-body'>{body if body is not None else paragraphs}</div>"
        f"{after}</article><footer>Contact us</footer></body></html>"
    )


@pytest.mark.parametrize(
    ("page_id", "minimum"),
    [
        # An ordinary news story.
        ("c7e39ac49fa1235f5d50f83bf2444248bd3aa4e6df044377916c812dd109ba23", 0.95),
        # A body split into several containers: trafilatura alone gets F1 0.62.
        ("2f42ef1d3ea0c96e56355d3db93d0e06b47e760b74f6f4261278b8cd1c246dd6", 0.93),
        # Related-links lists between paragraphs.
        ("c50845a7158af12ee75acea301a3ea0dad1e848d6b9dbdb43ba7f2d825b2528b", 0.95),
        # Precision mode keeps only a teaser here (F1 0); the recall fallback recovers it.
        ("f8ff621a0b9b7646cc0d57d37416feabba2bf78ef5dd0bfc5b080f9f97bbe584", 0.8),
    ],
)
def test_benchmark_pages_reach_high_f1(page_id: str, minimum: float) -> None:
    entry = ground_truth()[page_id]
    article = extract_article(page_html(page_id), url=entry["url"])
    assert _f1(article.text, entry["articleBody"]) >= minimum
    assert article.title


def test_no_benchmark_article_is_flagged_unavailable() -> None:
    flagged = {}
    for page_id, entry in ground_truth().items():
        html = page_html(page_id)
        reason = unavailable_reason(html, extract_article(html, url=entry["url"]))
        if reason is not None:
            flagged[page_id] = reason
    assert flagged == {}


def test_extracts_paragraphs_and_title() -> None:
    article = extract_article(_article_html())
    assert article.title == "Ferry service to expand"
    assert article.text.split("\n") == PARAGRAPHS


def test_boilerplate_lines_are_removed() -> None:
    article = extract_article(
        _article_html(
            before="<p>By Jane Doe</p><p>Updated at 1:23 p.m.</p>",
            after=(
                "<p>Share this article</p>"
                "<p>Sign up for our daily newsletter to get the top stories in your inbox.</p>"
                "<p>Advertisement</p>"
                "<p>Related: Bus fares to rise in January</p>"
                "<p>Follow us on Twitter and Facebook.</p>"
                "<ul><li><a href='/a'>Bridge closure extended again</a></li>"
                "<li><a href='/b'>New cycle lanes open downtown</a></li></ul>"
            ),
        )
    )
    assert article.text.split("\n") == PARAGRAPHS


def test_long_paragraph_mentioning_subscribe_is_kept() -> None:
    mention = (
        "Commuters who subscribe to the monthly pass will pay the same fare on the ferry as on "
        "the bus, the council said, and a newsletter will announce the timetable in advance."
    )
    body = "".join(f"<p>{p}</p>" for p in [*PARAGRAPHS, mention])
    article = extract_article(_article_html(body=body))
    assert mention in article.text


def test_headline_repeated_in_body_is_dropped() -> None:
    article = extract_article(_article_html())
    assert "Ferry service to expand" not in article.text


def test_body_split_into_several_containers_is_rejoined() -> None:
    first, second = PARAGRAPHS[:2], PARAGRAPHS[2:]
    html = (
        "<html><head><title>Ferry service to expand</title></head><body><main>"
        "<div class='story-body'>" + "".join(f"<p>{p}</p>" for p in first) + "</div>"
        "<aside class='ad-rail'><p>Advertisement</p></aside>"
        "<div class='story-body'>" + "".join(f"<p>{p}</p>" for p in second) + "</div>"
        "</main></body></html>"
    )
    assert extract_article(html).text.split("\n") == PARAGRAPHS


@pytest.mark.parametrize(
    "html",
    ["", "   ", "<<<>>>", "\x00\x01\x02", "<html></html>", "<html><body></body></html>", "<?xml"],
)
def test_empty_or_garbage_html_gives_empty_text(html: str) -> None:
    article = extract_article(html)
    assert article == Article(title=article.title, text="")
    assert unavailable_reason(html, article) == "extracted text too short (0 words)"


def _stub(body: str, title: str = "Example") -> str:
    return f"<html><head><title>{title}</title></head><body>{body}</body></html>"


@pytest.mark.parametrize(
    ("html", "reason"),
    [
        (
            _stub(
                "<noscript>You need to enable JavaScript to run this app.</noscript>"
                "<div id='root'></div><script src='/app.js'></script>",
                "App",
            ),
            "page requires JavaScript",
        ),
        (
            _stub(
                "<h1>Checking your browser before accessing example.com.</h1>"
                "<p>This process is automatic. Please allow up to 5 seconds.</p>"
                "<form id='challenge-form' action='/?__cf_chl_jschl_tk__=abc'></form>",
                "Just a moment...",
            ),
            "page is a CAPTCHA/bot challenge",
        ),
        (
            _stub(
                "<p>Please verify you are a human.</p><div class='g-recaptcha'></div>",
                "Are you a robot?",
            ),
            "page is a CAPTCHA/bot challenge",
        ),
        (
            _stub(
                "<article><h1>Markets rally</h1><p>Stocks rose sharply on Monday.</p>"
                "<p>Subscribe to continue reading. Already a subscriber? Sign in.</p></article>"
            ),
            "page is a paywall stub",
        ),
        (
            _stub("<article><p>Short note: the office is closed today.</p></article>"),
            "extracted text too short (",
        ),
    ],
)
def test_block_and_short_pages_are_flagged(html: str, reason: str) -> None:
    assert (unavailable_reason(html, extract_article(html)) or "").startswith(reason)


def test_real_article_mentioning_javascript_and_captcha_is_not_flagged() -> None:
    html = _article_html(
        after="<noscript>Please enable JavaScript to view the comments.</noscript>"
        "<form class='comment-form'><div class='g-recaptcha'></div></form>"
    )
    article = extract_article(html)
    assert unavailable_reason(html, article) is None


def test_long_article_with_paywall_markup_is_not_flagged() -> None:
    # Metered sites ship the paywall overlay with every article.
    body = "".join(f"<p>{p}</p>" for p in PARAGRAPHS + [p.upper() for p in PARAGRAPHS])
    html = _article_html(
        body=body, after="<div class='paywall'>Subscribe to continue reading.</div>"
    )
    article = extract_article(html)
    assert unavailable_reason(html, article) is None
