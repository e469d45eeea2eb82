"""summaries.core."""
