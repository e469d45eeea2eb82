"""Representations: the bodies shared by the API and webhooks (bodies.py)."""
