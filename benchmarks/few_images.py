"""Few training images, with and without augmentation of what the discriminators see.

Each setup trains a quick start on a small slice of the embedded data (built by the dataset code with
a small ``data.n_train``) for the same number of steps with ``augment=none``, ``diffaugment`` and
``ada``, through ``train.py`` as a user runs it, and reads its last validation row:

- pix2pix on 25 pairs, CycleGAN and CUT on 30 images per domain: val/psnr_B and val/ssim_B against
  the held-out ground truth, and the discriminator's gap between training and held-out reals
  (val/D_real_train - val/D_real_heldout: it grows when D memorises its training set);
- DCGAN on 100 images: the same gap, and memorisation: the mean distance (RMS over pixels in [0, 1])
  of 64 samples to their nearest training image, next to the same distance for the held-out images.

ADA's speed is ``augment.kimg=1`` here (p can go from 0 to 1 in a thousand images): at ADA's 500 kimg
p would not move in a run this short.

    python -m benchmarks.few_images                    # every setup, about 25 minutes on 2 CPU cores
    python -m benchmarks.few_images --setups dcgan --steps 200
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
AUGMENTS = ("none", "diffaugment", "ada")

# name: (overrides, images per domain (n_train), batch size, validations per run)
SETUPS = {
    "pix2pix": (["model=pix2pix"], 25, 1, 4),
    "cyclegan": (["model=cyclegan"], 30, 1, 4),
    "cut": (["model=cut"], 30, 1, 4),
    "dcgan": (["model=dcgan"], 100, 32, 4),
}


def run_setup(name: str, augment: str, steps: int, out: Path) -> Path:
    overrides, n_train, batch, validations = SETUPS[name]
    epochs = max(1, round(steps * batch / n_train))  # generator steps: n_train / batch per epoch
    run_dir = out / f"{name}-{augment}"
    command = [
        sys.executable,
        str(ROOT / "train.py"),
        *overrides,
        f"data.n_train={n_train}",
        f"augment={augment}",
        *(["augment.kimg=1"] if augment == "ada" else []),
        f"trainer.max_epochs={epochs}",
        f"trainer.check_val_every_n_epoch={max(1, epochs // validations)}",
        "logger=csv",
        "metrics.fid=false",
        f"hydra.run.dir={run_dir}",
    ]
    subprocess.run(command, check=True, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    return run_dir


def last_validation(run_dir: Path) -> dict[str, float]:
    with (run_dir / "metrics.csv").open(newline="") as handle:
        rows = [
            row
            for row in csv.DictReader(handle)
            if any(k.startswith("val/D_real_heldout") and v for k, v in row.items())
        ]
    return {key: float(value) for key, value in rows[-1].items() if key.startswith("val/") and value}


def last_ada_p(run_dir: Path) -> float | None:
    with (run_dir / "metrics.csv").open(newline="") as handle:
        values = [float(v) for row in csv.DictReader(handle) for k, v in row.items() if "ada_p" in k and v]
    return values[-1] if values else None


def discriminator_gap(values: dict[str, float]) -> float:
    """Mean over discriminators of (training reals - held-out reals), in D's output units."""
    names = [
        key.removeprefix("val/D_real_heldout_") for key in values if key.startswith("val/D_real_heldout_")
    ]
    gaps = [values[f"val/D_real_train_{n}"] - values[f"val/D_real_heldout_{n}"] for n in names]
    return sum(gaps) / len(gaps)


