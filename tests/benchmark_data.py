"""The extraction benchmark's development set (../shared/extraction-benchmark)
and a small hand-written article, shared by the extraction tests."""

from __future__ import annotations

import gzip
import json
from functools import cache
from pathlib import Path
from typing import Any

from trafilatura.utils import decode_file

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "extraction-benchmark"

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


@cache
def ground_truth() -> dict[str, Any]:
    """{page id: {"articleBody", "url"}}; fails loudly if the data set is missing."""
    return json.loads((DATA / "ground-truth.json").read_text(encoding="utf-8"))  # type: ignore[no-any-return]


def page_path(page_id: str) -> Path:
    return DATA / "html" / f"{page_id}.html.gz"


def page_html(page_id: str) -> str:
    return decode_file(gzip.decompress(page_path(page_id).read_bytes()))
