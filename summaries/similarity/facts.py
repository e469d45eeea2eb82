"""Which tokens carry a fact a summary would state: numbers, dates, names, negation.

Two copies of a story may differ in boilerplate, never in these. The word
lists cover the languages SmartCache detects most (en, de, fr, es; it, pt
and nl because they cost nothing), chosen by the text's detected language
("mai" is May in French and German, "never" in Italian); for another
language or none, the union of all. Digits, currency signs, percent and
capitalised words (names; in German every noun, which only makes refusals
likelier: the safe side) count in every language.
"""

from __future__ import annotations

from typing import Literal

from .text import Token

__all__ = ["FactKind", "fact_kind", "fact_value", "skeleton"]

FactKind = Literal["negation", "date", "number", "name"]


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


_NEGATIONS = {
    "en": _words("not no never none nobody nothing nowhere neither nor cannot without"),
    "de": _words("nicht kein keine keinen keinem keiner keines nie niemals niemand nichts "
                 "weder ohne"),
    "fr": _words("ne pas jamais aucun aucune aucuns aucunes personne rien ni sans non guère"),
    "es": _words("no nunca jamás nadie nada ninguno ninguna ningún ningunos ningunas "
                 "tampoco sin ni"),
    "it": _words("non mai nessuno nessuna niente nulla né senza"),
    "pt": _words("não nunca jamais nenhum nenhuma ninguém nada nem sem"),
    "nl": _words("niet geen nooit niemand niets noch zonder"),
}
# Month and weekday names: lowercase where the language writes them so.
_DATES = {
    "en": _words("january february march april may june july august september october "
                 "november december monday tuesday wednesday thursday friday saturday "
                 "sunday"),
    "de": _words("januar jänner februar märz april mai juni juli august september oktober "
                 "november dezember montag dienstag mittwoch donnerstag freitag samstag "
                 "sonntag"),
    "fr": _words("janvier février mars avril mai juin juillet août septembre octobre "
                 "novembre décembre lundi mardi mercredi jeudi vendredi samedi dimanche"),
    "es": _words("enero febrero marzo abril mayo junio julio agosto septiembre setiembre "
                 "octubre noviembre diciembre lunes martes miércoles jueves viernes sábado "
                 "domingo"),
    "it": _words("gennaio febbraio marzo aprile maggio giugno luglio agosto settembre "
                 "ottobre novembre dicembre lunedì martedì mercoledì giovedì venerdì sabato "
                 "domenica"),
    "pt": _words("janeiro fevereiro março abril maio junho julho agosto setembro outubro "
                 "novembro dezembro"),
    "nl": _words("januari februari maart april mei juni juli augustus september oktober "
                 "november december maandag dinsdag woensdag donderdag vrijdag zaterdag "
                 "zondag"),
}
_NUMBER_WORDS = {
    "en": _words("zero one two three four five six seven eight nine ten eleven twelve "
                 "twenty thirty forty fifty hundred thousand million billion trillion "
                 "dozen half percent"),
    "de": _words("null eins zwei drei vier fünf sechs sieben acht neun zehn elf zwölf "
                 "zwanzig hundert tausend million millionen milliarde milliarden hälfte "
                 "prozent"),
    "fr": _words("zéro un deux trois quatre cinq six sept huit neuf dix onze douze vingt "
                 "cent cents mille million millions milliard milliards moitié"),
    "es": _words("cero uno dos tres cuatro cinco seis siete ocho nueve diez once doce "
                 "veinte cien ciento mil millón millones mitad"),
}
_ANY = "*"
for _table in (_NEGATIONS, _DATES, _NUMBER_WORDS):
    _table[_ANY] = frozenset().union(*_table.values())
# Contracted negations: "don't", "isn't" (en); "n'est", "n'a" (fr).
_NEGATION_SUFFIX = "n't"
_NEGATION_PREFIX = "n'"
_NUMBER_CHARS = frozenset("0123456789$€£¥₹₽%")


def fact_kind(token: Token, language: str | None = None) -> FactKind | None:
    """The kind of fact ``token`` states in ``language``, or None for an ordinary word."""
    fold = token.fold
    key = language if language in _NEGATIONS else _ANY
    if (fold in _NEGATIONS[key] or fold.endswith(_NEGATION_SUFFIX)
            or (key in ("fr", _ANY) and fold.startswith(_NEGATION_PREFIX))):
        return "negation"
    if fold in _DATES.get(language or _ANY, _DATES[_ANY]):
        return "date"
    if fold in _NUMBER_WORDS.get(language or _ANY, _NUMBER_WORDS[_ANY]) \
            or not _NUMBER_CHARS.isdisjoint(fold):
        return "number"
    if token.raw[:1].isupper():
        return "name"
    return None


def fact_value(token: Token, kind: FactKind) -> str:
    """What must be equal: the token as written, or only "a negation" for one
    ("did not" and "didn't" state the same)."""
    return "¬" if kind == "negation" else token.raw


_PLACEHOLDERS: dict[FactKind, str] = {"negation": "~", "date": "D", "number": "#", "name": "N"}


def skeleton(tokens: list[Token], language: str | None = None) -> tuple[str, ...]:
    """The tokens with each fact replaced by its kind: the shape of a sentence.

    Two sentences with one shape but other facts are the same sentence
    edited: the case :func:`.exact.confirm` must refuse.
    """
    shape = []
    for token in tokens:
        kind = fact_kind(token, language)
        shape.append(_PLACEHOLDERS[kind] if kind else token.fold)
    return tuple(shape)
