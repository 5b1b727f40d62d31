"""Fine-tuning with TRL's SFTTrainer and a PEFT LoRA adapter (``mslt-it train`` and ``merge``).

- :mod:`.config`: the ``model`` and ``train`` recipe sections (:class:`TrainConfig`);
- :mod:`.chat`: the chat template a run trains (and evaluates) with;
- :mod:`.model`: loading the base (4-bit for QLoRA) and checking LoRA targets;
- :mod:`.checks`: over-long examples, masked labels, the end-of-turn token;
- :mod:`.outputs`: the run folder, resume, ``run.json``;
- :mod:`.run`: :func:`train`, top to bottom;
- :mod:`.merge`: :func:`merge_adapter`.
"""

import logging

from mslt_it.training.config import ModelConfig, TrainConfig, validate_train_section

# bitsandbytes warns on every CPU import that an optional faster 4-bit kernel package is missing;
# it changes nothing for correctness and would turn one-line errors into two lines.
logging.getLogger("bitsandbytes.backends.cpu.ops").setLevel(logging.ERROR)

__all__ = ["ModelConfig", "TrainConfig", "validate_train_section"]
