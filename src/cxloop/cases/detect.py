"""What opens a follow-up case: a detractor, a low CSAT, or a negative comment.

The rule, answer by answer (all the question rows of one response together):

* **detractor**: an NPS answer on the 0-10 scale scoring 0-6;
* **low_csat**: a CSAT answer in the bottom two points of its scale (1-2 of 1-5, 1-2 of 1-7;
  on a 3-point scale the bottom point only, as two would be two thirds of it);
* **negative_comment**: a comment the *comment judge* calls negative.

The default judge, :func:`keyword_judge`, looks for words and phrases of complaint
(:data:`NEGATIVE_TERMS`: "late", "damaged", "refund", "not worth", ...) in the lower-cased text; it
is transparent and fast, and misses irony and other languages. It is a hook: any function from a
list of texts to a list of booleans can take its place, for instance one built on the voice
team's sentiment scores (``cxloop.voice.sentiment.score_texts(texts)["label"] == "negative"``),
passed as ``judge=`` to :func:`cxloop.cases.open_cases`.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from decimal import Decimal
from typing import Final

CommentJudge = Callable[[Sequence[str]], Sequence[bool]]
"""Which of these comments are negative (one boolean per text, in order)."""

REASONS: Final = ("detractor", "low_csat", "negative_comment")

NEGATIVE_TERMS: Final = (
    "late", "damaged", "broke", "broken", "defective", "poor", "refund", "never", "nobody",
    "complicated", "waiting", "slow", "failed", "worst", "terrible", "awful", "disappointed",
    "not worth", "rude", "mess", "cheap", "useless", "angry", "unacceptable", "cancel",
    "three times", "without the issue", "took days", "took ages", "did not work", "didn't work",
)  # fmt: skip
_TERMS = re.compile(r"\b(?:" + "|".join(re.escape(t) for t in NEGATIVE_TERMS) + r")\b")


def keyword_judge(texts: Sequence[str]) -> list[bool]:
    """Negative when the text holds one of :data:`NEGATIVE_TERMS` as whole words (any case)."""
    return [bool(_TERMS.search(text.lower())) for text in texts]


def score_reasons(
    kind: str, score: Decimal | float | None, scale_min: int | None, scale_max: int | None
) -> list[str]:
    """The score-based reasons one answer gives to open a case (``detractor``, ``low_csat``)."""
    if score is None or scale_min is None or scale_max is None:
        return []
    value = float(score)
    if kind == "nps" and scale_min == 0 and scale_max == 10 and value <= 6:
        return ["detractor"]
    if kind == "csat" and scale_max > scale_min:
        bottom = scale_min + (1 if scale_max - scale_min + 1 >= 5 else 0)
        if value <= bottom:
            return ["low_csat"]
    return []