def memorisation(run_dir: Path) -> tuple[float, float]:
    """(mean nearest-training distance of 64 samples, the same for the held-out images)."""
    import numpy as np
    import torch
    import yaml
    from PIL import Image

    from ganstyle.models.dcgan import DCGAN

    model = DCGAN.load_from_checkpoint(run_dir / "checkpoints" / "last.ckpt", map_location="cpu").eval()
    size = model.image_size
    # The folders the run read, as it recorded them (the training images and the held-out ones).
    folders = {
        entry["folder"].rsplit("/", 1)[1]: Path(entry["folder"])
        for entry in yaml.safe_load((run_dir / "images_read.yaml").read_text()).values()
    }

    def load(sub: str) -> torch.Tensor:
        arrays = []
        for path in sorted(folders[sub].glob("*.png")):
            image = (
                Image.open(path).convert("RGB").resize((size + size // 8, size + size // 8), Image.BICUBIC)
            )
            offset = size // 16
            arrays.append(np.asarray(image)[offset : offset + size, offset : offset + size])
        return torch.tensor(np.stack(arrays)).permute(0, 3, 1, 2).float().div(255).flatten(1)

    train, held_out = load("trainB"), load("testB")
    with torch.no_grad():
        samples = ((model.generate(64, seed=0) + 1) / 2).clamp(0, 1).flatten(1)

    def nearest(points: torch.Tensor) -> float:
        return float(torch.cdist(points, train).min(dim=1).values.div(train.shape[1] ** 0.5).mean())

    return nearest(samples), nearest(held_out)


def validation_history(run_dir: Path) -> dict[str, list[tuple[int, float]]]:
    """{metric: [(epoch, value)]} of the discriminator statistics in a run's metrics.csv."""
    history: dict[str, list[tuple[int, float]]] = {}
    with (run_dir / "metrics.csv").open(newline="") as handle:
        for row in csv.DictReader(handle):
            for key, value in row.items():
                if value and key.startswith(("val/D_real_", "train/r_t_")):
                    history.setdefault(key, []).append((int(float(row["epoch"])), float(value)))
    return history


def plot_curves(out: Path, setups: list[str], figure: Path) -> None:
    """One panel per setup: the discriminators' mean gap between training and held-out reals at each
    validation, for each augmentation (ADA's figure 1 as a difference)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(setups), figsize=(4 * len(setups), 3.2), squeeze=False)
    for axis, name in zip(axes[0], setups):
        for augment in AUGMENTS:
            history = validation_history(out / f"{name}-{augment}")
            by_epoch: dict[int, list[float]] = {}
            for key in [k for k in history if k.startswith("val/D_real_heldout_")]:
                train = dict(history[key.replace("heldout", "train")])
                for epoch, value in history[key]:
                    by_epoch.setdefault(epoch, []).append(train[epoch] - value)
            epochs = sorted(by_epoch)
            axis.plot(
                epochs, [sum(by_epoch[e]) / len(by_epoch[e]) for e in epochs], marker="o", label=augment
            )
        axis.set_title(f"{name}: D(train reals) - D(held-out reals)", fontsize=9)
        axis.set_xlabel("epoch")
        axis.axhline(0, color="grey", linewidth=0.5)
        axis.legend(fontsize=8)
    fig.tight_layout()
    figure.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(figure, dpi=80)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--setups", nargs="+", default=list(SETUPS), choices=list(SETUPS))
    parser.add_argument("--steps", type=int, default=600, help="generator steps per run (default 600)")
    parser.add_argument(
        "--out", type=Path, default=None, help="folder for the runs (default: a temporary one)"
    )
    parser.add_argument("--figure", type=Path, default=None, help="also plot the curves into this PNG")
    parser.add_argument(
        "--plot-only", action="store_true", help="plot the runs already in --out; train nothing"
    )
    args = parser.parse_args()
    out = args.out or Path(tempfile.mkdtemp(prefix="ganstyle-few-images-"))
    if args.plot_only:
        plot_curves(out, args.setups, args.figure or out / "few_images_curves.png")
        return
    os.environ.setdefault("WANDB_MODE", "offline")
    results = []
    print(
        "| setup | augment | val/psnr_B | val/ssim_B | D gap (train - held-out) | ADA p | samples' / held-out NN distance |"
    )
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for name in args.setups:
        for augment in AUGMENTS:
            run_dir = run_setup(name, augment, args.steps, out)
            values = last_validation(run_dir)
            row = {
                "setup": name,
                "augment": augment,
                "gap": discriminator_gap(values),
                "ada_p": last_ada_p(run_dir),
            }
            row.update(
                {
                    key: values.get(f"val/{key}")
                    for key in ("psnr_B", "ssim_B", "psnr_B_identity", "ssim_B_identity")
                }
            )
            if name == "dcgan":
                row["nn_samples"], row["nn_held_out"] = memorisation(run_dir)
            results.append(row)

            def show(value, digits=2):
                return "-" if value is None else f"{value:.{digits}f}"

            nn = f"{row['nn_samples']:.3f} / {row['nn_held_out']:.3f}" if "nn_samples" in row else "-"
            print(
                f"| {name} | {augment} | {show(row['psnr_B'])} | {show(row['ssim_B'], 3)} | "
                f"{show(row['gap'], 3)} | {show(row['ada_p'], 3)} | {nn} |",
                flush=True,
            )
    (out / "few_images.json").write_text(json.dumps(results, indent=1))
    plot_curves(out, args.setups, args.figure or out / "few_images_curves.png")
    print(f"runs and few_images.json in {out}")


if __name__ == "__main__":
    main()
