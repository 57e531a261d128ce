"""What the Lightning models cost over plain PyTorch: pix2pix, DCGAN and WGAN-GP training steps.

    python -m benchmarks.bench_models_pix2pix_dcgan                    # CPU defaults, about 3 minutes
    python -m benchmarks.bench_models_pix2pix_dcgan --timed 20 --rounds 3 --device cuda
    python -m benchmarks.bench_models_pix2pix_dcgan --variants pix2pix-64 wgangp-32 --threads 2
    python -m benchmarks.bench_models_pix2pix_dcgan --control   # + the plain loop against itself

For each model at two sizes, the same networks, losses and Adam settings train on one synthetic batch
repeated, once through ``Trainer.fit`` on the ganstyle LightningModule and once in a hand-written loop
(the reference code's algorithm: D step, then G step; for WGAN-GP n_critic critic steps per G step).
The two runners alternate for ``--rounds`` rounds on identical copies of the model.

Reported: images per second (real images consumed per batch / seconds per batch, from the fastest
whole n_critic cycle after the warm-up batches, best round), the Lightning/plain ratio of wall-clock
and of CPU time per batch (the framework's overhead: the training loop's hooks, optimiser toggling,
the NaN guard, logging on the steps the logger writes), as the median over rounds of each round's
ratio of fastest cycles, and the training memory: the peak during a run minus the memory held when it started (resident memory on
CPU, via Linux's resettable high-water mark; allocated memory on CUDA). Each variant runs in its own
process.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import gc
import json
import resource
import statistics
import subprocess
import sys
import time

from benchmarks.common import benchmark_trainer

ADAM = {"_target_": "torch.optim.Adam", "_partial_": True, "lr": 2.0e-4, "betas": [0.5, 0.999]}

# name -> (model class path, batch size, model kwargs). Small: the quick-start sizes; large: wider
# networks at twice the side (unet_128 is the reference's 128 px generator).
VARIANTS = {
    "pix2pix-64": ("pix2pix", 1, {"size": 64, "num_downs": 6, "ngf": 32, "ndf": 32}),
    "pix2pix-128": ("pix2pix", 1, {"size": 128, "num_downs": 7, "ngf": 64, "ndf": 64}),
    "dcgan-32": ("dcgan", 32, {"size": 32, "ngf": 32, "ndf": 32, "gan_mode": "vanilla"}),
    "dcgan-64": ("dcgan", 16, {"size": 64, "ngf": 64, "ndf": 64, "gan_mode": "vanilla"}),
    "wgangp-32": ("dcgan", 32, {"size": 32, "ngf": 32, "ndf": 32, "gan_mode": "wgangp"}),
    "wgangp-64": ("dcgan", 16, {"size": 64, "ngf": 64, "ndf": 64, "gan_mode": "wgangp"}),
}


def build_model(kind: str, spec: dict):
    if kind == "pix2pix":
        from ganstyle.models.pix2pix import Pix2Pix

        return Pix2Pix(
            generator={
                "_target_": "ganstyle.networks.UnetGenerator",
                "num_downs": spec["num_downs"],
                "ngf": spec["ngf"],
                "norm": "batch",
            },
            discriminator={
                "_target_": "ganstyle.networks.NLayerDiscriminator",
                "in_channels": 6,
                "ndf": spec["ndf"],
                "norm": "batch",
            },
            optimizer=ADAM,
            loss={"gan_mode": "vanilla", "l1_weight": 100.0},
        )
    from ganstyle.models.dcgan import DCGAN

    return DCGAN(
        generator={
            "_target_": "ganstyle.networks.DCGANGenerator",
            "ngf": spec["ngf"],
            "image_size": spec["size"],
        },
        discriminator={
            "_target_": "ganstyle.networks.DCGANDiscriminator",
            "ndf": spec["ndf"],
            "image_size": spec["size"],
        },
        optimizer=ADAM,
        loss={"gan_mode": spec["gan_mode"]},
    )


def make_batch(kind: str, batch_size: int, size: int, device):
    import torch

    generator = torch.Generator().manual_seed(0)
    images = torch.rand(2, batch_size, 3, size, size, generator=generator) * 2 - 1
    if kind == "pix2pix":
        return {"A": images[0].to(device), "B": images[1].to(device)}
    return {"image": images[0].to(device)}


def memory_mb(device, field: str = "VmRSS") -> float:
    """CUDA: allocated (or, for VmHWM, peak allocated) MB; CPU: the process's resident MB (or its peak)."""
    import torch

    if device.type == "cuda":
        allocated = torch.cuda.max_memory_allocated if field == "VmHWM" else torch.cuda.memory_allocated
        return allocated(device) / 2**20
    with open("/proc/self/status") as file:
        for line in file:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024  # kB
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # no procfs: lifetime peak


