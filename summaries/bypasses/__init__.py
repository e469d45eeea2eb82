"""summaries.bypasses."""
