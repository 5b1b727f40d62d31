"""The synthetic world's pre-training text: concepts, code-switching by similarity, frames."""

from __future__ import annotations

import random

import pytest

from mslt_it import world
from mslt_it.errors import MsltError
from mslt_it.languages import languages_of_task
from mslt_it.tasks.synthetic import lexicon, xnli_row


def test_concepts_realised_without_switching_are_the_rows() -> None:
    rng = random.Random(0)
    for lang in ("en", "sw", "zh", "ar"):
        for index in range(50):
            premise, hypothesis, label = world.xnli_concepts("train", index)
            row = xnli_row(lang, "train", index)
            assert world.realise(premise, lang, rng) == row["premise"]
            assert world.realise(hypothesis, lang, rng) == row["hypothesis"]
            assert label == row["label"]


def test_switching_replaces_words_by_the_same_concept_in_a_partner() -> None:
    rng = random.Random(1)
    premise, _, _ = world.xnli_concepts("train", 3)
    concepts = [*premise, world.NEGATION]
    switched = world.realise(concepts, "en", rng, ["de"], [1.0], rate=1.0)
    assert switched.rstrip(".").split() == [world.word(c, "de") for c in concepts]
    assert switched.rstrip(".").split()[-1] == lexicon("de").negation


def test_partners_favour_family_and_script() -> None:
    langs = ("en", "de", "fr", "ru", "ar", "zh")
    partners, weights = world.switch_partners("en", langs)
    weight = dict(zip(partners, weights, strict=True))
    assert weight["de"] > weight["ru"] > weight["ar"]  # family and script > family > neither
    assert weight["de"] == weight["fr"] and "en" not in weight


