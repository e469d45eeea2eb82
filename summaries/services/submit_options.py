"""What a submit asks for besides its input, built once by the caller (the
API's serializer, a batch item, a watch, the admin) and passed whole."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from summaries.core.forms import DEFAULT_FORM, Form
from summaries.core.lanes import Lane


@dataclass(frozen=True)
class SubmitOptions:
    """``refresh``: make the summary anew, neither served from the cache nor
    joined to a finished job. ``max_age`` (seconds): a cached summary older
    than that is not served; the submit refreshes it. ``store=False``: a new
    job's result is not cached and its input is blanked once it is finished.
    ``language`` (a tag, "de"): the summary is written in it. ``form``: its
    style (prose or bullets) and length (short, medium, long). ``callback_url``:
    the job's status is POSTed there once finished (``watch_id``: for a
    watch's change). ``run_at``: a scheduled job that starts then. ``queue``:
    the lane its job is sent to. ``near_duplicates=False``: never answered
    with a near-duplicate's summary (services/near_duplicates.py)."""

    refresh: bool = False
    max_age: int | None = None
    store: bool = True
    language: str | None = None
    form: Form = DEFAULT_FORM
    callback_url: str = ""
    run_at: datetime | None = None
    watch_id: str | None = None
    queue: str = Lane.INTERACTIVE
    near_duplicates: bool = True


# A plain submit's options.
DEFAULTS = SubmitOptions()
