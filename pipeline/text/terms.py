"""Turn ticket text into a full-text query of its salient terms.

Tickets are chatty ("Hi team, please help, since this morning...") and a plain AND of every
word matches nothing, so the query keeps the distinctive words (no stop words, no greeting
filler, no numbers-only tokens), subject first, and ORs them: ``ts_rank_cd`` then rewards the
documents that share the most, and the closest, terms.
"""

from __future__ import annotations

import re

from pipeline.text.html_text import html_to_text

_WORD = re.compile(r"[a-z][a-z0-9]{2,}")
_STOP = frozenset(
    """
a about above after again against all also am an and any are as at be because been before
being below between both but by can cannot could did do does doing down during each few
for from further had has have having he her here hers him his how i if in into is it its
itself just me more most my no nor not now of off on once only or other our out over own
same she should so some such than that the their them then there these they this those
through to too under until up very was we were what when where which while who whom why
will with would you your yours hi hello hey team thanks thank please pls help urgent asap
issue issues problem problems ticket user users since today yesterday morning afternoon
evening still again get got getting anyone someone working work works seems seem able
unable cant can't won't dont regards best kind dear sir madam know let need needs want
trying tried see seeing also via
""".split()  # noqa: SIM905 - a word list reads better as text
)


def salient_terms(subject: str, description: str, *, max_terms: int = 12) -> list[str]:
    terms: list[str] = []
    for source in (subject, description):
        for word in _WORD.findall(html_to_text(source).lower()):
            if word not in _STOP and word not in terms:
                terms.append(word)
                if len(terms) >= max_terms:
                    return terms
    return terms


def tsquery_for(terms: list[str]) -> str | None:
    """An OR query for ``to_tsquery``; terms are already [a-z0-9] only, so nothing to escape."""
    return " | ".join(terms) if terms else None
