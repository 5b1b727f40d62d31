"""Label words where words are not spaced, Korean's attached endings and Turkish's dotted İ.

A one-character label word in Chinese or Japanese was found inside any other word, and one in
Korean inside a longer word, so chatter read as an answer; ``BELKİ`` read as no word at all.
"""

from __future__ import annotations

import pytest

from mslt_it.label_words import find_labels, loose, normalize, parse_label
from mslt_it.prompts import load_templates

YES_NO_ZH = {"paraphrase": "是", "not_paraphrase": "否"}
YES_NO_JA = {"paraphrase": "はい", "not_paraphrase": "いいえ"}
YES_NO_KO = {"paraphrase": "예", "not_paraphrase": "아니요"}
XNLI_ZH = {"entailment": "蕴含", "neutral": "中立", "contradiction": "矛盾"}
XNLI_TR = {"entailment": "evet", "neutral": "belki", "contradiction": "hayır"}


def test_a_one_character_chinese_word_counts_only_at_a_word_start():
    assert parse_label("答案是：否", YES_NO_ZH) == "not_paraphrase"  # the copula is no answer
    assert parse_label("这两个句子的意思是不同的。", YES_NO_ZH) is None  # "...are different"
    for output in ("是的", "是。", "答案是：是", "Answer: 是"):
        assert parse_label(output, YES_NO_ZH) == "paraphrase"
    assert parse_label("答案：否", YES_NO_ZH) == "not_paraphrase"
    # after the copula or "choose" (the word-start rule had made these invalid)
    for output in ("答案为是", "答案是是", "我认为是"):
        assert parse_label(output, YES_NO_ZH) == "paraphrase"
    assert parse_label("选择否", YES_NO_ZH) == "not_paraphrase"
    assert parse_label("是否", YES_NO_ZH) is None  # "whether": both words, as before
    assert parse_label("不是", YES_NO_ZH) is None  # a negation still makes it invalid
    assert parse_label("答案是矛盾。", XNLI_ZH) == "contradiction"  # a compound, as before


def test_a_short_kana_word_counts_only_at_a_word_start():
    assert parse_label("このように言ってはいけない", YES_NO_JA) is None  # "must not say so"
    assert parse_label("それではいけない", YES_NO_JA) is None  # "that will not do"
    for output, expected in (
        ("はい", "paraphrase"),
        ("はい、同じ意味です。", "paraphrase"),
        ("答え：はい", "paraphrase"),
        ("いいえ。", "not_paraphrase"),
        ("答えはいいえです。", "not_paraphrase"),  # a longer word may touch letters, as before
        ("答えははいです。", "paraphrase"),  # after the topic particle: "the answer is yes"
    ):
        assert parse_label(output, YES_NO_JA) == expected


def test_a_korean_word_stands_apart_from_other_hangul():
    assert parse_label("아니예요", YES_NO_KO) is None  # "no, it isn't" holds 예
    assert parse_label("두 문장의 의미는 다릅니다. 예를 들어 첫 문장은...", YES_NO_KO) is None
    for output, expected in (
        ("예", "paraphrase"),
        ("예.", "paraphrase"),
        ("예, 맞습니다", "paraphrase"),
        ("답은 예입니다", "paraphrase"),  # the copula's ending attached
        ("예요", "paraphrase"),
        ("아니요", "not_paraphrase"),
        ("아니요입니다", "not_paraphrase"),
        ("답: 아니요.", "not_paraphrase"),
    ):
        assert parse_label(output, YES_NO_KO) == expected


@pytest.mark.parametrize("output", ["BELKİ", "Cevap: BELKİ.", "belki\u0307"])
def test_turkish_dotted_capital_i_reads_as_i(output):
    assert parse_label(output, XNLI_TR) == "neutral"


def test_dotted_i_folds_to_i_in_the_strict_and_the_loose_reading():
    assert normalize("İ") == "i" and loose("BELKİ") == "belki"
    assert find_labels("BELKİ", XNLI_TR) == ["neutral"]
    assert find_labels("BELKİ", XNLI_TR, loose) == ["neutral"]


ANSWER_PREFIX = {"zh": "答案是：", "ja": "答え：", "ko": "답: ", "tr": "Cevap: "}
FULL_STOP = {"zh": "。", "ja": "。"}


def capitals(word: str, lang: str) -> str:
    """The word in capitals as its language writes them (Turkish ``i`` is ``İ``)."""
    if lang in ("tr", "az"):
        word = word.replace("i", "İ")
    return word.upper()


def shipped_words() -> list[tuple[str, str, dict[str, str]]]:
    """``(template id, language, verbalizer)`` for every shipped classification template."""
    rows = []
    for template_id, template in sorted(load_templates().items()):
        if template.task.kind == "classification":
            rows += [(template_id, lang, template.verbalizer(lang)) for lang in template.languages]
    return rows


def test_every_shipped_label_word_reads_as_its_label():
    """Alone, with a full stop, after "Answer:" in its language, and in capitals."""
    rows = shipped_words()
    assert rows
    wrong = []
    for template_id, lang, verbalizer in rows:
        stop = FULL_STOP.get(lang, ".")
        prefix = ANSWER_PREFIX.get(lang, "Answer: ")
        for label, word in verbalizer.items():
            for output in (word, word + stop, prefix + word + stop, capitals(word, lang)):
                if parse_label(output, verbalizer) != label:
                    wrong.append((template_id, lang, output))
    assert wrong == []
