"""What the style models cost over plain PyTorch: fast neural style (with and without the critic), Gatys
optimisation and AdaIN training steps.

    python -m benchmarks.bench_models_style                     # CPU defaults: 32 and 64 px, about 4 minutes
    python -m benchmarks.bench_models_style --sizes 128 256 --steps 20 --device cuda

For each model at two sizes, the same networks (VGG with random weights: speed does not depend on the
values), losses and optimiser settings run on one synthetic batch repeated, once through ``Trainer.fit``
on the ganstyle LightningModule and once in a loop written out here (the losses too, from the papers'
equations). Reported: images per second (content images per step over the fastest timed step after
the warm-up steps, best of ``--rounds``: other processes can only slow a step down), the
Lightning/plain time ratio as the median over rounds of each round's ratio (the framework's
overhead: hooks, logging on the steps the logger writes, optimiser toggling, the NaN guard; target
under 1.05) and peak
memory during the steps above what the built model holds (CUDA: peak allocated; CPU: peak resident
memory, each run in a forked process of its own).
"""

from __future__ import annotations

import argparse
import json
import logging
import multiprocessing
import os
import resource
import shutil
import statistics
import time
import traceback
from collections.abc import Callable

import torch
import torch.nn.functional as F

import ganstyle  # noqa: F401  (before lightning: makes torchvision importable on CPU torch)
from benchmarks.common import benchmark_trainer
from ganstyle.losses.perceptual import gram_matrix
from ganstyle.networks.adain import adaptive_instance_norm, calc_mean_std

RANDOM_VGG = {"weights": "random"}
ADAM = {"_target_": "torch.optim.Adam", "_partial_": True}
# model -> content images per step (the papers' batch sizes; Gatys optimises one image)
BATCH = {"fast_style": 4, "fast_style_gan": 4, "gatys": 1, "adain": 8}


def build(name: str, size: int, device: torch.device):
    """The ganstyle model and a batch for it; Gatys also gets its targets as setup() would."""
    from ganstyle.models.adain import AdaIN
    from ganstyle.models.fast_style import FastStyleTransfer
    from ganstyle.models.gatys import GatysStyleTransfer

    generator = torch.Generator().manual_seed(0)
    content = torch.rand(BATCH[name], 3, size, size, generator=generator) * 2 - 1
    style = torch.rand(BATCH[name], 3, size, size, generator=generator) * 2 - 1
    batch = {"content": content.to(device), "style": style.to(device)}
    if name.startswith("fast_style"):
        gan = name.endswith("gan")
        model = FastStyleTransfer(
            generator={"_target_": "ganstyle.networks.TransformerNet"},
            optimizer={**ADAM, "lr": 1e-3},
            discriminator={"_target_": "ganstyle.networks.NLayerDiscriminator", "ndf": 64} if gan else None,
            discriminator_optimizer={**ADAM, "lr": 2e-4, "betas": [0.5, 0.999]} if gan else None,
            loss={
                "content_weight": 1e5,
                "style_weight": 4e10,
                "gan_weight": 1e4 if gan else 0.0,
                "feature_net": {"arch": "vgg16", **RANDOM_VGG},
            },
        ).to(device)
        model.set_style_images([style[:1].to(device)])
    elif name == "gatys":
        model = GatysStyleTransfer(
            optimizers={
                "lbfgs": {
                    "_target_": "torch.optim.LBFGS",
                    "_partial_": True,
                    "max_iter": 1,
                    "history_size": 100,
                }
            },
            progress_every=10**9,  # no snapshots: they are not part of the algorithm's cost
            loss={"content_weight": 1.0, "style_weight": 1e6, "gan_weight": 0.0, "feature_net": RANDOM_VGG},
        ).to(device)
        model.start(batch["content"], [batch["style"]], [1.0])
    else:
        model = AdaIN(
            decoder={"_target_": "ganstyle.networks.AdainDecoder"},
            optimizer={**ADAM, "lr": 1e-4},
            loss={"content_weight": 1.0, "style_weight": 10.0, "gan_weight": 0.0, "feature_net": RANDOM_VGG},
        ).to(device)
    return model, batch


