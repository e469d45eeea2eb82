"""Business logic: submitting (API side), processing (worker side) and the
fetch → extract → summarise pipeline both the worker and the CLI run."""
