"""The labelled near-duplicate set of bench/neardup.py, built from article texts.

Every variant is derived deterministically (a random.Random seeded by a
string, which does not depend on PYTHONHASHSEED) from the ``articleBody`` of
the development pages. Positives are copies a syndicating site would publish
(they MUST share the original's summary); hard negatives state other facts
or another story (they MUST NOT).
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable
from dataclasses import dataclass

BOILERPLATE_TOP = [
    "Skip to main content", "Home | News | Business | Sport | Culture | Opinion",
    "Subscribe now for unlimited access to our journalism.",
    "This article is more than 2 years old", "Advertisement",
    "We use cookies to improve your experience. By continuing you accept our cookie policy.",
]
BOILERPLATE_BOTTOM = [
    "Sign up for our morning newsletter and get the day's top stories in your inbox.",
    "Share this article: Facebook Twitter Email", "Copyright 2024 Metro Daily Herald. All "
    "rights reserved. This material may not be published, broadcast, rewritten or "
    "redistributed.", "Comments are closed.", "Most read: Weather warning issued for the "
    "weekend; Council approves new budget; Local team wins cup final.",
]
FIRST_NAMES = ["Maria", "James", "Aisha", "Kenji", "Sofia", "Liam", "Olga", "Pedro"]
LAST_NAMES = ["Okafor", "Lindqvist", "Moreau", "Tanaka", "Kowalski", "Haddad", "Brennan"]
SITES = ["The Valley Courier", "Northern Ledger", "Metro Daily Herald", "Coastal Times"]
MONTHS = ["January", "February", "March", "April", "May", "June", "July", "August",
          "September", "October", "November", "December"]
_AUXILIARIES = re.compile(r"\b(is|was|are|were|will|would|can|could|has|have|had|should)\b ")
_NEGATION = re.compile(r"\b(not|never) |(?<=\w\w)(?<!ca)(?<!wo)n't\b")
_NUMBER = re.compile(r"\b\d+\b")
_MONTH = re.compile(r"\b(" + "|".join(MONTHS) + r")\b")
# A capitalised word after a lowercase one: a name, not a sentence's first word.
_NAME = re.compile(r"(?<=[a-z,] )[A-Z][a-z]{2,}\b")


@dataclass(frozen=True)
class Pair:
    kind: str  # e.g. "pos:syndicated", "neg:number"
    original: str  # the article as first summarised
    query: str  # the later text that asks to share its summary
    match: bool  # True: must match the original; False: must match nothing


def paragraphs(text: str) -> list[str]:
    return [p.strip() for p in re.split(r"\n+", text) if p.strip()]


def _headline(rng: random.Random, words: list[str]) -> str:
    start = rng.randrange(max(1, len(words) - 8))
    return " ".join(w.capitalize() for w in words[start:start + 7])


def _byline(rng: random.Random) -> str:
    return (f"By {rng.choice(FIRST_NAMES)} {rng.choice(LAST_NAMES)}, {rng.choice(SITES)}\n"
            f"Published {rng.choice(MONTHS)} {rng.randint(1, 28)}, 2024")


def _reflow(rng: random.Random, text: str) -> str:
    """Paragraphs hard-wrapped at a column, with odd spaces between words."""
    out = []
    for para in paragraphs(text):
        words, lines, line = para.split(" "), [], ""
        width = rng.choice([60, 72, 80])
        for word in words:
            if line and len(line) + len(word) > width:
                lines.append(line)
                line = word
            else:
                line = f"{line}{rng.choice([' ', '  ', chr(0xa0)]) if line else ''}{word}"
        out.append("\n".join([*lines, line]))
    return "\n\n".join(out)


def _requote(text: str) -> str:
    """Curly quotes straight and straight ones curly: what another CMS does."""
    if any(c in text for c in "\u2018\u2019\u201c\u201d"):
        return (text.replace("\u2019", "'").replace("\u2018", "'")
                .replace("\u201c", '"').replace("\u201d", '"'))
    text = re.sub(r'"(\w)', "\u201c\\1", text).replace('"', "\u201d")
    return text.replace("'", "\u2019")


def syndicate(rng: random.Random, text: str, other: str, *, trim: bool = True,
              parts: frozenset[str] = frozenset({"all"})) -> str:
    """``text`` as another site publishes it; ``other`` lends a Related: headline."""
    def on(part: str) -> bool:
        return "all" in parts or part in parts
    paras = paragraphs(text)
    if on("trim") and trim and len(paras) >= 3:
        paras = paras[:-1]
    if on("related") and len(paras) >= 2:
        at = rng.randrange(1, len(paras))
        paras.insert(at, f"Related: {_headline(rng, other.split())}")
    if on("headline"):
        paras = [_headline(rng, text.split()), _byline(rng), *paras]
    if on("boilerplate"):
        paras = [*rng.sample(BOILERPLATE_TOP, 2), *paras, *rng.sample(BOILERPLATE_BOTTOM, 2)]
    body = "\n\n".join(paras)
    if on("quotes"):
        body = _requote(body)
    if on("reflow"):
        body = _reflow(rng, body)
    return body


def _replace_one(rng: random.Random, pattern: re.Pattern[str], text: str,
                 change: Callable[[str], str]) -> str | None:
    # Never in the last paragraph: a syndicated copy may trim it away.
    limit = text.rfind("\n")
    found = [m for m in pattern.finditer(text) if m.end() < limit]
    if not found:
        return None
    m = rng.choice(found)
    return text[:m.start()] + change(m.group()) + text[m.end():]


def change_number(rng: random.Random, text: str) -> str | None:
    return _replace_one(rng, _NUMBER, text, lambda n: str(int(n) + rng.randint(1, 9)))


def change_name(rng: random.Random, text: str) -> str | None:
    return _replace_one(rng, _NAME, text,
                        lambda n: rng.choice([x for x in LAST_NAMES if x != n]))


def change_date(rng: random.Random, text: str) -> str | None:
    return _replace_one(rng, _MONTH, text,
                        lambda m: MONTHS[(MONTHS.index(m) + rng.randint(1, 11)) % 12])


def change_negation(rng: random.Random, text: str) -> str | None:
    """One negation removed if the text has one, else one inserted."""
    removed = _replace_one(rng, _NEGATION, text, lambda n: "")
    if removed is not None:
        return removed
    return _replace_one(rng, _AUXILIARIES, text, lambda aux: f"{aux}not ")


def _halves(text: str) -> tuple[str, str]:
    """``text`` cut at the paragraph (or else sentence) end nearest its middle word."""
    parts = paragraphs(text)
    if len(parts) < 4:
        parts = re.split(r"(?<=[.!?])\s+", " ".join(parts))
    half, best, count = len(text.split()) / 2, 1, 0
    for i, part in enumerate(parts[:-1], start=1):
        count += len(part.split())
        if abs(count - half) < abs(sum(len(p.split()) for p in parts[:best]) - half):
            best = i
    return "\n\n".join(parts[:best]), "\n\n".join(parts[best:])


def mix(text: str, other: str) -> str:
    """The first half of ``text`` (by words), then the second half of ``other``."""
    return f"{_halves(text)[0]}\n\n{_halves(other)[1]}"


def with_quote(text: str, quote: str) -> str:
    paras = paragraphs(text)
    at = len(paras) // 2
    return "\n\n".join([*paras[:at], f"\u201c{quote}\u201d, she said.", *paras[at:]])


def pairs(articles: list[str], seed: str) -> list[Pair]:
    """All labelled pairs for ``articles`` (each pair's partner from the same list)."""
    out: list[Pair] = []
    n = len(articles)
    for i, text in enumerate(articles):
        rng = random.Random(f"{seed}:{i}")
        other = articles[(i + 1) % n]
        for part in ("boilerplate", "headline", "trim", "related", "reflow", "quotes"):
            out.append(Pair(f"pos:{part}", text, syndicate(rng, text, other,
                                                             parts=frozenset({part})), True))
        out.append(Pair("pos:syndicated", text, syndicate(rng, text, other), True))
        out.append(Pair("neg:other", text, articles[(i + 1 + rng.randrange(n - 1)) % n], False))
        out.append(Pair("neg:mixed", text, mix(text, other), False))
        words = articles[(i + 2) % n].split()
        quote = " ".join(words[:60])
        out.append(Pair("neg:shared_quote", with_quote(text, quote),
                        with_quote(articles[(i + 3) % n], quote), False))
        for kind, change in (("number", change_number), ("name", change_name),
                             ("date", change_date), ("negation", change_negation)):
            edited = change(rng, text)
            if edited is None or edited == text:
                continue
            out.append(Pair(f"neg:{kind}", text, edited, False))
            out.append(Pair(f"neg:{kind}+syndicated", text,
                            syndicate(rng, edited, other, trim=False), False))
    return out
