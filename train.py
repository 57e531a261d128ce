"""Train a ganstyle model. Every option is a Hydra override; see README.md and conf/train.yaml.

python train.py                                   # CycleGAN, embedded dataset, CPU quick start
python train.py model=cyclegan loss.style_weight=1e4
python train.py -m loss.cycle_weight=5,10         # one job per value
"""

import os
import sys

# Paths in conf/paths derive from the folder holding this file, not from the working directory.
os.environ.setdefault("GANSTYLE_ROOT", os.path.dirname(os.path.abspath(__file__)))

import hydra  # noqa: E402

from ganstyle.config import rewrite_null_group_overrides  # noqa: E402  (also registers schemas)
from ganstyle.training import train  # noqa: E402


@hydra.main(version_base="1.3", config_path="conf", config_name="train")
def main(cfg) -> float | None:
    return train(cfg)


if __name__ == "__main__":
    sys.argv = rewrite_null_group_overrides(sys.argv, os.path.join(os.environ["GANSTYLE_ROOT"], "conf"))
    main()
