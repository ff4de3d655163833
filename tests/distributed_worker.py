"""One process of a data-parallel test run (started by torchrun in tests/test_parallel.py, or
alone for the one-process reference): trains the float64 tiny model with the JSON config in
argv[1]. ``FAIL_AT_STEP`` and ``FAIL_RANK`` make that rank raise at that step."""

from __future__ import annotations

import json
import os
import sys

from mmopsd.config import from_dict
from mmopsd.testing import tiny_text_policy
from mmopsd.training import loop as trainer


def main() -> None:
    config = from_dict(json.loads(sys.argv[1]))
    policy = tiny_text_policy()
    policy.model.double()  # float64: "the same update" is checked near float64's epsilon
    fail_at = int(os.environ.get("FAIL_AT_STEP", "0"))
    if fail_at and os.environ.get("RANK") == os.environ.get("FAIL_RANK"):
        real_step = trainer.train_step

        def failing(step, c, cfg):
            if step == fail_at:
                raise RuntimeError(f"rank {os.environ['RANK']} failed on purpose at step {step}")
            return real_step(step, c, cfg)

        trainer.train_step = failing
    trainer.train(config, policy=policy, progress=False)


if __name__ == "__main__":
    main()
