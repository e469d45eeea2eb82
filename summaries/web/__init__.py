"""The web page at / (submit, live progress, result) and its analytics page:
Django templates and a little JavaScript, every asset served from here."""
