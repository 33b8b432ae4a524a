"""What a survey asks: its main question (NPS, CSAT or CES), custom questions, a follow-up that
depends on the score, translations, branding and the thank-you message.

A definition is plain data, written in a TOML or JSON file, sent to the API as JSON, or edited on
the builder page; :func:`parse_definition` validates it and names the field at fault. Every text
may be one string or a table of translations (``{en = "...", fr = "..."}``); :func:`pick_language`
chooses the language from ``?lang=`` or ``Accept-Language``. Standard wordings are built in:

* NPS: "How likely are you to recommend {brand} to a friend or colleague?", 0-10;
* CSAT: "How satisfied were you with {brand}?", 3, 5 or 7 labelled points;
* CES: "{brand} made it easy for me to handle my issue.", 7 points from "Strongly disagree".

``embed_origins`` names the websites allowed to show the answer pages in an iframe
(:func:`check_origin`: an origin as Content-Security-Policy's ``frame-ancestors`` takes it).
"""

from __future__ import annotations

import json
import re
import tomllib
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from cxloop.errors import InputError

__all__ = [
    "Choice",
    "Definition",
    "FollowUp",
    "MainQuestion",
    "Question",
    "check_origin",
    "load_definition",
    "parse_definition",
    "pick_language",
]

Text = str | dict[str, str]
"""One text in the default language, or a text per language code."""

MAX_TEXT = 2000
_ID = r"^[a-z0-9][a-z0-9_-]{0,62}$"
_LANG = re.compile(r"^[a-z]{2,3}(-[A-Za-z0-9]{2,8})?$")
_COLOUR = re.compile(r"^#[0-9a-fA-F]{6}$")
_ORIGIN = re.compile(
    r"^(?P<scheme>[a-z][a-z0-9+.-]*)://(?P<host>[^/:?#]*)(?::(?P<port>[^/?#]*))?(?P<rest>.*)\Z", re.DOTALL
)
_LABEL = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)\Z")
LOCAL_HOSTS = ("localhost", "127.0.0.1")
"""The hosts an ``http://`` origin may name (local development and tests); others need https."""
MAX_EMBED_ORIGINS = 20

STANDARD_TEXT = {
    "nps": {
        "en": "How likely are you to recommend {brand} to a friend or colleague?",
        "fr": "Quelle est la probabilité que vous recommandiez {brand} à un ami ou un collègue ?",
        "de": "Wie wahrscheinlich ist es, dass Sie {brand} einem Freund oder Kollegen empfehlen?",
        "es": "¿Qué probabilidad hay de que recomiende {brand} a un amigo o colega?",
    },
    "csat": {
        "en": "How satisfied were you with {brand}?",
        "fr": "Dans quelle mesure êtes-vous satisfait de {brand} ?",
        "de": "Wie zufrieden waren Sie mit {brand}?",
        "es": "¿Qué tan satisfecho quedó con {brand}?",
    },
    "ces": {
        "en": "{brand} made it easy for me to handle my issue.",
        "fr": "{brand} m'a facilité la résolution de mon problème.",
        "de": "{brand} hat es mir leicht gemacht, mein Anliegen zu erledigen.",
        "es": "{brand} me facilitó resolver mi asunto.",
    },
}
SCALE_LABELS: dict[str, dict[int, list[str]]] = {
    "csat": {
        3: ["Unsatisfied", "Neutral", "Satisfied"],
        5: ["Very unsatisfied", "Unsatisfied", "Neutral", "Satisfied", "Very satisfied"],
        7: [
            "Extremely unsatisfied",
            "Very unsatisfied",
            "Unsatisfied",
            "Neutral",
            "Satisfied",
            "Very satisfied",
            "Extremely satisfied",
        ],
    },
    "ces": {
        7: [
            "Strongly disagree",
            "Disagree",
            "Somewhat disagree",
            "Neither agree nor disagree",
            "Somewhat agree",
            "Agree",
            "Strongly agree",
        ]
    },
    "nps": {11: ["Not at all likely", *[""] * 9, "Extremely likely"]},
}
DEFAULT_FOLLOW_UP = {"en": "What is the main reason for your score?"}
DEFAULT_THANK_YOU = {"en": "Thank you for your answer!"}


