"""The language registry: codes as the Hub spells them, and data that selection can trust."""

from __future__ import annotations

import csv
import io
from importlib import resources

import pytest

from mslt_it.errors import MsltError
from mslt_it.languages import (
    PRETRAINING_SOURCES,
    XTREME_WIKIANN,
    Language,
    all_languages,
    get_language,
    languages_of_task,
    pretraining_size,
)

XNLI = {"ar", "bg", "de", "el", "en", "es", "fr", "hi", "ru", "sw", "th", "tr", "ur", "vi", "zh"}
PAWSX = {"en", "de", "es", "fr", "ja", "ko", "zh"}


def _csv_rows(*parts: str) -> list[dict[str, str]]:
    text = resources.files("mslt_it").joinpath("resources", *parts).read_text(encoding="utf-8")
    return list(csv.DictReader(io.StringIO(text)))


def test_wikiann_has_its_176_configs_including_the_odd_ones() -> None:
    codes = languages_of_task("wikiann")
    assert len(codes) == len(set(codes)) == 176
    odd = {"zh-yue", "be-x-old", "simple", "zh-min-nan", "zh-classical", "bat-smg", "cbk-zam"}
    assert odd | {"fiu-vro", "map-bms", "als", "eml", "nds", "sh"} <= set(codes)
    # Wikipedias that WikiAnn's balanced 176-language release (Rahimi et al. 2019) left out.
    assert {"roa-rup", "roa-tara", "nds-nl"}.isdisjoint(codes)


def test_registry_is_exactly_the_task_languages_in_csv_order() -> None:
    registry = all_languages()
    assert list(registry) == [row["code"] for row in _csv_rows("languages.csv")]
    # xnli and pawsx are subsets of wikiann; Haitian Creole (XCOPA, Belebele) and Xhosa
    # (Bactrian-X) are not in WikiAnn
    assert set(registry) == set(languages_of_task("wikiann")) | {"ht", "xh"}
    assert list(registry) == sorted(registry)


def test_xnli_and_pawsx_have_exactly_their_languages() -> None:
    assert set(languages_of_task("xnli")) == XNLI and len(languages_of_task("xnli")) == 15
    assert set(languages_of_task("pawsx")) == PAWSX and len(languages_of_task("pawsx")) == 7
    assert get_language("zh").tasks == frozenset({"xnli", "pawsx", "wikiann"})
    assert get_language("yo").tasks == frozenset({"wikiann"})


def test_xtreme_wikiann_is_the_40_codes_and_matches_the_csv() -> None:
    assert len(XTREME_WIKIANN) == len(set(XTREME_WIKIANN)) == 40
    flagged = [code for code, lang in all_languages().items() if lang.xtreme_wikiann]
    assert flagged == sorted(XTREME_WIKIANN)
    assert set(XTREME_WIKIANN) <= set(languages_of_task("wikiann"))


@pytest.mark.parametrize(
    ("code", "iso639_3", "iso639_1"),
    [
        ("zh-yue", "yue", None),
        ("be-x-old", "bel", "be"),
        ("simple", "eng", "en"),
        ("zh-min-nan", "nan", None),
        ("zh-classical", "lzh", None),
        ("als", "gsw", None),  # Alemannic Wikipedia, not Tosk Albanian (ISO 'als')
        ("en", "eng", "en"),
        ("ar", "arb", "ar"),
    ],
)
def test_tricky_codes_resolve(code: str, iso639_3: str, iso639_1: str | None) -> None:
    lang = get_language(code)
    assert isinstance(lang, Language)
    assert (lang.code, lang.iso639_3, lang.iso639_1) == (code, iso639_3, iso639_1)


@pytest.mark.parametrize(
    ("code", "script"),
    [
        ("ar", "Arab"),
        ("ru", "Cyrl"),
        ("zh", "Hani"),
        ("ja", "Jpan"),
        ("ko", "Kore"),
        ("hi", "Deva"),
        ("el", "Grek"),
        ("th", "Thai"),
        ("he", "Hebr"),
        ("en", "Latn"),
        ("sr", "Cyrl"),
        ("mn", "Cyrl"),
        ("az", "Latn"),
        ("ckb", "Arab"),
        ("pa", "Guru"),
        ("yi", "Hebr"),
        ("dv", "Thaa"),
    ],
)
def test_scripts(code: str, script: str) -> None:
    assert get_language(code).script == script


def test_every_row_is_complete() -> None:
    for lang in all_languages().values():
        assert lang.name and lang.family
        assert len(lang.iso639_3) == 3 and lang.iso639_3.islower()
        assert len(lang.script) == 4 and lang.script.istitle()
        assert lang.iso639_1 is None or len(lang.iso639_1) == 2


def test_unknown_code_raises_a_one_line_error_naming_it() -> None:
    with pytest.raises(MsltError, match="'xx'") as info:
        get_language("xx")
    assert "\n" not in str(info.value)
    assert "known codes: ace, af" in str(info.value)
    with pytest.raises(MsltError, match="'mt5'"):
        languages_of_task("mt5")


def test_all_languages_cannot_corrupt_the_cache() -> None:
    all_languages().clear()
    assert len(all_languages()) == 178


def test_pretraining_size_reads_the_table() -> None:
    cc100 = {
        row["iso639_1"]: float(row["value"]) for row in _csv_rows("pretraining_sizes", "cc100.csv")
    }
    assert pretraining_size("en", "cc100") == cc100["en"]
    assert pretraining_size("yo", "cc100") is None  # XLM-R has no Yoruba; None, never 0
    assert pretraining_size("simple", "cc100") is None  # a variety the table does not list


def test_pretraining_size_uses_the_derived_chinese_row() -> None:
    for corpus, filename in (("cc100", "cc100.csv"), ("roots", "roots.csv")):
        rows = {row["iso639_1"]: row for row in _csv_rows("pretraining_sizes", filename)}
        assert "derived" in rows["zh"]["language"]
        total = float(rows["zh-Hans"]["value"]) + float(rows["zh-Hant"]["value"])
        assert pretraining_size("zh", corpus) == pytest.approx(total)
        assert pretraining_size("zh", corpus) == float(rows["zh"]["value"])
    assert pretraining_size("zh", "mc4") is not None  # mC4 has a single Chinese row


def test_pretraining_size_errors() -> None:
    with pytest.raises(MsltError, match=r"'oscar'.*allowed: cc100, roots, mc4$"):
        pretraining_size("en", "oscar")
    with pytest.raises(MsltError, match="'xx'"):
        pretraining_size("xx", "cc100")
    assert set(PRETRAINING_SOURCES) == {"cc100", "roots", "mc4"}
    assert all("\n" not in line and "arXiv" in line for line in PRETRAINING_SOURCES.values())


def test_lang2vec_flags_are_measured() -> None:
    l2v = pytest.importorskip("lang2vec.lang2vec")
    for lang in all_languages().values():
        assert lang.in_lang2vec == (lang.iso639_3 in l2v.LANGUAGES), lang.code
