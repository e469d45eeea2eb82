"""Which tokens carry a fact a summary would state: numbers, dates, names, negation.

Two copies of a story may differ in boilerplate, never in these. The word
lists cover the languages SmartCache detects most (en, de, fr, es, and it,
pt, nl because they cost nothing); a language not listed still has its
digits, currency signs and capitalised names checked. A word listed here
that is not a fact in some sentence ("personne" as a noun) only makes a
refusal more likely: the safe side.
"""

from __future__ import annotations

from typing import Literal

from .text import Token

__all__ = ["FactKind", "fact_kind", "skeleton"]

FactKind = Literal["negation", "date", "number", "name"]


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


_NEGATIONS = _words("""
    not no never none nobody nothing nowhere neither nor cannot without
    nicht kein keine keinen keinem keiner keines nie niemals niemand nichts weder ohne
    ne pas jamais aucun aucune aucuns aucunes personne rien ni sans non guère
    nunca jamás nadie nada ninguno ninguna ningún ningunos ningunas tampoco sin
    mai nessuno nessuna niente nulla né senza
    não nenhum nenhuma ninguém nem sem
    niet geen nooit niemand niets noch zonder
""")
# Contracted negations: "don't", "isn't" (en); "n'est", "n'a" (fr).
_NEGATION_SUFFIX = "n't"
_NEGATION_PREFIX = "n'"

# Month and weekday names, lowercase where the language writes them so (fr,
# es, it, pt, nl); their capitalised forms (en, de) are names anyway, but a
# changed month is reported as a date.
_DATES = _words("""
    january february march april may june july august september october november december
    monday tuesday wednesday thursday friday saturday sunday
    januar februar märz juni juli oktober dezember jänner
    montag dienstag mittwoch donnerstag freitag samstag sonntag
    janvier février mars avril mai juin juillet août septembre octobre novembre décembre
    lundi mardi mercredi jeudi vendredi samedi dimanche
    enero febrero marzo abril mayo junio julio agosto septiembre setiembre octubre
    noviembre diciembre lunes martes miércoles jueves viernes sábado domingo
    gennaio febbraio aprile maggio giugno luglio settembre ottobre dicembre
    janeiro fevereiro março maio junho julho setembro outubro novembro dezembro
    januari februari maart mei augustus
""")

_NUMBER_WORDS = _words("""
    zero one two three four five six seven eight nine ten eleven twelve twenty thirty
    forty fifty hundred thousand million billion trillion dozen half percent
    null eins zwei drei vier fünf sechs sieben acht neun zehn zwölf zwanzig hundert
    tausend millionen milliarde milliarden hälfte prozent
    zéro deux trois quatre cinq six sept huit neuf dix douze vingt cent cents mille
    millions milliard milliards moitié
    cero dos tres cuatro cinco seis siete ocho nueve diez doce veinte cien ciento mil
    millón millones mitad
""")
_NUMBER_CHARS = frozenset("0123456789$€£¥₹₽%")


def fact_kind(token: Token) -> FactKind | None:
    """The kind of fact ``token`` states, or None for an ordinary word."""
    fold = token.fold
    if fold in _NEGATIONS or fold.endswith(_NEGATION_SUFFIX) or fold.startswith(_NEGATION_PREFIX):
        return "negation"
    if fold in _DATES:
        return "date"
    if fold in _NUMBER_WORDS or not _NUMBER_CHARS.isdisjoint(fold):
        return "number"
    if token.raw[:1].isupper():
        return "name"
    return None


_PLACEHOLDERS: dict[FactKind, str] = {"negation": "~", "date": "D", "number": "#", "name": "N"}


def skeleton(tokens: list[Token]) -> tuple[str, ...]:
    """The tokens with each fact replaced by its kind: the shape of a sentence.

    Two sentences with one skeleton but different facts are the same sentence
    edited: the case :func:`.exact.confirm` must refuse.
    """
    shape = []
    for token in tokens:
        kind = fact_kind(token)
        shape.append(_PLACEHOLDERS[kind] if kind else token.fold)
    return tuple(shape)
