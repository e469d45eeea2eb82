"""A news story, another story, and the story as another site runs it:
written for the near-duplicate tests (tests/test_similarity.py,
tests/test_near_duplicates.py)."""

from __future__ import annotations

STORY = """\
Officials in Riverton said on Tuesday that the city's new water treatment plant will \
open on March 14, two years later than first planned and $1,250,000 over its budget.

Mayor Helen Ostrowski told reporters the delay was caused by a shortage of steel pipe \
and by a design change ordered after the 2022 floods. "We did not cut corners on safety," \
she said. "The plant is built to last for fifty years."

The plant will treat up to 40 million litres a day, about 35% more than the old works \
on Mill Road, which has served the city since 1958 and will close in the autumn.

Residents have complained for years about discoloured water in the eastern districts. \
Council engineer David Mensah said the new plant would not fix every old main, but that \
a separate programme would replace 12 kilometres of pipe by the end of next year.

The council will hold an open day at the plant on the Saturday after it opens, with \
guided tours every hour from 10 a.m."""

OTHER = """\
A rare orchid that botanists feared had vanished from the northern valleys has been \
found flowering beside a forestry track, a volunteer survey reported this week.

The plant, a pale yellow lady's slipper, was last recorded in the area by a schoolteacher \
who pressed a specimen in her notebook. Survey leader Amira Haddad said the team counted \
seven flowering stems and several young shoots, a sign the colony is breeding.

Forestry staff have agreed to move a planned timber extraction route away from the site, \
and the exact location will be kept secret to protect the flowers from collectors who \
have stripped other colonies in the past."""


def syndicated(text: str) -> str:
    """The story as another site runs it."""
    paragraphs = text.split("\n\n")[:-1]  # the last paragraph trimmed
    paragraphs.insert(2, "Related: City budget talks stall again as council splits")
    body = "\n\n".join([
        "Skip to content", "Home | Local | Business | Sport",
        "Riverton water plant to open in March after long delay",
        "By Sofia Lindqvist, Valley Courier", "Published 3 hours ago",
        *paragraphs,
        "Sign up for our newsletter. Copyright 2024 Valley Courier. All rights reserved.",
    ])
    body = body.replace('"We', "\u201cWe").replace('," she', ",\u201d she")
    body = body.replace("city's", "city\u2019s")
    # Reflowed: wrapped at 60 columns, odd spaces.
    lines = []
    for paragraph in body.split("\n\n"):
        line = ""
        for word in paragraph.split(" "):
            if line and len(line) + len(word) > 60:
                lines.append(line)
                line = word
            else:
                line = f"{line}  {word}" if line else word
        lines.extend([line, ""])
    return "\n".join(lines)


def story(place: str) -> str:
    """STORY told of another city (a fresh input for each test)."""
    return STORY.replace("Riverton", place)


def news_page(site: str, headline: str, byline: str, paragraphs: list[str],
              extra: str = "") -> str:
    """An article page of ``site``: its own navigation, headline, byline,
    sidebar and footer around ``paragraphs``."""
    body = "".join(f"<p>{paragraph}</p>" for paragraph in paragraphs)
    return f"""<!doctype html><html><head><title>{headline} | {site}</title></head><body>
<header><nav><a href="/">Home</a> <a href="/local">Local</a> <a href="/sport">Sport</a></nav>
</header>
<main><article><h1>{headline}</h1><p class="byline">{byline}</p>{body}{extra}</article></main>
<aside><h2>Most read on {site}</h2><ul><li><a href="/a">Storm closes coast road</a></li>
<li><a href="/b">School wins robotics prize</a></li></ul></aside>
<footer><p>Copyright 2026 {site}. All rights reserved.</p></footer></body></html>"""
