"""The core: pure code that every layer may use and that imports none of them,
nor Django, Celery or a Valkey client (checked by `make lint`): the app's
exceptions and error codes (errors), the submit outcomes (outcomes), input
normalisation and cache keys (inputs), URL canonicalisation (canonical_urls),
languages and their word lists (language, lexicon), token estimates (tokens)."""
