"""Soak test: does memory stay flat over thousands of training steps?

Trains the default CycleGAN run in-process through ``ganstyle.run.training.train`` (all default callbacks:
checkpoints every epoch, image grids, the NaN guard; CSV logging) at tiny sizes on the CPU, samples the
process's resident memory (RSS) and the number of live tensors every ``--every`` batches, and reports
the RSS slope over the run after a warm-up. A leak in a training step or a callback (a list that keeps
every logged tensor, a graph kept alive by a logged value) shows as a slope of megabytes per thousand
batches and a growing tensor count; a flat run stays within allocator noise.

    python -m benchmarks.soak                        # 2000 batches, about 15 minutes on an idle 2-core CPU
    python -m benchmarks.soak --batches 300 --every 25 --json soak.json

Not part of the test suite (it is long by design); run it after changing a training step or a callback.
"""

from __future__ import annotations

import argparse
import gc
import json
import math
import os
import tempfile
import time
from pathlib import Path

import ganstyle  # noqa: F401  (first: makes torchvision importable before lightning)

# isort: split
import lightning.pytorch as pl
import torch

ROOT = Path(__file__).resolve().parents[1]
BATCHES_PER_EPOCH = 64  # data.n_train: checkpoints and a validation batch every 64 batches


def rss_mib() -> float:
    """Resident set size of this process, from /proc (Linux)."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024.0
    raise RuntimeError("no VmRSS in /proc/self/status: the soak benchmark needs Linux")


def live_tensors() -> int:
    """Tensors reachable by Python's garbage collector (parameters, buffers, logged values, pools)."""
    return sum(1 for obj in gc.get_objects() if isinstance(obj, torch.Tensor))


class MemoryProbe(pl.Callback):
    """Record (batch, RSS MiB, live tensors) every ``every`` batches into a JSON file."""

    def __init__(self, every: int, output: str) -> None:
        self.every, self.output = every, Path(output)
        self.samples: list[dict[str, float]] = []
        self.started = time.perf_counter()

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        done = trainer.fit_loop.total_batch_idx + 1
        if done % self.every == 0:
            gc.collect()  # count what is really alive, not what awaits collection
            sample = {"batch": done, "rss_mib": rss_mib(), "tensors": live_tensors()}
            sample["seconds"] = time.perf_counter() - self.started
            self.samples.append(sample)
            self.output.write_text(json.dumps(self.samples))


def slope_per_1000(samples: list[dict[str, float]], key: str) -> float:
    """Least-squares slope of ``key`` against the batch number, per 1000 batches."""
    xs = [s["batch"] for s in samples]
    ys = [s[key] for s in samples]
    mean_x, mean_y = sum(xs) / len(xs), sum(ys) / len(ys)
    spread = sum((x - mean_x) ** 2 for x in xs)
    if spread == 0:
        return math.nan
    return 1000.0 * sum((x - mean_x) * (y - mean_y) for x, y in zip(xs, ys)) / spread


def compose(overrides: list[str], output_dir: Path):
    """The config train.py would build, with the run folder set as Hydra's runtime would."""
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir
    from hydra.core.hydra_config import HydraConfig
    from omegaconf import open_dict

    from ganstyle.config import rewrite_null_group_overrides

    os.environ.setdefault("GANSTYLE_ROOT", str(ROOT))
    conf = ROOT / "conf"
    with initialize_config_dir(config_dir=str(conf), version_base="1.3"):
        cfg = hydra_compose(
            "train", overrides=rewrite_null_group_overrides(overrides, str(conf)), return_hydra_config=True
        )
    with open_dict(cfg):
        cfg.hydra.runtime.output_dir = str(output_dir)
        cfg.hydra.job.num = 0
    HydraConfig.instance().set_config(cfg)
    return cfg


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--batches", type=int, default=2000, help="training batches in total")
    parser.add_argument("--every", type=int, default=100, help="batches between memory samples")
    parser.add_argument("--warmup", type=float, default=0.2, help="fraction of the run left out of the slope")
    parser.add_argument("--logger", default="csv", help="logger config: csv, tensorboard, wandb, none")
    parser.add_argument("--json", type=Path, help="write the samples and the summary here")
    parser.add_argument("overrides", nargs="*", help="extra Hydra overrides, e.g. model.generator.ngf=16")
    args = parser.parse_args()
    if args.batches < 4 * args.every:
        parser.error("--batches must be at least 4 x --every: a slope needs several samples")

    torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))
    epochs = math.ceil(args.batches / BATCHES_PER_EPOCH)
    with tempfile.TemporaryDirectory(prefix="ganstyle-soak-") as scratch:
        scratch = Path(scratch)
        os.environ.setdefault("GANSTYLE_CACHE", str(scratch / "cache"))
        os.environ.setdefault("WANDB_MODE", "offline")
        samples_file = scratch / "samples.json"
        overrides = [
            "model.generator.ngf=8",
            "model.generator.netG=resnet_1blocks",
            "model.discriminator.ndf=8",
            f"data.n_train={BATCHES_PER_EPOCH}",
            "data.n_test=4",
            "data.load_size=36",
            "data.crop_size=32",
            "trainer.limit_val_batches=1",
            f"trainer.max_epochs={epochs}",
            f"trainer.limit_train_batches={min(BATCHES_PER_EPOCH, args.batches)}",
            f"scheduler.n_epochs={epochs}",
            "scheduler.n_epochs_decay=0",
            "trainer.log_every_n_steps=10",
            f"logger={args.logger}",
            "callbacks.progress_bar=null",
            "callbacks.image_grids.every_n_batches=50",
            "~callbacks.translate_test_set",
            "+callbacks.memory_probe._target_=benchmarks.soak.MemoryProbe",
            f"+callbacks.memory_probe.every={args.every}",
            f"+callbacks.memory_probe.output={samples_file}",
            *args.overrides,
        ]
        from ganstyle.run.training import train

        started = time.perf_counter()
        train(compose(overrides, scratch / "run"))
        seconds = time.perf_counter() - started
        samples = json.loads(samples_file.read_text())

    steady = [s for s in samples if s["batch"] > args.warmup * args.batches] or samples
    summary = {
        "batches": samples[-1]["batch"],
        "seconds": round(seconds, 1),
        "rss_first_mib": round(samples[0]["rss_mib"], 1),
        "rss_last_mib": round(samples[-1]["rss_mib"], 1),
        "rss_slope_mib_per_1000_batches": round(slope_per_1000(steady, "rss_mib"), 2),
        "tensors_first": samples[0]["tensors"],
        "tensors_last": samples[-1]["tensors"],
        "tensors_slope_per_1000_batches": round(slope_per_1000(steady, "tensors"), 2),
    }
    print(f"{'batch':>7} {'RSS MiB':>9} {'tensors':>8} {'s':>7}")
    for s in samples:
        print(f"{s['batch']:>7} {s['rss_mib']:>9.1f} {s['tensors']:>8} {s['seconds']:>7.1f}")
    print(json.dumps(summary, indent=2))
    if args.json:
        args.json.write_text(json.dumps({"summary": summary, "samples": samples}, indent=2))


if __name__ == "__main__":
    main()
