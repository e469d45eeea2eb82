"""summaries.infra."""