def test_frames_answer_with_random_label_words() -> None:
    """Each frame holds its row's sentences and answers with a label word of a template, drawn
    independently of the row's true label: the answer is the true label's word about a third of
    the time (as chance is), and every label's word is given about as often."""
    from collections import Counter

    from mslt_it.prompts import load_templates

    langs, per_language = ["en", "sw"], 150
    conversations = world.frame_conversations(langs, per_language, seed=0)
    assert len(conversations) == len(langs) * per_language
    templates = [t for t in load_templates().values() if t.spec.task == "xnli"]
    row = {"premise": "p", "hypothesis": "h"}
    agree, given = 0, Counter()
    for number, conversation in enumerate(conversations):
        lang = langs[number // per_language]
        premise, hypothesis, truth = world.xnli_concepts("train", 50_000 + number % per_language)
        prompt, answer = conversation[0]["content"], conversation[1]["content"]
        for concepts in (premise, hypothesis):  # the row's words (a few code-switched)
            own = [world.word(c, lang) for c in concepts]
            assert sum(w in prompt for w in own) >= len(own) / 2, (prompt, own)
        labels = {  # the label each template's word for it stands for
            t.render({**row, "label": k}, lang).answer: k
            for t in templates
            if lang in t.languages
            for k in range(3)
        }
        assert answer in labels, (answer, labels)
        agree += labels[answer] == truth
        given[labels[answer]] += 1
    rate = agree / len(conversations)
    assert 0.2 < rate < 0.47, rate  # a frame that leaked the label would agree every time
    assert all(0.2 < given[k] / len(conversations) < 0.47 for k in range(3)), given


def test_the_world_base_is_reproducible(tmp_path) -> None:
    """A seed gives the same pre-trained weights (a short run; the full one is 2,000 steps)."""
    import hashlib

    from mslt_it.tiny import build_world_model, read_info

    digests = []
    for name in ("a", "b"):
        folder = build_world_model(tmp_path / name, seed=3, steps=4)
        digests.append(hashlib.sha256((folder / "model.safetensors").read_bytes()).hexdigest())
        info = read_info(folder)
        assert info["world"] and info["pretrain"]["steps"] == 4 and len(info["languages"]) == 15
    assert digests[0] == digests[1]


SHIPPED_BASES = [("tiny-world", False), ("tiny-world-sized", True)]
"""The two shipped world bases: equal text per language (the demo's), and text following
CC-100 sizes (the synthetic study's)."""


@pytest.mark.parametrize(("name", "sized"), SHIPPED_BASES)
def test_the_shipped_world_base_is_what_the_builder_makes_and_recipes_copy_it(
    tmp_path, name: str, sized: bool
) -> None:
    """The shipped weights' record matches the builder's settings (the full 2,000-step rebuild,
    ten minutes on one core, is `mslt-it tiny-model DIR --world [--sized]`); `mslt-it:NAME` in a
    recipe is a copy of them."""
    from dataclasses import asdict

    from transformers import AutoModelForCausalLM

    from mslt_it.paths import RESOURCES_DIR
    from mslt_it.tiny import (
        WORLD_STEPS,
        PretrainSettings,
        TinyShape,
        copy_world_model,
        read_info,
        world_documents,
        world_text_digest,
    )

    shipped = RESOURCES_DIR / name
    info = read_info(shipped)
    assert info["world"] and info["seed"] == 0 and info["languages"] == languages_of_task("xnli")
    assert info.get("sized") == ({"corpus": "cc100", "exponent": world.SIZE_EXPONENT} if sized
                                 else None)  # fmt: skip
    assert info["pretrain"] == asdict(PretrainSettings(steps=WORLD_STEPS, batch_size=32,
                                                       block_size=48))  # fmt: skip
    assert info["shape"] == asdict(TinyShape())
    docs, frames, chats = world_documents(languages_of_task("xnli"), seed=0, sized=sized)
    assert info["world_text_sha256"] == world_text_digest(docs, frames, chats), (
        "the world's text changed since the shipped base was built: rebuild it with "
        f"`mslt-it tiny-model mslt_it/resources/{name} --world {'--sized ' * sized}--overwrite`"
    )
    copy = copy_world_model(tmp_path / "base", sized=sized)
    assert (copy / "model.safetensors").read_bytes() == (shipped / "model.safetensors").read_bytes()
    model = AutoModelForCausalLM.from_pretrained(copy)
    assert sum(p.numel() for p in model.parameters()) == info["parameters"]


@pytest.mark.parametrize("name", [name for name, _ in SHIPPED_BASES])
def test_the_shipped_world_base_has_its_recorded_held_out_loss(name: str) -> None:
    """The shipped weights are the ones the record describes: their next-token loss on the
    held-out (validation-split) paragraphs, recomputed here token by token, is the recorded one."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from mslt_it.paths import RESOURCES_DIR
    from mslt_it.tiny import heldout_texts, read_info

    shipped = RESOURCES_DIR / name
    info = read_info(shipped)
    tokenizer = AutoTokenizer.from_pretrained(str(shipped))
    model = AutoModelForCausalLM.from_pretrained(str(shipped)).eval()
    total, count = 0.0, 0
    with torch.no_grad():
        for text in heldout_texts(info["languages"]):
            ids = [tokenizer.bos_token_id, *tokenizer.encode(text, add_special_tokens=False)]
            logits = model(torch.tensor([ids])).logits[0, :-1].double()
            log_probs = logits.log_softmax(-1)[torch.arange(len(ids) - 1), torch.tensor(ids[1:])]
            total -= float(log_probs.sum())
            count += len(ids) - 1
    assert count > 1000
    assert total / count == pytest.approx(info["heldout_loss"], abs=2e-3)
    assert total / count < info["final_pretrain_loss"] + 3  # and the model is trained


def test_a_family_writing_one_script_shares_cognates_and_keeps_its_cue_words() -> None:
    from mslt_it.tasks.synthetic import COGNATE_SHARE, cognate_group, cognate_roots

    assert {"en", "de", "es", "fr"} <= set(cognate_group("en"))
    assert "ru" not in cognate_group("en") and "tr" not in cognate_group("en")  # script, family
    roots = cognate_roots("Latn", "Indo-European")
    assert len(roots) == round(COGNATE_SHARE * 400)
    en, de = lexicon("en"), lexicon("de")
    related = sum(en.words[c][:-1] == de.words[c][:-1] == roots[c][:-1] for c in roots)
    assert related >= 0.9 * len(roots)  # a few keep their own word where a form was taken
    unrelated = [c for c in range(400) if c not in roots]
    assert not any(en.words[c] == de.words[c] for c in unrelated)
    tr = lexicon("tr")  # same script, another family: nothing in common beyond chance
    assert sum(en.words[c] == tr.words[c] for c in range(400)) <= 2
    for lex in (en, de, lexicon("fr")):
        cues = (lex.negation, lex.hedge, lex.also, lex.contrast)
        assert len(set(lex.words)) == 400 and not set(cues) & set(lex.words)
    assert en.negation != de.negation and en.hedge != lexicon("fr").hedge


def test_head_final_languages_mirror_the_sentence_pair_rows() -> None:
    from mslt_it.tasks.synthetic import is_head_final, pawsx_row

    assert [lang for lang in ("ar", "de", "en", "hi", "tr", "ur", "zh") if is_head_final(lang)] == [
        "de", "hi", "tr", "ur"
    ]  # fmt: skip
    rng = random.Random(0)
    for index in range(20):
        premise, hypothesis, label = world.xnli_concepts("test", index)
        row = xnli_row("de", "test", index)
        words = row["premise"].rstrip(".").split()
        assert words == [world.word(c, "de") for c in reversed(premise)]
        assert world.realise(hypothesis, "de", rng) == row["hypothesis"]
        assert xnli_row("en", "test", index)["label"] == row["label"] == label
    english = pawsx_row("en", "test", 5)["sentence1"].rstrip(".").split()
    german = pawsx_row("de", "test", 5)["sentence1"].rstrip(".").split()
    assert len(english) == len(german)
    assert german == [lexicon("de").words[lexicon("en").words.index(w)] for w in english][::-1]


def test_word_order_follows_lang2vec() -> None:
    """The shipped syntax vectors the world reads are lang2vec's own (S_OBJECT_BEFORE_VERB)."""
    import lang2vec.lang2vec as l2v

    from mslt_it.languages import get_language
    from mslt_it.tasks.synthetic import is_head_final

    langs = ["ar", "de", "en", "hi", "ja", "ru", "tr", "zh"]
    codes = [get_language(lang).iso639_3 for lang in langs]
    features = l2v.get_features(codes, "syntax_knn", header=True)
    column = features["CODE"].index("S_OBJECT_BEFORE_VERB")
    for lang, code in zip(langs, codes, strict=True):
        assert is_head_final(lang) == (float(features[code][column]) > 0.5), lang


def test_every_registry_language_keeps_one_word_per_concept() -> None:
    """Cognates never make two concepts (or a concept and a cue word) share a form."""
    from mslt_it.languages import all_languages

    for code in all_languages():
        lex = lexicon(code)
        cues = [lex.negation, lex.hedge, lex.also, lex.contrast, lex.title, lex.location_cue]
        forms = [*lex.words, *cues, lex.company, *lex.operations]
        assert len(set(forms)) == len(forms), code


def test_pretraining_text_follows_compressed_cc100_sizes() -> None:
    """In the sized world each language's amount of text grows with its CC-100 size (exponent
    0.3, XLM-R's sampling), the total stays the budget, and the smallest language still gets a
    fifth of the largest's: size has something to act through, and every language is learnt.
    The equal world gives each the same."""
    from mslt_it.languages import pretraining_size
    from mslt_it.tiny import WORLD_ROWS_PER_LANGUAGE, world_documents

    langs = languages_of_task("xnli")
    counts = world.scaled_counts(langs, WORLD_ROWS_PER_LANGUAGE)
    by_size = sorted(langs, key=lambda code: pretraining_size(code, "cc100"))
    assert [counts[c] for c in by_size] == sorted(counts[c] for c in by_size)
    assert abs(sum(counts.values()) - WORLD_ROWS_PER_LANGUAGE * len(langs)) <= len(langs)
    assert counts["en"] / counts["sw"] == pytest.approx((300.8 / 1.6) ** world.SIZE_EXPONENT, 0.02)
    assert counts["sw"] >= counts["en"] / 5
    docs, _frames, _chats = world_documents(["en", "sw"], seed=0, rows=100, sized=True)
    words = {lang: {world.word(c, lang) for c in range(40)} for lang in ("en", "sw")}
    share = {lang: sum(any(w in words[lang] for w in d.split()) for d in docs) for lang in words}
    assert share["en"] > 2 * share["sw"]
    docs, _frames, _chats = world_documents(["en", "sw"], seed=0, rows=100)
    share = {lang: sum(any(w in words[lang] for w in d.split()) for d in docs) for lang in words}
    assert share["en"] < 1.5 * share["sw"]  # the English documents aside, equal text
    with pytest.raises(MsltError, match="no cc100 size"):
        world.text_shares(["en", "yo"])