def _check_text(value: Text, *, required: bool = True) -> Text:
    texts = {"": value} if isinstance(value, str) else value
    if required and not texts:
        raise ValueError("give at least one text")
    for lang, text in texts.items():
        if lang and not _LANG.match(lang):
            raise ValueError(f"{lang!r} is not a language code (like en, fr, pt-BR)")
        if required and not text.strip():
            raise ValueError("must not be empty")
        if len(text) > MAX_TEXT:
            raise ValueError(f"is longer than {MAX_TEXT} characters")
    return value


def check_origin(value: str) -> str:
    """``value`` as an origin a site frames the answer pages from, normalised (lower case, no
    trailing ``/``); :class:`ValueError` says what is wrong.

    ``https://host[:port]``, or ``http://`` for ``localhost`` and ``127.0.0.1`` only; the host may
    start with ``*.`` (any subdomain, as CSP allows) but not be a bare wildcard; no path, query,
    user or other wildcard. So the value goes into the ``frame-ancestors`` header as it is."""
    text = value.strip()
    found = _ORIGIN.match(text.lower())
    if found is None:
        raise ValueError(f"{value!r} is not an origin like https://shop.example.com")
    scheme, host, port, rest = found["scheme"], found["host"], found["port"], found["rest"]
    if rest not in ("", "/"):
        raise ValueError(f"{value!r}: an origin has no path, query or fragment (give https://host[:port])")
    if "@" in text:
        raise ValueError(f"{value!r}: an origin has no user name or password")
    if "[" in host:
        raise ValueError(f"{value!r}: name the host (frame-ancestors takes no IPv6 address)")
    if not host:
        raise ValueError(f"{value!r}: the host is missing (give https://host[:port])")
    labels = host.split(".")
    wildcard = labels[0] == "*"
    if wildcard:
        labels = labels[1:]
        if len(labels) < 2:
            raise ValueError(
                f"{value!r}: a wildcard covers the subdomains of a domain, like https://*.example.com"
            )
    if not labels or not all(_LABEL.match(label) for label in labels):
        raise ValueError(f"{value!r}: {host!r} is not a host name (letters, digits, - and .)")
    if port is not None and not (re.fullmatch("[0-9]{1,5}", port) and 0 < int(port) < 65536):
        raise ValueError(f"{value!r}: the port must be a number from 1 to 65535")
    if scheme == "http":
        if wildcard or host not in LOCAL_HOSTS:
            raise ValueError(f"{value!r}: use https:// (http:// only for localhost and 127.0.0.1)")
    elif scheme != "https":
        raise ValueError(f"{value!r}: the scheme must be https:// (http:// only for localhost)")
    return f"{scheme}://{host}" + (f":{int(port)}" if port is not None else "")


def _origins(values: list[str] | None) -> list[str] | None:
    if values is None:
        return None
    kept = list(dict.fromkeys(values))  # the same origin given twice counts once
    if len(kept) > MAX_EMBED_ORIGINS:
        raise ValueError(f"at most {MAX_EMBED_ORIGINS} sites, not {len(kept)}")
    return kept


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Brand(_Model):
    name: str = Field(default="us", min_length=1, max_length=100)
    colour: str = "#1f5fae"
    logo_url: str | None = Field(default=None, max_length=500)

    @field_validator("colour")
    @classmethod
    def _colour(cls, value: str) -> str:
        if not _COLOUR.match(value):
            raise ValueError("must be a colour like #1f5fae")
        return value.lower()

    @field_validator("logo_url")
    @classmethod
    def _logo(cls, value: str | None) -> str | None:
        if value is not None and not re.match(r"^https://[^\s\"'<>`\\]+$", value):
            raise ValueError("must be an https:// URL without spaces or quotes")
        return value


class MainQuestion(_Model):
    kind: Literal["nps", "csat", "ces"]
    points: int | None = Field(default=None, description="CSAT: 3, 5 or 7; CES: 7; NPS: 11 (0-10)")
    text: Text | None = None
    labels: dict[str, list[str]] | None = Field(
        default=None, description="Per language, one label per point (CSAT/CES); '' for none"
    )

    @field_validator("text")
    @classmethod
    def _text(cls, value: Text | None) -> Text | None:
        return None if value is None else _check_text(value)

    @model_validator(mode="after")
    def _scale(self) -> MainQuestion:
        allowed = {"nps": (11,), "csat": (3, 5, 7), "ces": (7,)}[self.kind]
        if self.points is not None and self.points not in allowed:
            raise ValueError(
                f"points: a {self.kind.upper()} question has {' or '.join(map(str, allowed))} points"
            )
        for lang, labels in (self.labels or {}).items():
            if len(labels) != self.scale_points:
                raise ValueError(f"labels.{lang}: give {self.scale_points} labels, one per point")
        return self

    @property
    def scale_points(self) -> int:
        return self.points or {"nps": 11, "csat": 5, "ces": 7}[self.kind]

    @property
    def scale(self) -> tuple[int, int]:
        """(lowest, highest) score: 0-10 for NPS, 1-N otherwise."""
        return (0, 10) if self.kind == "nps" else (1, self.scale_points)


