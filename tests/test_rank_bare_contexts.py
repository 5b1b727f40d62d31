"""Rank mode's contexts that share no token (XWinograd's sentence that begins with the blank,
with a tokenizer that adds no BOS, as BLOOM's and the tiny model's) are fed bare, as
lm-evaluation-harness feeds them: a BOS before them all moved every score of such a row."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest

from mslt_it.evaluation import EvalConfig, evaluate
from mslt_it.generation.base import gather_unprompted, split_unprompted
from mslt_it.tasks import get_task
from mslt_it.tasks.sources import open_split

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

HAS_LM_EVAL = importlib.util.find_spec("lm_eval") is not None


def test_rows_of_no_prompt_are_split_per_candidate_and_gathered_back():
    """Each candidate of an empty prompt becomes a row whose prompt is its first token (fed,
    not scored); a row with a prompt passes as it is; the scores come back in place."""
    prompts = [[5, 6], [], [7]]
    continuations = [[[1], [2, 3]], [[8, 9, 1], [4, 1]], [[2]]]
    skip = [[0, 0], [2, 1], [0]]
    new_prompts, new_cont, new_skip, origin = split_unprompted(prompts, continuations, skip)
    assert new_prompts == [[5, 6], [8], [4], [7]]
    assert new_cont == [[[1], [2, 3]], [[9, 1]], [[1]], [[2]]]
    assert new_skip == [[0, 0], [1], [0], [0]]
    scores = [[-1.0, -2.0], [-3.0], [-4.0], [-5.0]]
    assert gather_unprompted(scores, origin, 3) == [[-1.0, -2.0], [-3.0, -4.0], [-5.0]]
    with pytest.raises(ValueError, match="bug"):
        split_unprompted([[]], [[[1, 2]]], [[0]])  # its first token has nothing before it


def xwinograd_rows_beginning_with_the_blank(count: int) -> list[dict]:
    task = get_task("xwinograd")
    rows = open_split(task, "en", task.splits[-1], "synthetic").rows(range(count))
    return [{**row, "sentence": "_ " + row["sentence"].split("_", 1)[1].lstrip()} for row in rows]


def scores_beside_lm_eval(model: Path, rows: list[dict], tmp_path: Path) -> None:
    """Rank mode's scores of ``rows`` (XWinograd, English) equal lm-eval's, row by row."""
    from lm_eval.models.huggingface import HFLM
    from lm_eval_reference import lm_eval_scores, lm_eval_task, write_rows

    task = get_task("xwinograd")
    split = task.splits[-1]
    rows_file = write_rows(rows, tmp_path / "data" / "xwinograd" / "en" / f"{split}.jsonl")
    built = lm_eval_task("xwinograd", task.hub_config("en"), rows_file)
    lm = HFLM(pretrained=str(model), device="cpu", dtype="float32", batch_size=4)
    theirs = lm_eval_scores(lm, built)
    config = EvalConfig(
        model=str(model), task="xwinograd", langs=["en"], split=split,
        template="xwinograd/lm-eval", mode="rank", data=str(tmp_path / "data"), backend="hf",
        device="cpu", dtype="float32", batch_size=4, bootstrap_samples=40,
    )  # fmt: skip
    evaluate(config, tmp_path / "out")
    lines = (tmp_path / "out" / "predictions.jsonl").read_text().splitlines()
    ours = [[json.loads(line)["scores"][label] for label in task.labels] for line in lines]
    assert len(ours) == len(theirs) == len(rows)
    for mine, reference in zip(ours, theirs, strict=True):
        assert mine == pytest.approx(reference, abs=1e-3)


@pytest.mark.skipif(not HAS_LM_EVAL, reason="lm_eval is not installed (pip install -e '.[dev]')")
def test_contexts_sharing_no_token_score_as_lm_evaluation_harness(tiny_model_dir, tmp_path):
    from mslt_it.modeling import load_tokenizer

    tokenizer = load_tokenizer(str(tiny_model_dir))
    assert tokenizer("a b")["input_ids"][0] != tokenizer.bos_token_id  # no BOS added
    scores_beside_lm_eval(tiny_model_dir, xwinograd_rows_beginning_with_the_blank(4), tmp_path)


@pytest.mark.skipif(not HAS_LM_EVAL, reason="lm_eval is not installed (pip install -e '.[dev]')")
def test_an_empty_context_alone_gets_the_prefix_token(tiny_model_dir, tmp_path):
    """An option of no text before a blank that begins the sentence: its context is empty and
    lm-eval feeds it the prefix token; the other option's context stays bare. A BOS was put
    before both (-27.24 against lm-eval's -27.52 for "Dog")."""
    rows = xwinograd_rows_beginning_with_the_blank(3)  # lm-eval checks its first row's
    rows[1:] = [{**row, "option1": ""} for row in rows[1:]]  # choices: not empty there
    scores_beside_lm_eval(tiny_model_dir, rows, tmp_path)
