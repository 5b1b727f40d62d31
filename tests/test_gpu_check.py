"""benchmarks/gpu_check.py: its CPU rehearsal (``--smoke``) and the pieces it decides with
(in ``benchmarks/gpu/``, the package the script imports).

GPU minutes are few and come without network, so a typo, a missing import or a broken part must
show up here first. The smoke run's numbers are never asserted on (the machine is shared), only
the report's structure and sanity: every part present or skipped with its reason, tokens/s above
zero, greedy outputs identical across batch sizes.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "benchmarks" / "gpu_check.py"
STATES = {"done", "partial", "skipped", "failed"}


@pytest.fixture(scope="module")
def gpu_check() -> ModuleType:
    """The script as a module, imported without leaving its environment defaults or its
    sys.path entries behind for the other tests."""
    environ, path = dict(os.environ), list(sys.path)
    spec = importlib.util.spec_from_file_location("gpu_check", SCRIPT)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules["gpu_check"] = module  # registered, as an import would (dataclasses need it)
    try:
        spec.loader.exec_module(module)
    finally:
        os.environ.clear()
        os.environ.update(environ)
        sys.path[:] = path
    return module


def imported(name: str) -> ModuleType:
    """A module of benchmarks/gpu/ as the script imported it (its sys.path entries are gone)."""
    return sys.modules[f"gpu.{name}"]


@pytest.fixture(scope="module")
def budget(gpu_check) -> ModuleType:
    """benchmarks/gpu/budget.py: sizes, optional packages, the budget and its alarm, the device."""
    return imported("budget")


@pytest.fixture(scope="module")
def training(gpu_check) -> ModuleType:
    """benchmarks/gpu/training.py: the training part, its batches and packing."""
    return imported("training")


def test_wheel_list_names_every_optional_import_with_a_download_command(budget) -> None:
    wheels = {w.module: w for w in budget.read_wheel_list()}
    needed = {m for needs in budget.REQUIREMENTS.values() for m in needs}
    assert needed | set(budget.CORE) | {"flash_attn"} <= set(wheels)
    for wheel in wheels.values():
        if wheel.download is None:
            continue
        assert wheel.download.startswith("python3 -m pip download --no-deps --only-binary=:all:")
        assert "x86_64" in wheel.download and "-d .whl " in wheel.download
        assert "==" in wheel.download.rsplit(" ", 1)[-1]  # a pinned version


def test_peak_flops_come_from_the_table_or_the_command_line_never_a_guess(budget) -> None:
    assert budget.peak_flops("NVIDIA H100 PCIe", None) == (756e12, "table (H100 PCIe)")
    assert budget.peak_flops("NVIDIA H100 80GB HBM3", None)[0] == 989e12
    assert budget.peak_flops("NVIDIA A100-SXM4-80GB", None)[0] == 312e12
    assert budget.peak_flops("NVIDIA A10G", None)[0] == 70e12
    assert budget.peak_flops("NVIDIA L40S", None)[0] == 362e12
    assert budget.peak_flops("NVIDIA L4", None)[0] == 121e12
    assert budget.peak_flops("Some New GPU", None)[0] is None
    assert budget.peak_flops("Some New GPU", 500.0) == (500e12, "--peak-tflops")


def test_best_fit_keeps_examples_whole_and_rows_within_capacity(training) -> None:
    lengths = [300, 200, 200, 120, 100, 60, 500, 12]
    bins = training.best_fit(lengths, 512)
    assert sorted(i for b in bins for i in b) == list(range(len(lengths)))
    assert all(sum(lengths[i] for i in b) <= 512 for b in bins)
    assert len(bins) == 3  # 1,492 tokens need at least three rows of 512
    ids, labels, positions = training.packed_row(
        [([1, 2, 3], [-100, 2, 3]), ([4, 5], [4, 5])], 8, 0
    )
    assert ids == [1, 2, 3, 4, 5, 0, 0, 0]
    assert labels == [-100, 2, 3, 4, 5, -100, -100, -100]
    assert positions == [0, 1, 2, 0, 1, 0, 1, 2]  # restarts: no example sees another


def test_skips_are_planned_from_what_imports_and_the_device(budget) -> None:
    nothing: dict[str, Any] = {}
    skips = budget.planned_skips(nothing, cuda=True)
    assert set(skips) == {"qlora_padded_torch", "lora_padded_trl", "lora_packed_trl"}
    assert "trl" in skips["lora_padded_trl"] and "bitsandbytes" in skips["qlora_padded_torch"]
    everything = {m: {"importable": True} for m in ("trl", "datasets", "bitsandbytes")}
    assert budget.planned_skips(everything, cuda=True) == {}
    assert "CUDA" in budget.planned_skips(everything, cuda=False)["qlora_padded_torch"]


def test_a_run_that_outlives_its_share_is_stopped_and_recorded(budget, monkeypatch) -> None:
    def endless() -> dict[str, Any]:
        while True:
            pass

    monkeypatch.setattr(budget, "grace", lambda share: 0.5)
    found = budget.guarded(endless, share=0.0)  # the alarm rings after the grace
    assert found["status"] == "partial" and "budget" in found["reason"]
    failed = budget.guarded(lambda: 1 / 0)
    assert failed["status"] == "failed" and "ZeroDivisionError" in failed["reason"]


# What the GPU machine lacks of the project's dependencies: the first five can travel as wheels
# (gpu_wheels.txt, with pydantic), lang2vec and seqeval are not needed by the check.
GPU_MACHINE_LACKS = (
    "trl",
    "datasets",
    "bitsandbytes",
    "dill",
    "multiprocess",
    "lang2vec",
    "seqeval",
)


def run_smoke(out: Path, lacking: tuple[str, ...] = ()) -> dict[str, Any]:
    """``gpu_check.py --smoke`` in a fresh process, with ``lacking`` made unimportable."""
    code = (
        "import runpy, sys\n"
        f"for name in {lacking!r}:\n"
        "    sys.modules[name] = None  # import fails; importlib.util.find_spec answers None\n"
        f"sys.argv = [{str(SCRIPT)!r}, '--smoke', '--out', {str(out)!r}]\n"
        f"runpy.run_path({str(SCRIPT)!r}, run_name='__main__')\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
        cwd=ROOT,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads((out / "gpu_check.json").read_text(encoding="utf-8"))


@pytest.mark.slow
def test_smoke_run_without_trl_datasets_or_bitsandbytes_as_on_the_gpu_machine(
    tmp_path: Path, gpu_check, budget
) -> None:
    """The smoke run as the GPU machine sees it (one run in the suite, for its time: the TRL
    runs are rehearsed by `python benchmarks/gpu_check.py --smoke` where trl is installed)."""
    report = run_smoke(tmp_path / "out", GPU_MACHINE_LACKS)
    assert not any(report["packages"][name]["importable"] for name in GPU_MACHINE_LACKS[:5])
    runs = report["parts"]["training"]["runs"]
    for name in ("qlora_padded_torch", "lora_padded_trl", "lora_packed_trl"):
        assert runs[name]["status"] == "skipped" and "does not import" in runs[name]["reason"]
    check_training(report, set(budget.REQUIREMENTS))
    check_evaluation(report["parts"]["evaluation"])
    assert report["mode"] == "smoke" and report["schema"] == gpu_check.SCHEMA
    assert set(report["parts"]) == {"training", "evaluation", "profile"}
    for name, part in report["parts"].items():
        assert part["status"] in STATES - {"failed"}, (name, part)
        assert part["status"] == "done" or part["reason"], (name, part)
    profile = report["parts"]["profile"]
    assert profile["status"] == "done" and profile["top"]
    assert sum(profile["time_by_kind"].values()) == pytest.approx(1, abs=0.01)
    summary = (tmp_path / "out" / "gpu_check.md").read_text(encoding="utf-8")
    assert "| part | configuration | throughput | peak memory MB | MFU | note |" in summary
    assert summary.count("| training |") == len(runs)


def check_training(report: dict[str, Any], names: set[str]) -> None:
    runs = report["parts"]["training"]["runs"]
    assert set(runs) == names
    for name, run in runs.items():
        assert run["status"] in STATES - {"failed"}, (name, run.get("traceback", run))
        if run["status"] == "skipped":
            assert run["reason"], name
            continue
        assert run["tokens_per_second"] > 0, name
        assert run["peak_memory_mb"] > 0, name
    for name in ("lora_padded_torch", "lora_packed_torch"):  # need nothing optional
        assert runs[name]["status"] == "done"
        assert runs[name]["first_loss"] > 0
    assert runs["lora_packed_torch"]["packing_isolation"]["isolated"] is True
    if not report["machine"]["cuda"]:
        assert runs["qlora_padded_torch"]["status"] == "skipped"
        assert runs["lora_padded_torch"]["mfu"] is None  # no peak given: never guessed
    trl = report["packages"]["trl"]["importable"] and report["packages"]["datasets"]["importable"]
    assert (runs["lora_padded_trl"]["status"] == "done") == trl


def check_evaluation(evaluation: dict[str, Any]) -> None:
    assert evaluation["status"] == "done"
    assert evaluation["greedy_identical"] is True
    assert evaluation["generate_single"]["examples"] == evaluation["prompts"] > 0
    for size in (2, 4, 8):
        entry = evaluation[f"generate_batch_{size}"]
        assert entry["examples_per_second"] > 0
        assert entry["identical_to_single"] and entry["identical_across_batch_sizes"]
    assert evaluation["rank"]["identical_choices_vs_batch_1"] is True
    assert evaluation["rank"]["examples_per_second"] > 0


def test_parts_are_chosen_by_name_in_running_order(gpu_check) -> None:
    assert gpu_check.part_list("profile, training") == ["training", "profile"]
    with pytest.raises(gpu_check.argparse.ArgumentTypeError, match="trainig"):
        gpu_check.part_list("trainig")
    with pytest.raises(gpu_check.argparse.ArgumentTypeError):
        gpu_check.part_list(" , ")
    assert gpu_check.parse_args(["--out", "x"]).parts == list(gpu_check.PART_WEIGHTS)


@pytest.fixture(scope="module")
def evaluation(gpu_check) -> ModuleType:
    """benchmarks/gpu/evaluation.py: generation batched and alone, rank mode, float32 control."""
    return imported("evaluation")


def test_float32_control_compares_batched_and_single_generation(
    evaluation, budget, tiny_model_dir: Path
) -> None:
    """The control a bf16 difference on a GPU gets: on the tiny model in float32 (this CPU),
    batched and one-at-a-time greedy outputs agree, and the record says so."""
    from mslt_it.generation import BackendOptions

    prompts = [[5, 6, 7], [8, 9, 10, 11, 12], [13], [14, 15]]
    sizes = dataclasses.replace(budget.SMOKE, eval_batch_sizes=(4,), max_new_tokens=4)
    options = BackendOptions(model=str(tiny_model_dir), device="cpu", pad_token_id=0)
    found = evaluation.float32_control(options, prompts, sizes, deadline=time.monotonic() + 300)
    assert found == {
        "prompts": 4,
        "batch_size": 4,
        "identical_to_single": True,
        "single_agreement": 1.0,
    }
    late = evaluation.float32_control(options, prompts, sizes, deadline=time.monotonic() - 1)
    assert late["status"] == "skipped"


def test_summary_shows_agreement_and_the_float32_control(gpu_check) -> None:
    summary = imported("summary")
    part = {
        "prompts": 200,
        "generate_single": {"examples": 82, "examples_per_second": 1.5},
        "generate_batch_32": {
            "examples_per_second": 13.4,
            "speedup_vs_single": 9.2,
            "identical_to_single": False,
            "identical_across_batch_sizes": True,
            "single_agreement": 0.4268,
        },
        "float32_control": {
            "prompts": 16,
            "batch_size": 32,
            "identical_to_single": True,
            "single_agreement": 1.0,
        },
    }
    rows = summary.evaluation_rows(part)
    assert "identical: False (43% of outputs equal)" in rows[1]
    assert rows[2].startswith("| evaluation | generate in float32, batch 32 vs one at a time")
    assert rows[2].endswith("identical: True |")
