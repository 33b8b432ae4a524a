"""How theme discovery reads a text: what is cleaned away, which words are ignored, which terms count.

Cleaning (:func:`clean`), before TF-IDF, removes what says nothing about the subject and would
otherwise make themes of their own: URLs, e-mail addresses, @handles, every token holding a digit
(order numbers, ids, amounts, dates, phone numbers), a greeting at the start ("Hi,", "Dear Anna,",
"Olá,") and a signature at the end ("Thanks, Hugo", "Regards, Ella", a bare first name after the
last sentence, as the demo's tickets end). The text is lower-cased; the original is kept for quotes.

Terms are words of two letters or more and pairs of adjacent words (bigrams, after stop words are
removed: "return label", "password reset"). Stop words are scikit-learn's English list, courtesy
words (thanks, please, regards, ...), generic words of time and asking (ago, days, says,
need, ...), a short Portuguese list of our own (scikit-learn ships
English only; Olist's reviews are Portuguese), and the brand names of the texts (a theme should
be what customers say, not whom they say it to).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Final

import numpy as np
from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS, CountVectorizer

_URL: Final = re.compile(r"\b(?:https?://|www\.)\S+", re.IGNORECASE)
_EMAIL: Final = re.compile(r"\b[\w.+-]+@[\w-]+(?:\.[\w-]+)+\b")
_HANDLE: Final = re.compile(r"(?<!\w)@\w+")
_DIGITS: Final = re.compile(r"\b\w*\d[\w./:-]*")
_GREETING: Final = re.compile(
    r"^\s*(?:hi|hello|hey|dear|good (?:morning|afternoon|evening)|ol[áa]|oi|bom dia|boa tarde|"
    r"boa noite|prezad[oa]s?)\b[^\n,.!?]{0,30}[,.!?\n]",
    re.IGNORECASE,
)
_NAME: Final = r"[A-Z\u00C0-\u00DE][a-z\u00DF-\u00FF'-]+"
# After the last sentence: an optional sign-off word, then a first (and last) name, nothing after.
_SIGNATURE: Final = re.compile(
    r"(?:(?<=[.!?\n])|^)\s*(?:(?i:(?:many |best |kind |warm )?(?:thanks|thank you|regards|cheers|"
    rf"sincerely|obrigad[oa]|att|atenciosamente))[\s,.!-]*)?(?:{_NAME}(?:\s+{_NAME})?)?\s*$"
)
_TAIL: Final = 80
TOKEN_PATTERN: Final = r"(?u)\b[^\W\d_]{2,}\b"


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


COURTESY: Final = _words(
    "hi hello hey dear thanks thank thx please pls regards kind best cheers sincerely ok okay yes"
)
#: Words that say when or that someone asked, not what about ("ago", "days", "says", "need").
GENERIC: Final = _words(
    "ago today yesterday tomorrow day days week weeks month months year years time times like "
    "did does doing got get gets want wants wanted need needs needed say says said tell told let "
    "know just really still would could able use used using make made way thing things lot bit "
    "new old asked ask help"
)
#: Common Portuguese function words (our own short list: articles, pronouns, prepositions,
#: conjunctions, forms of ser/estar/ter/ir, and courtesy words).
PORTUGUESE: Final = _words(
    """a à ao aos as às o os um uma uns umas de da das do dos dum duma em na nas no nos num numa
    por pela pelas pelo pelos para pra com sem sob sobre entre até após e ou mas nem que se
    porque como quando onde quem qual quais cujo este esta estes estas isto esse essa esses essas
    isso aquele aquela aquilo eu tu ele ela nós vós eles elas me te lhe nos vos lhes mim ti si
    comigo meu minha meus minhas teu tua seu sua seus suas nosso nossa nossos nossas já ainda
    também muito muita muitos muitas mais menos bem mal só sim não tão tanto tudo todo toda
    todos todas nada algo alguém cada outro outra outros outras mesmo mesma ser sou é são era
    eram foi foram fui seja sejam estar estou está estão estava estavam esteve estive ter tenho
    tem têm tinha tinham teve tive ir vou vai vão ia há houve haver pois então lá aqui aí
    obrigado obrigada olá oi dia boa bom att atenciosamente"""
)
STOP_WORDS: Final = frozenset(ENGLISH_STOP_WORDS) | COURTESY | GENERIC | PORTUGUESE


def clean(text: str) -> str:
    """``text`` without URLs, e-mail addresses, handles, tokens holding digits, greeting and
    signature; lower-cased."""
    if "http" in text or "www." in text:
        text = _URL.sub(" ", text)
    if "@" in text:
        text = _EMAIL.sub(" ", text)
        text = _HANDLE.sub(" ", text)
    text = _GREETING.sub(" ", text)
    # A signature is short: look for it in the last characters only (the regex is slow on long texts).
    cut = max(0, len(text) - _TAIL)
    text = text[:cut] + _SIGNATURE.sub(" ", text[cut:])
    text = _DIGITS.sub(" ", text)
    return text.lower()


def stop_words(extra: Iterable[str] = ()) -> list[str]:
    """The stop words, plus ``extra`` (brand names, say) split into lower-cased words."""
    words = set(STOP_WORDS)
    for item in extra:
        words.update(re.findall(TOKEN_PATTERN, clean(item)))
    return sorted(words)


def counter(
    stops: list[str],
    *,
    vocabulary: Iterable[str] | None = None,
    min_df: int | float = 1,
    max_df: int | float = 1.0,
    max_features: int | None = None,
) -> CountVectorizer:
    """The term counter of discovery (``vocabulary`` None: learn it) and of tagging (given)."""
    return CountVectorizer(
        preprocessor=clean,
        token_pattern=TOKEN_PATTERN,
        stop_words=stops,
        ngram_range=(1, 2),
        vocabulary=None if vocabulary is None else list(vocabulary),
        min_df=min_df,
        max_df=max_df,
        max_features=max_features,
        dtype=np.float32,
    )