def plain_step_function(name: str, model, batch: dict) -> Callable[[], None]:
    """One training step of the paper's algorithm, written out over the model's networks."""
    content, style = batch["content"], batch["style"]
    if name.startswith("fast_style"):
        G, vgg = model.generator, model.criterion.feature_net
        optimizers = list(model.make_optimizers().values())
        style_layers = ("relu1_2", "relu2_2", "relu3_3", "relu4_3")
        with torch.no_grad():
            style_grams = {layer: gram_matrix(f) for layer, f in vgg(style[:1]).items()}
        D = model.discriminator

        def step() -> None:
            stylized = G(content)
            features = vgg(stylized)
            with torch.no_grad():
                target = vgg(content)["relu2_2"]
            loss = 1e5 * F.mse_loss(features["relu2_2"], target)
            grams = [
                F.mse_loss(gram_matrix(features[layer]), style_grams[layer].expand(len(content), -1, -1))
                for layer in style_layers
            ]
            loss = loss + 4e10 * sum(grams) / len(grams)
            if D is not None:  # LSGAN: the critic should call the output real
                D.requires_grad_(False)
                loss = loss + 1e4 * (D(stylized) - 1).square().mean()
            optimizers[0].zero_grad(set_to_none=True)
            loss.backward()
            optimizers[0].step()
            if D is not None:
                D.requires_grad_(True)
                loss_D = 0.5 * ((D(style) - 1).square().mean() + D(stylized.detach()).square().mean())
                optimizers[1].zero_grad(set_to_none=True)
                loss_D.backward()
                optimizers[1].step()

        return step
    if name == "gatys":
        vgg, image = model.criterion.feature_net, model.image
        (optimizer,) = model.make_optimizers().values()
        layers = ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1")
        with torch.no_grad():
            content_target = vgg(content)["relu4_2"]
            style_grams = {layer: gram_matrix(f) for layer, f in vgg(style).items() if layer in layers}

        def closure() -> torch.Tensor:
            optimizer.zero_grad(set_to_none=True)
            features = vgg(image)
            loss = F.mse_loss(features["relu4_2"], content_target)
            grams = [F.mse_loss(gram_matrix(features[layer]), style_grams[layer]) for layer in layers]
            loss = loss + 1e6 * sum(grams) / len(grams)
            loss.backward()
            return loss

        return lambda: optimizer.step(closure)
    encoder, decoder = model.encoder, model.decoder
    (optimizer,) = model.make_optimizers().values()
    iteration = [0]

    def step() -> None:
        for group in optimizer.param_groups:  # naoto0804's adjust_learning_rate
            group["lr"] = 1e-4 / (1.0 + 5e-5 * iteration[0])
        with torch.no_grad():
            style_features = encoder(style)
            t = adaptive_instance_norm(encoder(content)["relu4_1"], style_features["relu4_1"])
        decoded = encoder(decoder(t))
        loss = F.mse_loss(decoded["relu4_1"], t)
        for layer in ("relu1_1", "relu2_1", "relu3_1", "relu4_1"):
            (mean_g, std_g), (mean_s, std_s) = (
                calc_mean_std(decoded[layer]),
                calc_mean_std(style_features[layer]),
            )
            loss = loss + 10.0 * (F.mse_loss(mean_g, mean_s) + F.mse_loss(std_g, std_s))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        iteration[0] += 1

    return step


class PeakMemory:
    """Memory the steps take above the built model: CUDA peak allocated, or (CPU, in a forked process of
    its own) peak resident memory. The CPU allocator keeps freed pages, so runs sharing a process would
    see each other's peaks: :func:`in_own_process` gives each run its own."""

    def __init__(self, device: torch.device) -> None:
        self.device = device

    def __enter__(self) -> PeakMemory:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
            torch.cuda.reset_peak_memory_stats(self.device)
            self.start = torch.cuda.memory_allocated(self.device) / 2**20
        else:
            with open("/proc/self/statm") as file:
                self.start = int(file.read().split()[1]) * resource.getpagesize() / 2**20
        return self

    def __exit__(self, *exc) -> None:
        if self.device.type == "cuda":
            self.peak = torch.cuda.max_memory_allocated(self.device) / 2**20
        else:
            self.peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB

    @property
    def mb(self) -> float:
        return max(0.0, self.peak - self.start)


def in_own_process(function: Callable[..., dict], *args) -> dict:
    """``function(*args)`` in a forked child on CPU (modules stay imported, memory peaks stay apart)."""
    if args[-1].type == "cuda" or not hasattr(os, "fork"):
        return function(*args)
    context = multiprocessing.get_context("fork")
    results = context.SimpleQueue()

    def child() -> None:
        try:
            results.put(function(*args))
        except BaseException:
            results.put({"error": traceback.format_exc()})

    process = context.Process(target=child)
    process.start()
    result = results.get()
    process.join()
    if "error" in result:
        raise RuntimeError(f"{function.__name__}{args[:2]} failed in its process:\n{result['error']}")
    return result


def time_plain(name: str, size: int, args, device: torch.device) -> dict:
    model, batch = build(name, size, device)
    model.train()
    step = plain_step_function(name, model, batch)
    stamps = []
    with PeakMemory(device) as memory:
        for _ in range(args.warmup + args.steps):
            step()
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            stamps.append(time.perf_counter())
    return summarise(name, stamps, args.warmup, memory.mb)


