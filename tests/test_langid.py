"""Answer-language identification: real sentences, the synthetic world's answers, mixed, empty."""

from __future__ import annotations

import pytest

from mslt_it.evaluation.scoring import answer_languages, expected_answer_language, known_words
from mslt_it.langid import (
    EMPTY,
    IDENTIFIED_CHARS,
    MIXED,
    NO_LETTERS,
    UNKNOWN,
    AnswerIdentifier,
)
from mslt_it.prompts import get_template
from mslt_it.tasks.base import join_tokens
from mslt_it.tasks.synthetic import lexicon

SENTENCES = {
    "en": "The library opens at nine, but on Sundays it stays closed all day.",
    "de": "Die Bibliothek öffnet um neun Uhr, aber sonntags bleibt sie den ganzen Tag geschlossen.",
    "fr": "La bibliothèque ouvre à neuf heures, mais le dimanche elle reste fermée tout le jour.",
    "es": "La biblioteca abre a las nueve, pero los domingos permanece cerrada todo el día.",
    "ru": "Библиотека открывается в девять часов, но по воскресеньям она закрыта весь день.",
    "bg": "Библиотеката отваря в девет часа, но в неделя е затворена през целия ден.",
    "el": "Η βιβλιοθήκη ανοίγει στις εννέα, αλλά τις Κυριακές μένει κλειστή όλη την ημέρα.",
    "ar": "تفتح المكتبة في الساعة التاسعة، لكنها تبقى مغلقة طوال يوم الأحد.",
    "hi": "पुस्तकालय नौ बजे खुलता है, लेकिन रविवार को पूरे दिन बंद रहता है।",
    "zh": "图书馆九点开门，但是星期天全天关闭。",
    "th": "ห้องสมุดเปิดเวลาเก้าโมง แต่วันอาทิตย์ปิดทั้งวัน",
    "tr": "Kütüphane saat dokuzda açılıyor, ama pazar günleri bütün gün kapalı kalıyor.",
    "vi": "Thư viện mở cửa lúc chín giờ, nhưng vào Chủ nhật thì đóng cửa cả ngày.",
    "sw": "Maktaba hufunguliwa saa tatu asubuhi, lakini Jumapili hufungwa siku nzima.",
}
"""One sentence written for this test in each of 14 languages and 8 scripts."""


@pytest.mark.parametrize("lang", sorted(SENTENCES))
def test_real_sentences_are_identified(lang: str) -> None:
    assert AnswerIdentifier().identify(SENTENCES[lang], lang) == lang
    # the expected language does not sway a real identification
    assert AnswerIdentifier().identify(SENTENCES[lang], "xx") == lang


def test_an_answer_is_identified_by_its_first_characters() -> None:
    """A hand-made answer of megabytes was read letter by letter for minutes: its language is
    that of its first IDENTIFIED_CHARS characters, whatever follows."""
    english = " ".join([SENTENCES["en"]] * (IDENTIFIED_CHARS // len(SENTENCES["en"]) + 1))
    answer = english + " " + " ".join([SENTENCES["ru"]] * 30_000)  # 2.4 MB, mostly Russian
    assert AnswerIdentifier().identify(answer, "ru") == "en"
    assert (
        AnswerIdentifier().identify(english[: IDENTIFIED_CHARS // 2] + answer[-9_000:], "ru")
        == MIXED
    )


WORLD = ("de", "fr", "ru", "ar", "hi", "zh", "th", "ja", "el", "sw")


@pytest.mark.parametrize("lang", WORLD)
def test_world_answers_are_identified_through_the_lexicons(lang: str) -> None:
    words = list(lexicon(lang).words[150:156])
    answer = join_tokens(words, lang)
    identifier = AnswerIdentifier(world=True)
    assert identifier.identify(answer, lang) == lang
    assert identifier.identify(lexicon(lang).operations[0], lang) == lang  # one word


def test_mixed_answers_are_counted_as_mixed() -> None:
    identifier = AnswerIdentifier()
    assert identifier.identify(f"{SENTENCES['en']} {SENTENCES['zh']}", "en") == MIXED
    two_sentences = f"{SENTENCES['de']}\n{SENTENCES['fr']}"  # one script, two languages
    assert identifier.identify(two_sentences, "de") == MIXED
    world = AnswerIdentifier(world=True)
    same_script = lexicon("de").words[200:204] + lexicon("sw").words[300:303]
    assert world.identify(" ".join(same_script), "de") == MIXED
    scripts = lexicon("de").words[200:203] + lexicon("ru").words[300:303]
    assert world.identify(" ".join(scripts), "de") == MIXED


def test_empty_bare_and_unsure_answers_are_never_guessed() -> None:
    identifier = AnswerIdentifier()
    assert identifier.identify("", "en") == EMPTY
    assert identifier.identify("   \n", "en") == EMPTY
    assert identifier.identify("42.", "en") == NO_LETTERS
    assert identifier.identify("labda", "sw") == UNKNOWN  # one word: too short to tell
    assert AnswerIdentifier(world=True).identify("qqqqqxq zzzkx", "de") == UNKNOWN


def test_label_words_are_in_the_templates_answer_language() -> None:
    english = get_template("xnli/en-instruct")
    native = get_template("xnli/native")
    assert expected_answer_language(english, "de") == "en"
    assert expected_answer_language(native, "de") == "de"
    identifier = AnswerIdentifier(known_words=known_words(native))
    assert identifier.identify("vielleicht", "de") == "de"
    assert identifier.identify("Yes.", "de") == "en"  # the English verbalizer's word
    assert identifier.identify("no", "es") == "es"  # en and es share it; es was asked for
    assert identifier.identify("no", "de") == UNKNOWN  # en or es: not guessed


def test_fidelity_of_a_language_counts_each_kind_of_answer() -> None:
    template = get_template("xnli/native")
    outputs = ["ja", "nein", "yes", "", "Die Antwort ist ja, 答案是肯定的", "7"]
    records = [{"output": text, "lang": "de", "mode": "generate"} for text in outputs]
    found = answer_languages(records, template, "de", world=False)
    assert found["expected"] == "de"
    assert found["identified"] == {"de": 2, "en": 1, EMPTY: 1, MIXED: 1, NO_LETTERS: 1}
    # the bare number and the empty answer are in no language, as the report says
    assert found["share"] == pytest.approx(2 / 4)
    only_empty = [{"output": "", "lang": "de", "mode": "generate"}] * 3
    assert answer_languages(only_empty, template, "de", world=False)["share"] is None  # not 0


def test_a_language_no_identifier_covers_gets_no_share() -> None:
    template = get_template("xnli/en-instruct")
    identifier = AnswerIdentifier(known_words=known_words(template))
    assert not identifier.covers("qu-xx") and identifier.covers("sw")