def reset_peak_memory(device) -> None:
    """Start a new peak: CUDA's counter, or Linux's resident high-water mark (clear_refs 5), after
    handing freed heap memory back (malloc_trim), so a run cannot reuse what an earlier one left."""
    import torch

    gc.collect()
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
        return
    with contextlib.suppress(OSError, AttributeError):  # glibc only
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    try:
        with open("/proc/self/clear_refs", "w") as file:
            file.write("5")
    except OSError:  # not Linux, or not allowed: the peak then covers the whole process
        pass


def now() -> tuple[float, float]:
    """(wall-clock, this process's CPU) seconds."""
    return time.perf_counter(), time.process_time()


def best_cycle(stamps: list[tuple[float, float]], warmup: int, cycle: int) -> tuple[float, float]:
    """Fastest (wall, CPU) seconds per batch over whole n_critic cycles after the warm-up: other
    processes' load only ever adds time, so the fastest cycle is the best estimate of the cost."""
    ends = stamps[warmup - 1 :: cycle]
    walls = [(b[0] - a[0]) / cycle for a, b in zip(ends, ends[1:])]
    cpus = [(b[1] - a[1]) / cycle for a, b in zip(ends, ends[1:])]
    return min(walls), min(cpus)


def plain_steps(model, batch: dict, steps: int, sync) -> list[float]:
    """The reference algorithm written out by hand over the model's networks and loss modules."""
    import torch

    G, D, adversarial = model.generator, model.discriminator, model.adversarial
    opt_G, opt_D = model.make_optimizers().values()
    loss = model.hparams.loss
    n_critic = getattr(model.hparams, "n_critic", 1) or 1
    stamps = []
    for step in range(steps):
        if "A" in batch:  # pix2pix
            real_A, real_B = batch["A"], batch["B"]
            fake_B = G(real_A)
            D.requires_grad_(True)
            opt_D.zero_grad(set_to_none=True)
            loss_D = 0.5 * (
                adversarial(D(torch.cat([real_A, real_B], 1)), True)
                + adversarial(D(torch.cat([real_A, fake_B.detach()], 1)), False)
            )
            loss_D.backward()
            opt_D.step()
            D.requires_grad_(False)
            opt_G.zero_grad(set_to_none=True)
            score = D(torch.cat([real_A, fake_B], 1))
            loss_G = adversarial(score, True, False) + loss["l1_weight"] * (fake_B - real_B).abs().mean()
            loss_G.backward()
            opt_G.step()
        else:  # DCGAN / WGAN-GP
            real = batch["image"]
            with torch.no_grad():
                fake = G(model.sample_noise(real.shape[0]))
            D.requires_grad_(True)
            opt_D.zero_grad(set_to_none=True)
            loss_D = model.critic_terms(real, fake)
            sum(loss_D.values()).backward()
            opt_D.step()
            if (step + 1) % n_critic == 0:
                D.requires_grad_(False)
                opt_G.zero_grad(set_to_none=True)
                adversarial(D(G(model.sample_noise(real.shape[0]))), True, False).backward()
                opt_G.step()
        sync()
        stamps.append(now())
    return stamps


def lightning_steps(model, batch: dict, steps: int, sync, accelerator: str) -> list[float]:
    import lightning.pytorch as pl
    from torch.utils.data import DataLoader

    stamps: list[tuple[float, float]] = []

    class Stamp(pl.Callback):
        def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
            sync()
            stamps.append(now())

    trainer = benchmark_trainer(accelerator, [Stamp()])
    trainer.fit(model, train_dataloaders=DataLoader([batch] * steps, batch_size=None))
    return stamps


