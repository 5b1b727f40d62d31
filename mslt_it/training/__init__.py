"""Fine-tuning with TRL's SFTTrainer and a PEFT LoRA adapter (``mslt-it train`` and ``merge``).

- :mod:`.config`: the ``model`` and ``train`` recipe sections (:class:`TrainConfig`);
- :mod:`.chat`: the chat template a run trains (and evaluates) with;
- :mod:`.model`: loading the base (4-bit for QLoRA) and checking LoRA targets;
- :mod:`.checks`: over-long examples, masked labels, the end-of-turn token;
- :mod:`.outputs`: the run folder, resume, ``run.json``;
- :mod:`.curves`: per-language training/held-out loss and the mix trained on (a forward hook);
- :mod:`.heldout`: unused rows per language for the held-out loss (``train.eval_langs``);
- :mod:`.watch`: target languages scored in rank mode during training (``train.watch``);
- :mod:`.plots`: a run's loss, transfer and mix figures, from its ``run.json``;
- :mod:`.run`: :func:`train`, top to bottom;
- :mod:`.merge`: :func:`merge_adapter`.
"""

import logging

from mslt_it.training.config import ModelConfig, TrainConfig, validate_train_section

# bitsandbytes warns on every CPU import that an optional faster 4-bit kernel package is missing;
# it changes nothing for correctness and would turn one-line errors into two lines.
logging.getLogger("bitsandbytes.backends.cpu.ops").setLevel(logging.ERROR)

__all__ = ["ModelConfig", "TrainConfig", "validate_train_section"]
