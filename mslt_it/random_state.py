"""The global random generators, as a library call found them.

Building a tiny model seeds Python's, numpy's and torch's generators with its seed
(:func:`mslt_it.tiny.pretrain.seed_everything`); training seeds them with ``train.sft.seed``
(TRL and the Trainer call transformers' ``set_seed``). Both need it for their own results, but
a notebook's random streams were then reset behind its back: ``torch.initial_seed()`` was 42
after ``train``, and the next ``np.random.rand()`` the same in every session.
:func:`kept_random_state` puts every generator back as it was when the call began; the call's
own seeds, and so its results, are unchanged.
"""

from __future__ import annotations

import contextlib
import random
from collections.abc import Iterator


@contextlib.contextmanager
def kept_random_state() -> Iterator[None]:
    """Python's ``random``, numpy's global generator and torch's (CPU, and CUDA's where there is
    one) as they were before the block, whatever it seeds or draws.

    CUDA's generators are read only where CUDA is already in use: reading them would start
    CUDA in a process that had not (memory on the GPU, and no more forking). Where it is not,
    a block that seeds them (``torch.manual_seed`` queues CUDA's seed until CUDA starts) has
    its seed replaced by the one the process had: torch's, which it gives CUDA too.
    """
    import numpy as np
    import torch

    python_state = random.getstate()
    numpy_state = np.random.get_state()
    torch_state = torch.random.get_rng_state()
    cuda = torch.cuda.is_available()
    cuda_started = cuda and torch.cuda.is_initialized()
    cuda_states = torch.cuda.get_rng_state_all() if cuda_started else None
    seed = torch.initial_seed()
    try:
        yield
    finally:
        random.setstate(python_state)
        np.random.set_state(numpy_state)
        torch.random.set_rng_state(torch_state)
        if cuda_states is not None:
            torch.cuda.set_rng_state_all(cuda_states)
        elif cuda:
            torch.cuda.manual_seed_all(seed)
