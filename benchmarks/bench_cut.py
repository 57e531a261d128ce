"""CUT and FastCUT against CycleGAN: seconds per training step and training memory, as ratios.

    python -m benchmarks.bench_cut                          # reference networks at 256 px, CPU (minutes)
    python -m benchmarks.bench_cut --size 128 --timed 3     # smaller images, the same networks
    python -m benchmarks.bench_cut --quickstart             # the CPU quick starts' networks at 64 px
    python -m benchmarks.bench_cut --device cuda --timed 20

Each model is built from its Hydra config (``model=<name> experiment=null``: ResNet-9 ngf 64, PatchGAN
ndf 64; with ``--quickstart`` the quick-start experiment's sizes) and trained through ``Trainer.fit``
on one synthetic batch of 1 repeated, in its own process, one model after the other. Reported: the
fastest step after the warm-up steps (other processes' load only ever adds time), CPU seconds for
that step, and the peak resident (CUDA: allocated) memory during training minus the memory held
before it; then each model's ratio to CycleGAN. The authors report CUT's step cheaper than
CycleGAN's and FastCUT about 2x faster in half the memory (on a GPU).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys

MODELS = {
    "cyclegan": ("model=cyclegan",),
    "cut": ("model=cut", "model.mode=cut"),
    "fastcut": ("model=cut", "model.mode=fastcut"),
}


def build_model(name: str, quickstart: bool):
    """The model as `python train.py <overrides>` would build it (loggers and data aside)."""
    from pathlib import Path

    import hydra
    from hydra import compose, initialize_config_dir

    import ganstyle.config  # noqa: F401  (registers the loss schema and the CUT mode resolver)

    conf = Path(__file__).resolve().parents[1] / "conf"
    overrides = [*MODELS[name], *([] if quickstart else ["~experiment"])]
    with initialize_config_dir(config_dir=str(conf), version_base="1.3"):
        cfg = compose("train", overrides=overrides)
    return hydra.utils.instantiate(cfg.model, _recursive_=False)


def run_one(name: str, size: int, warmup: int, timed: int, device_name: str, quickstart: bool) -> dict:
    import ganstyle  # noqa: F401  (first: makes torchvision importable before lightning)

    # isort: split
    import lightning.pytorch as pl
    import torch
    from torch.utils.data import DataLoader

    from benchmarks.bench_models_pix2pix_dcgan import memory_mb, now, reset_peak_memory
    from benchmarks.common import benchmark_trainer

    device = torch.device(device_name)
    torch.manual_seed(0)
    model = build_model(name, quickstart)
    images = torch.rand(2, 1, 3, size, size, generator=torch.Generator().manual_seed(0)) * 2 - 1
    batch = {"A": images[0][0], "B": images[1][0], "A_path": "a.png", "B_path": "b.png"}
    stamps: list[tuple[float, float]] = []

    def sync() -> None:
        if device.type == "cuda":
            torch.cuda.synchronize(device)

    class Stamp(pl.Callback):
        def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
            sync()
            stamps.append(now())

    steps = warmup + timed
    loader = DataLoader([batch] * steps, batch_size=1)
    trainer = benchmark_trainer(
        "gpu" if device.type == "cuda" else "cpu", [Stamp()], limit_train_batches=steps
    )
    reset_peak_memory(device)
    before = memory_mb(device)
    trainer.fit(model, train_dataloaders=loader)
    peak = memory_mb(device, "VmHWM") - before
    walls = [(b[0] - a[0]) for a, b in zip(stamps[warmup - 1 :], stamps[warmup:])]
    cpus = [(b[1] - a[1]) for a, b in zip(stamps[warmup - 1 :], stamps[warmup:])]
    best = min(range(len(walls)), key=walls.__getitem__)
    return {"model": name, "seconds_per_step": walls[best], "cpu_seconds": cpus[best], "peak_mb": peak}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--size", type=int, default=None, help="image side (default 256; 64 with --quickstart)"
    )
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--timed", type=int, default=3)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--quickstart", action="store_true", help="the quick-start experiments' networks")
    parser.add_argument("--models", nargs="+", default=list(MODELS), choices=list(MODELS))
    parser.add_argument("--one", help=argparse.SUPPRESS)  # internal: run one model in this process
    args = parser.parse_args(argv)
    size = args.size or (64 if args.quickstart else 256)
    if args.one:
        import torch

        torch.set_num_threads(args.threads)
        print(json.dumps(run_one(args.one, size, args.warmup, args.timed, args.device, args.quickstart)))
        return
    results = []
    for name in args.models:
        command = [sys.executable, "-m", "benchmarks.bench_cut", "--one", name, "--size", str(size)]
        command += ["--warmup", str(args.warmup), "--timed", str(args.timed), "--device", args.device]
        command += ["--threads", str(args.threads)] + (["--quickstart"] if args.quickstart else [])
        output = subprocess.run(command, capture_output=True, text=True, check=True).stdout
        results.append(json.loads(output.strip().splitlines()[-1]))
    baseline = next((r for r in results if r["model"] == "cyclegan"), results[0])
    sizes = "quick-start networks" if args.quickstart else "reference networks"
    print(f"\n{sizes}, {size} px, batch 1, {args.device}, {args.threads} threads, best of {args.timed} steps")
    print(
        f"| model | s/step | CPU s/step | peak MB | time / {baseline['model']} | memory / {baseline['model']} |"
    )
    print("| --- | --- | --- | --- | --- | --- |")
    for r in results:
        print(
            f"| {r['model']} | {r['seconds_per_step']:.3f} | {r['cpu_seconds']:.3f} | {r['peak_mb']:.0f} | "
            f"{r['seconds_per_step'] / baseline['seconds_per_step']:.2f} | "
            f"{r['peak_mb'] / max(baseline['peak_mb'], 1e-9):.2f} |"
        )


if __name__ == "__main__":
    main()
