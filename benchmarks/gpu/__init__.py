"""The parts of ``benchmarks/gpu_check.py``, one module each.

``gpu_check.py`` (the entry point users run) puts the repository root and ``benchmarks/`` on
``sys.path`` and imports these modules as ``gpu.*``: the GPU machine gets a plain checkout, not an
installed package. Each module imports only the ones before it in this list (and
``bench_train``/``bench_eval`` from ``benchmarks/``); none imports torch, transformers or
anything optional at module level (that happens inside the functions):

- ``budget``: the sizes, the optional packages and the runs they decide, the time budget and its
  alarm, the device and its peak, small shared helpers (logging, CUDA sync, memory reset);
- ``summary``: the Markdown summary of a report (``gpu_check.md``);
- ``setup``: what every part shares: tokenizer, random model and tokenised mixture;
- ``training``: the training part (plain torch loop, packed and padded, QLoRA, TRL);
- ``evaluation``: the evaluation part (batched against single generation, rank mode);
- ``profile``: the profile part (``torch.profiler``'s top kernels of a training step).
"""