def time_lightning(name: str, size: int, args, device: torch.device) -> dict:
    import lightning.pytorch as pl
    from torch.utils.data import DataLoader

    model, batch = build(name, size, device)
    stamps: list[float] = []

    class Stamp(pl.Callback):
        def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            stamps.append(time.perf_counter())

    class InMemoryImages(pl.LightningDataModule):
        """The batch repeated; Gatys also reads its content and style images from here in setup()."""

        style_weights = [1.0]

        def content_image(self) -> torch.Tensor:
            return batch["content"][:1]

        def style_images(self) -> list[torch.Tensor]:
            return [batch["style"][:1]]

        def train_dataloader(self) -> DataLoader:
            return DataLoader([batch] * (args.warmup + args.steps), batch_size=None)

    # (Gatys writes its image into the trainer's root folder at fit end.)
    trainer = benchmark_trainer("gpu" if device.type == "cuda" else "cpu", [Stamp()])
    try:
        with PeakMemory(device) as memory:
            if name == "gatys":
                trainer.fit(model, datamodule=InMemoryImages())
            else:  # fast style keeps the style set above; AdaIN reads styles from the batch
                trainer.fit(model, train_dataloaders=InMemoryImages().train_dataloader())
    finally:
        shutil.rmtree(trainer.default_root_dir, ignore_errors=True)
    return summarise(name, stamps, args.warmup, memory.mb)


def summarise(name: str, stamps: list[float], warmup: int, memory_mb: float) -> dict:
    steps = [later - earlier for earlier, later in zip(stamps[warmup - 1 : -1], stamps[warmup:])]
    # The fastest step, timeit's convention: other processes on a shared machine only ever slow one down.
    seconds = min(steps)
    return {
        "seconds": seconds,
        "median_seconds": statistics.median(steps),
        "images_per_s": BATCH[name] / seconds,
        "train_mb": memory_mb,
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--models", nargs="+", default=list(BATCH), choices=list(BATCH))
    parser.add_argument("--sizes", nargs=2, type=int, default=[32, 64], help="two image sides (px)")
    parser.add_argument("--steps", type=int, default=4, help="timed steps per run")
    parser.add_argument("--warmup", type=int, default=1, help="untimed steps first (at least 1)")
    parser.add_argument("--rounds", type=int, default=5, help="alternating plain/Lightning process pairs")
    parser.add_argument(
        "--control", action="store_true", help="also time the plain loop against itself (the noise floor)"
    )
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    parser.add_argument("--json", default=None, help="also write the results to this file")
    args = parser.parse_args(argv)
    if args.warmup < 1 or args.steps < 1 or args.rounds < 1:
        parser.error("--warmup, --steps and --rounds must be at least 1")
    if args.threads:
        torch.set_num_threads(args.threads)
    import lightning.pytorch  # noqa: F401  (imported before the levels are set: its import sets them)

    for name in ("ganstyle.networks.vgg", "lightning.pytorch", "lightning.fabric"):  # warnings, banners, tips
        logging.getLogger(name).setLevel(logging.ERROR)
    device = torch.device(args.device)
    rows = []
    print(
        f"{'model':<15} {'size':>5} {'batch':>5} {'plain img/s':>12} {'lightning img/s':>16} {'ratio':>6} "
        f"{'plain MB':>9} {'lightning MB':>13}" + (f" {'control':>8}" if args.control else "")
    )
    for name in args.models:
        for size in args.sizes:
            # Alternating rounds, each a plain and a Lightning process back to back: the ratio is the
            # median of the rounds' ratios (the machine's drift cancels within a round), the
            # throughput and memory those of the best round.
            plain, framework, ratios, control = None, None, [], []
            runners = (("plain", time_plain), ("lightning", time_lightning))
            # --control: the plain loop timed against itself too, the ratio identical code gets here.
            runners += (("plain_again", time_plain),) if args.control else ()
            for round_index in range(args.rounds):
                timed = {}
                for runner, timer in runners if round_index % 2 == 0 else runners[::-1]:
                    torch.manual_seed(0)
                    timed[runner] = in_own_process(timer, name, size, args, device)
                ratios.append(timed["lightning"]["seconds"] / timed["plain"]["seconds"])
                if args.control:
                    control.append(timed["plain_again"]["seconds"] / timed["plain"]["seconds"])
                if plain is None or timed["plain"]["seconds"] < plain["seconds"]:
                    plain = timed["plain"]
                if framework is None or timed["lightning"]["seconds"] < framework["seconds"]:
                    framework = timed["lightning"]
            ratio = statistics.median(ratios)
            row = {"model": name, "size": size, "batch": BATCH[name], "ratio": ratio}
            if args.control:
                row["control_ratio"] = statistics.median(control)
            rows.append({**row, "plain": plain, "lightning": framework})
            print(
                f"{name:<15} {size:>5} {BATCH[name]:>5} {plain['images_per_s']:>12.2f} "
                f"{framework['images_per_s']:>16.2f} {ratio:>6.3f} {plain['train_mb']:>9.0f} {framework['train_mb']:>13.0f}"
                + (f" {row['control_ratio']:>8.3f}" if args.control else ""),
                flush=True,
            )
    over = [f"{row['model']} at {row['size']} px" for row in rows if row["ratio"] > 1.05]
    print("framework overhead under 5% everywhere" if not over else f"overhead above 5%: {', '.join(over)}")
    if args.json:
        with open(args.json, "w") as file:
            json.dump(
                {"device": str(device), "threads": torch.get_num_threads(), "results": rows}, file, indent=2
            )


if __name__ == "__main__":
    main()