class FollowUp(_Model):
    """The open question shown after the score, for scores from ``min`` to ``max``."""

    min: int
    max: int
    text: Text

    @field_validator("text")
    @classmethod
    def _text(cls, value: Text) -> Text:
        return _check_text(value)


class Choice(_Model):
    id: Annotated[str, Field(pattern=_ID)]
    text: Text

    @field_validator("text")
    @classmethod
    def _text(cls, value: Text) -> Text:
        return _check_text(value)


class Question(_Model):
    id: Annotated[str, Field(pattern=_ID)]
    type: Literal["rating", "single", "multiple", "yes_no", "text"]
    text: Text
    points: int = Field(default=5, ge=2, le=11, description="rating: 1..points")
    choices: list[Choice] = Field(default_factory=list)
    required: bool = False

    @field_validator("text")
    @classmethod
    def _text(cls, value: Text) -> Text:
        return _check_text(value)

    @field_validator("choices", mode="before")
    @classmethod
    def _plain_choices(cls, value: Any) -> Any:
        # A choice may be given as its id alone: "fast" is {id = "fast", text = "fast"}.
        if isinstance(value, list):
            return [{"id": c, "text": c} if isinstance(c, str) else c for c in value]
        return value

    @model_validator(mode="after")
    def _choices(self) -> Question:
        if self.type in ("single", "multiple"):
            if len(self.choices) < 2:
                raise ValueError(f"choices: a {self.type}-choice question needs at least 2 choices")
            ids = [c.id for c in self.choices]
            if len(set(ids)) != len(ids):
                raise ValueError("choices: two choices have the same id")
        elif self.choices:
            raise ValueError(f"choices: only single and multiple questions have choices, not {self.type}")
        return self


class Definition(_Model):
    """A survey's content. ``id`` is the survey's id; the rest may change from version to version."""

    id: Annotated[str, Field(pattern=_ID)]
    name: str = Field(min_length=1, max_length=200)
    language: str = "en"
    main: MainQuestion
    follow_up: list[FollowUp] | None = None
    questions: list[Question] = Field(default_factory=list, max_length=30)
    brand: Brand = Field(default_factory=Brand)
    thank_you: Text | None = None
    edit_window_hours: float = Field(default=24, ge=0, le=24 * 90)
    link_days: float | None = Field(default=30, gt=0, description="Links expire this long after creation")
    public: bool = Field(default=False, description="Whether an anonymous public link may answer")
    touchpoint: str | None = Field(default=None, max_length=100)
    embed_origins: Annotated[
        list[Annotated[str, AfterValidator(check_origin)]] | None,
        AfterValidator(_origins),
        Field(
            default=None,
            description="The websites that may show the answer pages in an iframe, like https://shop.example.com",
        ),
    ] = None

    @field_validator("language")
    @classmethod
    def _language(cls, value: str) -> str:
        if not _LANG.match(value):
            raise ValueError(f"{value!r} is not a language code (like en, fr, pt-BR)")
        return value

    @field_validator("thank_you")
    @classmethod
    def _thanks(cls, value: Text | None) -> Text | None:
        return None if value is None else _check_text(value)

    @model_validator(mode="after")
    def _consistent(self) -> Definition:
        low, high = self.main.scale
        for i, f in enumerate(self.follow_up or []):
            if not low <= f.min <= f.max <= high:
                raise ValueError(f"follow_up[{i}]: min and max must lie within {low}..{high}, min <= max")
        ids = [q.id for q in self.questions]
        if len(set(ids)) != len(ids) or "main" in ids:
            raise ValueError("questions: each question needs its own id, and 'main' is taken")
        return self

    # -- what the answer page shows ---------------------------------------------------------------

    @property
    def frame_ancestors(self) -> tuple[str, ...]:
        """The origins besides the server's own that may frame the answer pages."""
        return tuple(self.embed_origins or ())

    def languages(self) -> list[str]:
        """Every language some text is given in, the default first."""
        found = {self.language}
        for text in self._texts():
            if isinstance(text, dict):
                found.update(k for k in text if k)
        return [self.language, *sorted(found - {self.language})]

    def _texts(self) -> list[Text]:
        texts: list[Text] = [t for t in (self.main.text, self.thank_you) if t is not None]
        texts += [f.text for f in self.follow_up or []]
        for q in self.questions:
            texts.append(q.text)
            texts += [c.text for c in q.choices]
        return texts

    def text(self, value: Text | None, lang: str, fallback: Text | None = None) -> str:
        """``value`` in ``lang`` (else the survey's language, else any), with {brand} filled in."""
        if value is None:
            value = fallback if fallback is not None else ""
        if isinstance(value, str):
            chosen = value
        else:
            chosen = value.get(lang) or value.get(lang.split("-")[0]) or value.get(self.language) or ""
            chosen = chosen or value.get("en") or next(iter(value.values()), "")
        return chosen.replace("{brand}", self.brand.name)

    def main_text(self, lang: str) -> str:
        return self.text(self.main.text, lang, STANDARD_TEXT[self.main.kind])

    def scale_labels(self, lang: str) -> list[str]:
        given = self.main.labels or {}
        if lang in given:
            return given[lang]
        if self.language in given:
            return given[self.language]
        return SCALE_LABELS[self.main.kind].get(self.main.scale_points, [""] * self.main.scale_points)

    def follow_up_text(self, score: float | None, lang: str) -> str:
        if score is not None:
            for f in self.follow_up or []:
                if f.min <= score <= f.max:
                    return self.text(f.text, lang)
        return self.text(None, lang, DEFAULT_FOLLOW_UP)

    def thank_you_text(self, lang: str) -> str:
        return self.text(self.thank_you, lang, DEFAULT_THANK_YOU)


