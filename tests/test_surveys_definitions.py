"""Survey definitions: standard wordings and scales, translations, follow-ups, and bad files named
by file, field and reason."""

from __future__ import annotations

from pathlib import Path

import pytest

from cxloop.errors import InputError
from cxloop.surveys.definitions import load_definition, parse_definition, pick_language

FIXTURE = Path(__file__).parent / "fixtures" / "surveys" / "after_order.toml"


def test_a_definition_file_gives_standard_scales_translations_and_follow_ups() -> None:
    d = load_definition(FIXTURE)

    assert d.main.scale == (0, 10)
    assert d.languages() == ["en", "fr"]
    assert d.main_text("fr") == "Recommanderiez-vous Acme ?"
    assert d.follow_up_text(3, "en") == "What went wrong?"
    assert d.follow_up_text(8, "en") == "What is the main reason for your score?"
    assert d.thank_you_text("de") == "Thank you!"
    assert pick_language(d, None, "de-DE, fr;q=0.8, en;q=0.5") == "fr"
    assert pick_language(d, "en", "fr") == "en"
    csat = parse_definition({"id": "c", "name": "c", "main": {"kind": "csat", "points": 3}})
    assert csat.main.scale == (1, 3) and csat.scale_labels("en") == ["Unsatisfied", "Neutral", "Satisfied"]
    assert "made it easy" in parse_definition({"id": "e", "name": "e", "main": {"kind": "ces"}}).main_text(
        "en"
    )


@pytest.mark.parametrize(
    ("data", "field", "reason"),
    [
        ({"id": "x", "name": "x", "main": {"kind": "csat", "points": 4}}, "main", "3 or 5 or 7 points"),
        (
            {"id": "x", "name": "x", "main": {"kind": "nps"}, "brand": {"colour": "red"}},
            "brand.colour",
            "colour like",
        ),
        (
            {"id": "x", "name": "x", "main": {"kind": "nps"}, "brand": {"logo_url": "javascript:alert(1)"}},
            "brand.logo_url",
            "https://",
        ),
        (
            {
                "id": "x",
                "name": "x",
                "main": {"kind": "nps"},
                "questions": [{"id": "q", "type": "single", "text": "?"}],
            },
            "questions[0]",
            "at least 2 choices",
        ),
        ({"id": "x", "name": "x", "main": {"kind": "nps"}, "colour": 1}, "colour", "not a known field"),
        ({"id": "Bad id!", "name": "x", "main": {"kind": "nps"}}, "id", "pattern"),
    ],
)
def test_a_bad_definition_names_the_field_and_reason(
    data: dict[str, object], field: str, reason: str
) -> None:
    with pytest.raises(InputError) as caught:
        parse_definition(data, file="s.toml")

    assert caught.value.file == "s.toml" and caught.value.field == field
    assert reason in caught.value.reason


def test_a_bad_file_is_reported_with_its_name(tmp_path: Path) -> None:
    bad = tmp_path / "s.toml"
    bad.write_text('id = "x"\nname = \n')
    with pytest.raises(InputError, match=r"s\.toml: not valid TOML"):
        load_definition(bad)
