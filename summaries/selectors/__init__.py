"""Selectors: reads that answer the API's questions (analytics, capacity)."""