def pick_language(definition: Definition, query: str | None, accept_language: str | None) -> str:
    """``?lang=`` if the survey has it, else the best ``Accept-Language`` match, else its default."""
    offered = definition.languages()
    if query and query in offered:
        return query
    wanted: list[tuple[float, str]] = []
    for part in (accept_language or "").split(",")[:20]:
        tag, _, params = part.strip().partition(";")
        weight = 1.0
        if params.strip().startswith("q="):
            try:
                weight = float(params.strip()[2:])
            except ValueError:
                continue
        if tag:
            wanted.append((weight, tag.strip()))
    for _, tag in sorted(wanted, key=lambda w: -w[0]):
        for candidate in (tag, tag.split("-")[0]):
            if candidate in offered:
                return candidate
    return definition.language


def parse_definition(data: Any, *, file: str | None = None) -> Definition:
    """Validate ``data`` (as read from TOML or JSON); :class:`InputError` names the first fault."""
    try:
        return Definition.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(
            f"[{part}]" if isinstance(part, int) else str(part) for part in first["loc"]
        ).replace(".[", "[")
        reason = str(first["msg"]).removeprefix("Value error, ")
        if first["type"] == "extra_forbidden":
            reason = "is not a known field"
        raise InputError(reason, file=file, field=where or None) from None


def load_definition(path: Path | str) -> Definition:
    """Read a definition from a ``.toml`` or ``.json`` file."""
    path = Path(path)
    try:
        raw = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise InputError(f"cannot read the file: {exc.strerror}", file=str(path)) from None
    try:
        if path.suffix.lower() == ".toml":
            data: Any = tomllib.loads(raw)
        elif path.suffix.lower() == ".json":
            data = json.loads(raw)
        else:
            raise InputError("a survey is defined in a .toml or .json file", file=str(path))
    except (tomllib.TOMLDecodeError, json.JSONDecodeError) as exc:
        raise InputError(f"not valid {path.suffix[1:].upper()}: {exc}", file=str(path)) from None
    return parse_definition(data, file=str(path))


def definition_from_text(text: str, *, name: str = "definition") -> Definition:
    """A definition typed on the builder page: JSON if it starts with '{', else TOML."""
    try:
        data: Any = json.loads(text) if text.lstrip().startswith("{") else tomllib.loads(text)
    except (tomllib.TOMLDecodeError, json.JSONDecodeError) as exc:
        raise InputError(f"not valid TOML or JSON: {exc}", file=name) from None
    return parse_definition(data, file=name)