def run_variant(variant: str, args) -> dict[str, dict[str, float]]:
    """Both runners on identical copies of one model, alternating for ``args.rounds`` rounds.

    Seconds per batch: the mean over the timed batches (a whole number of n_critic cycles), the best
    round kept, so a burst of load from other processes does not count against one runner alone.
    Memory: the peak over a run minus the memory held when it started.
    """
    import copy

    import torch

    import ganstyle  # noqa: F401  (before lightning: makes torchvision importable on CPU torch)

    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    kind, batch_size, spec = VARIANTS[variant]
    torch.manual_seed(0)
    initial = build_model(kind, spec).to(device)
    batch = make_batch(kind, batch_size, spec["size"], device)

    def sync() -> None:
        if device.type == "cuda":
            torch.cuda.synchronize(device)

    cycle = getattr(initial.hparams, "n_critic", None) or 1
    if args.timed % cycle:
        raise SystemExit(f"--timed={args.timed} must be a multiple of {variant}'s n_critic={cycle}.")
    # --control adds a second plain run per round: the same code timed against itself gives the
    # ratio this machine reports for no difference at all (the noise floor of the overhead column).
    runners = ("plain", "lightning", "plain_again") if args.control else ("plain", "lightning")
    results = {
        runner: {"seconds": float("inf"), "cpu_seconds": float("inf"), "train_mb": 0.0} for runner in runners
    }
    per_round: list[dict[str, tuple[float, float]]] = []
    for round_index in range(args.rounds):
        order = runners if round_index % 2 == 0 else runners[::-1]
        per_round.append({})
        for runner in order:  # alternating, so neither always runs first (cold caches, load bursts)
            result = results[runner]
            model = copy.deepcopy(initial).train()
            reset_peak_memory(device)
            before = memory_mb(device)
            if runner in ("plain", "plain_again"):
                stamps = plain_steps(model, batch, args.warmup + args.timed, sync)
            else:
                accelerator = "gpu" if device.type == "cuda" else "cpu"
                stamps = lightning_steps(model, batch, args.warmup + args.timed, sync, accelerator)
            wall, cpu = best_cycle(stamps, args.warmup, cycle)
            per_round[-1][runner] = (wall, cpu)
            result["seconds"], result["cpu_seconds"] = (
                min(result["seconds"], wall),
                min(result["cpu_seconds"], cpu),
            )
            result["train_mb"] = max(result["train_mb"], memory_mb(device, "VmHWM") - before)
            del model
    for result in results.values():
        result["images_per_s"] = batch_size / result["seconds"]
    # The overhead: the median over rounds of each round's Lightning / plain ratio. The two runs of a
    # round are back to back, so the machine's drift (seen up to 20% between rounds on a shared VM)
    # cancels in the ratio, and the median ignores a round that a burst of load hit.
    for index, name in ((0, "ratio_wall"), (1, "ratio_cpu")):
        for runner in runners[1:]:
            ratios = [pair[runner][index] / pair["plain"][index] for pair in per_round]
            results[runner][name] = statistics.median(ratios)
    return results


def measure(variant: str, args) -> dict[str, dict[str, float]]:
    """One process per variant: its memory and timings are not shared with the other variants."""
    command = [sys.executable, "-m", "benchmarks.bench_models_pix2pix_dcgan", "--child", variant]
    command += ["--timed", str(args.timed), "--warmup", str(args.warmup), "--rounds", str(args.rounds)]
    command += ["--device", args.device] + (["--threads", str(args.threads)] if args.threads else [])
    command += ["--control"] if args.control else []
    output = subprocess.run(command, check=True, capture_output=True, text=True).stdout
    return json.loads(output.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--variants", nargs="+", choices=list(VARIANTS), default=list(VARIANTS))
    parser.add_argument(
        "--timed", type=int, default=5, help="timed batches per run (a multiple of n_critic=5)"
    )
    parser.add_argument("--warmup", type=int, default=2, help="batches before the timing starts")
    parser.add_argument("--rounds", type=int, default=6, help="alternating plain/Lightning runs")
    parser.add_argument("--device", default="cpu", help="cpu or cuda")
    parser.add_argument(
        "--control", action="store_true", help="also time the plain loop against itself (the noise floor)"
    )
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    parser.add_argument("--child", metavar="VARIANT", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.warmup < 1 or args.timed < 1 or args.rounds < 1:
        parser.error("--warmup, --timed and --rounds must be at least 1.")
    if args.child:
        print(json.dumps(run_variant(args.child, args)))
        return

    print(
        f"\nTraining steps on {args.device}: {args.timed} timed batches after {args.warmup} warm-up, "
        f"{args.rounds} alternating rounds (img/s: the best round; ratios: the median of the rounds' ratios)\n"
    )
    print(
        "| variant | batch | Lightning img/s | plain img/s | Lightning / plain (wall) | (CPU time) "
        "| train MB (Lightning) | train MB (plain) |" + (" plain / plain (wall) |" if args.control else "")
    )
    print(
        "| --- | --- | --- | --- | --- | --- | --- | --- |" + (" --- |" if args.control else ""), flush=True
    )
    for variant in args.variants:
        result = measure(variant, args)
        plain, framework = result["plain"], result["lightning"]
        print(
            f"| {variant} | {VARIANTS[variant][1]} | {framework['images_per_s']:.1f} "
            f"| {plain['images_per_s']:.1f} | {framework['ratio_wall']:.3f} "
            f"| {framework['ratio_cpu']:.3f} "
            f"| {framework['train_mb']:.0f} | {plain['train_mb']:.0f} |"
            + (f" {result['plain_again']['ratio_wall']:.3f} |" if args.control else ""),
            flush=True,
        )
    print(
        "\nTarget: Lightning / plain below 1.05 (under 5% framework overhead). On a machine shared with "
        "other jobs, trust the CPU-time ratio: waiting for a core adds wall time, not CPU time."
    )


if __name__ == "__main__":
    main()
