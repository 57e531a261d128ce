"""What scaling out buys: CycleGAN training throughput on 1 vs 2 processes, and precision/layout/compile
variants of the CycleGAN step, each as a ratio against a plain-PyTorch loop over the same networks.

    python -m benchmarks.bench_scaling                   # CPU: 1 vs 2 processes (gloo), quick-start nets
    python -m benchmarks.bench_scaling --matrix          # CUDA: 256 px reference nets, batch 1 and 8,
                                                         #   fp32 / bf16-mixed / + channels_last / + compile
                                                         #   / + fused Adam (--variants lists them)
    python -m benchmarks.bench_scaling --matrix --device cpu --size 32 --ngf 8 --blocks 1 --batches 1 \
        --variants fp32 bf16           # the matrix code path on a CPU, tiny (a check, not a measurement)

Both parts time the same thing two ways in the same run: Lightning (the CycleGAN LightningModule under a
Trainer, manual optimisation, as `python train.py` runs it) and a plain loop (the same networks, losses,
image pools, Adam and autocast written out by hand, and DDP with find_unused_parameters for 2 processes).
The ratio Lightning / plain is the framework's cost. Images come from memory, so data loading is not
measured. Timings start after `--warmup` steps (the first steps pay allocator and compile set-up).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import tempfile
import time
from pathlib import Path

import ganstyle  # noqa: F401  (first: makes torchvision importable before lightning)

# isort: split
import lightning.pytorch as pl
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from lightning.pytorch.loggers import CSVLogger
from torch import nn

from benchmarks.common import LOG_EVERY_N_STEPS
from ganstyle.losses.adversarial import AdversarialLoss
from ganstyle.losses.reconstruction import ReconstructionLoss
from ganstyle.utils.image_pool import ImagePool

VARIANTS = {  # name: (precision, channels_last, compile, fused Adam)
    "fp32": ("32-true", False, False, False),
    "bf16": ("bf16-mixed", False, False, False),
    "bf16+cl": ("bf16-mixed", True, False, False),
    "bf16+cl+compile": ("bf16-mixed", True, True, False),
    "fp32+fused": ("32-true", False, False, True),
    "bf16+fused": ("bf16-mixed", False, False, True),
    "bf16+fused+compile": ("bf16-mixed", False, True, True),
}


def network_configs(args) -> tuple[dict, dict]:
    generator = {"_target_": "ganstyle.networks.ResnetGenerator", "ngf": args.ngf, "n_blocks": args.blocks}
    discriminator = {"_target_": "ganstyle.networks.NLayerDiscriminator", "ndf": args.ndf, "n_layers": 3}
    return generator, discriminator


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def random_images(
    args, device: torch.device, channels_last: bool = False
) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(0)
    images = [torch.rand(args.batch, 3, args.size, args.size, generator=generator) * 2 - 1 for _ in range(2)]
    format = torch.channels_last if channels_last else torch.contiguous_format
    return tuple(image.to(device).contiguous(memory_format=format) for image in images)


# --- the plain-PyTorch reference -------------------------------------------------------------------
class CycleGANNetworks(nn.Module):
    """G_AB, G_BA, D_A, D_B in one module whose forward computes one phase's loss, as CycleGAN does.

    One module means one DDP wrapper over all four networks (as Lightning wraps the LightningModule);
    each phase is one DDP forward and one backward, with the other phase's networks frozen, so DDP
    needs find_unused_parameters exactly as under Lightning.
    """

    def __init__(self, args) -> None:
        super().__init__()
        import hydra

        generator, discriminator = network_configs(args)
        self.G_AB, self.G_BA = hydra.utils.instantiate(generator), hydra.utils.instantiate(generator)
        self.D_A, self.D_B = hydra.utils.instantiate(discriminator), hydra.utils.instantiate(discriminator)
        self.adversarial, self.l1 = AdversarialLoss("lsgan"), ReconstructionLoss("l1")

    def forward(self, phase: str, real_A: torch.Tensor, real_B: torch.Tensor, fake_A=None, fake_B=None):
        if phase == "generator":  # lambda 10, identity 0.5 x 10: the reference weights
            fake_B, fake_A = self.G_AB(real_A), self.G_BA(real_B)
            loss = (
                self.adversarial(self.D_B(fake_B), True, False)
                + self.adversarial(self.D_A(fake_A), True, False)
                + 10.0 * (self.l1(self.G_BA(fake_B), real_A) + self.l1(self.G_AB(fake_A), real_B))
                + 5.0 * (self.l1(self.G_BA(real_A), real_A) + self.l1(self.G_AB(real_B), real_B))
            )
            return loss, fake_A.detach(), fake_B.detach()
        return 0.5 * (
            self.adversarial(self.D_A(real_A), True) + self.adversarial(self.D_A(fake_A), False)
        ) + (0.5 * (self.adversarial(self.D_B(real_B), True) + self.adversarial(self.D_B(fake_B), False)))


def plain_step_function(networks: nn.Module, device: torch.device, precision: str, fused: bool = False):
    """One CycleGAN step in training_step's order: generators, then discriminators on pooled fakes."""
    nets = networks.module if isinstance(networks, nn.parallel.DistributedDataParallel) else networks
    generators = list(nets.G_AB.parameters()) + list(nets.G_BA.parameters())
    discriminators = list(nets.D_A.parameters()) + list(nets.D_B.parameters())
    opt_G = torch.optim.Adam(generators, lr=2e-4, betas=(0.5, 0.999), fused=fused)
    opt_D = torch.optim.Adam(discriminators, lr=2e-4, betas=(0.5, 0.999), fused=fused)
    pool_A, pool_B = ImagePool(50), ImagePool(50)

    def autocast():
        if precision == "bf16-mixed":
            return torch.autocast(device.type, dtype=torch.bfloat16)
        return contextlib.nullcontext()

    def train_phase(frozen: list[nn.Parameter], optimizer: torch.optim.Optimizer, *inputs):
        for parameter in frozen:
            parameter.requires_grad_(False)
        with autocast():
            output = networks(*inputs)
        loss = output[0] if isinstance(output, tuple) else output
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        for parameter in frozen:
            parameter.requires_grad_(True)
        return output

    def step(real_A: torch.Tensor, real_B: torch.Tensor) -> None:
        _, fake_A, fake_B = train_phase(discriminators, opt_G, "generator", real_A, real_B)
        train_phase(
            generators, opt_D, "discriminator", real_A, real_B, pool_A.query(fake_A), pool_B.query(fake_B)
        )

    return step


def time_plain(
    args, device: torch.device, precision: str, channels_last: bool, compile: bool, fused: bool = False
) -> float:
    """Seconds per step of the plain loop on this process (DDP when a process group exists)."""
    torch.manual_seed(0)
    networks = CycleGANNetworks(args).to(device)
    if channels_last:
        networks.to(memory_format=torch.channels_last)
    if compile:
        for network in (networks.G_AB, networks.G_BA, networks.D_A, networks.D_B):
            network.compile()
    if dist.is_initialized():
        networks = nn.parallel.DistributedDataParallel(networks, find_unused_parameters=True)
    step = plain_step_function(networks, device, precision, fused)
    real_A, real_B = random_images(args, device, channels_last)
    for _ in range(args.warmup):
        step(real_A, real_B)
    sync(device)
    start = time.perf_counter()
    for _ in range(args.steps):
        step(real_A, real_B)
    sync(device)
    return (time.perf_counter() - start) / args.steps


# --- Lightning --------------------------------------------------------------------------------------
class StepTimer(pl.Callback):
    """Times training batches after `warmup` and writes the mean seconds per batch (rank 0) to a file.

    A file, because under ddp_spawn the timing happens in a child process.
    """

    def __init__(self, warmup: int, result_path: str) -> None:
        self.warmup, self.result_path = warmup, result_path
        self.durations: list[float] = []
        self._start = 0.0

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        sync(pl_module.device)
        self._start = time.perf_counter()

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        sync(pl_module.device)
        if batch_idx >= self.warmup:
            self.durations.append(time.perf_counter() - self._start)

    def on_train_end(self, trainer, pl_module) -> None:
        if trainer.global_rank == 0:
            Path(self.result_path).write_text(json.dumps(sum(self.durations) / len(self.durations)))


def time_lightning(
    args,
    device: torch.device,
    precision: str,
    channels_last: bool,
    compile: bool,
    processes: int = 1,
    fused: bool = False,
) -> float:
    """Seconds per batch of the CycleGAN LightningModule under a Trainer (ddp_spawn for processes > 1)."""
    from ganstyle.models.cyclegan import CycleGAN

    torch.manual_seed(0)
    generator, discriminator = network_configs(args)
    model = CycleGAN(
        generator=generator,
        discriminator=discriminator,
        optimizer={"_target_": "torch.optim.Adam", "_partial_": True, "lr": 2e-4, "betas": [0.5, 0.999]},
        loss={"gan_mode": "lsgan", "cycle_weight": 10.0, "identity_weight": 0.5},
        pool_size=50,
    )
    # fused forced either way, so a variant means the same optimiser on every device.
    model.set_performance_options(channels_last=channels_last, compile=compile, fused_optimizers=fused)
    real_A, real_B = random_images(args, torch.device("cpu"))
    # Each process gets warmup + steps batches (the distributed sampler splits the list between them).
    batches = [{"A": real_A, "B": real_B}] * ((args.warmup + args.steps) * processes)
    loader = torch.utils.data.DataLoader(batches, batch_size=None)
    with tempfile.TemporaryDirectory() as folder:
        result = os.path.join(folder, "seconds.json")
        trainer = pl.Trainer(
            accelerator="gpu" if device.type == "cuda" else device.type,
            devices=processes,
            strategy="ddp_spawn" if processes > 1 else "auto",
            precision=precision,
            max_epochs=1,
            limit_val_batches=0,
            num_sanity_val_steps=0,
            logger=CSVLogger(folder),  # as in a real run: the models log only on the steps it writes
            log_every_n_steps=LOG_EVERY_N_STEPS,
            enable_checkpointing=False,
            enable_progress_bar=False,
            enable_model_summary=False,
            default_root_dir=folder,
            callbacks=[StepTimer(args.warmup, result)],
        )
        trainer.fit(model, train_dataloaders=loader)
        return json.loads(Path(result).read_text())


# --- CPU: 1 vs 2 processes ---------------------------------------------------------------------------
def threads_per_process(args, world: int) -> int:
    """--threads, else the cores shared out between the processes (what Lightning does for CPU DDP)."""
    return args.threads or max(1, (os.cpu_count() or 1) // world)


def _plain_worker(rank: int, world: int, args, port: int, result_path: str) -> None:
    torch.set_num_threads(threads_per_process(args, world))
    if world > 1:
        dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=world)
    seconds = time_plain(args, torch.device("cpu"), "32-true", False, False)
    if rank == 0:
        Path(result_path).write_text(json.dumps(seconds))
    if world > 1:
        dist.destroy_process_group()


def time_plain_processes(args, world: int) -> float:
    with tempfile.TemporaryDirectory() as folder:
        result = os.path.join(folder, "seconds.json")
        port = 29500 + os.getpid() % 1000 + world
        mp.spawn(_plain_worker, args=(world, args, port, result), nprocs=world, join=True)
        return json.loads(Path(result).read_text())


def cpu_scaling(args) -> None:
    print(
        f"\nCycleGAN step on CPU ({os.cpu_count()} cores): {args.size} px, ResNet ngf {args.ngf} x "
        f"{args.blocks} blocks, PatchGAN ndf {args.ndf}, batch {args.batch} per process, Adam, fp32\n"
    )
    print("| processes | threads each | plain images/s | Lightning images/s | Lightning / plain time |")
    print("| --- | --- | --- | --- | --- |")
    rates = {}
    for world in (1, 2):
        threads = threads_per_process(args, world)
        plain = time_plain_processes(args, world)
        # Spawned ranks read OMP_NUM_THREADS at start-up; this process is the only rank when world is 1.
        previous = torch.get_num_threads(), os.environ.get("OMP_NUM_THREADS")
        os.environ["OMP_NUM_THREADS"] = str(threads)
        torch.set_num_threads(threads)
        try:
            lightning = time_lightning(args, torch.device("cpu"), "32-true", False, False, processes=world)
        finally:
            torch.set_num_threads(previous[0])
            if previous[1] is None:
                os.environ.pop("OMP_NUM_THREADS")
            else:
                os.environ["OMP_NUM_THREADS"] = previous[1]
        rates[world] = (world * args.batch / plain, world * args.batch / lightning)
        print(
            f"| {world} | {threads} | {rates[world][0]:.2f} | {rates[world][1]:.2f} | {lightning / plain:.2f}x |"
        )
    print(
        f"\n2 vs 1 process throughput: plain {rates[2][0] / rates[1][0]:.2f}x, "
        f"Lightning {rates[2][1] / rates[1][1]:.2f}x"
    )


# --- one device: precision, layout, compile -------------------------------------------------------
def variant_matrix(args) -> None:
    device = torch.device(args.device)
    name = (
        torch.cuda.get_device_name(device)
        if device.type == "cuda"
        else f"CPU, {torch.get_num_threads()} threads"
    )
    if not args.rows_only:
        print(
            f"\nCycleGAN step on {name}: {args.size} px, ResNet ngf {args.ngf} x {args.blocks} blocks, "
            f"PatchGAN ndf {args.ndf}, Adam; torch {torch.__version__}\n"
        )
        print(
            "| batch | variant | plain s/step | Lightning s/step | Lightning / plain | images/s (Lightning) "
            f"| vs {args.baseline or args.variants[0]} |"
        )
        print("| --- | --- | --- | --- | --- | --- | --- |", flush=True)
    for batch in args.batches:
        args.batch = batch
        baseline = None
        if args.baseline and args.baseline != args.variants[0]:  # the "vs" column's reference, unprinted
            precision, channels_last, compile, fused = VARIANTS[args.baseline]
            baseline = time_lightning(args, device, precision, channels_last, compile, fused=fused)
        for variant in args.variants:
            precision, channels_last, compile, fused = VARIANTS[variant]
            plain = time_plain(args, device, precision, channels_last, compile, fused)
            lightning = time_lightning(args, device, precision, channels_last, compile, fused=fused)
            baseline = baseline or lightning
            print(
                f"| {batch} | {variant} | {plain:.4f} | {lightning:.4f} | {lightning / plain:.2f}x | "
                f"{batch / lightning:.1f} | {baseline / lightning:.2f}x |",
                flush=True,  # a caller with a time limit keeps the rows measured so far
            )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--matrix", action="store_true", help="the precision/layout/compile matrix on one device"
    )
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--size", type=int, default=None, help="default: 256 (matrix), 64 (CPU scaling)")
    parser.add_argument("--ngf", type=int, default=None, help="default: 64 (matrix), 32 (CPU scaling)")
    parser.add_argument("--blocks", type=int, default=None, help="default: 9 (matrix), 6 (CPU scaling)")
    parser.add_argument("--ndf", type=int, default=None, help="default: 64 (matrix), 32 (CPU scaling)")
    parser.add_argument("--batch", type=int, default=1, help="CPU scaling: images per process")
    parser.add_argument(
        "--threads",
        type=int,
        default=None,
        help="CPU scaling: threads per process (default: cores / processes)",
    )
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 8], help="matrix: batch sizes")
    parser.add_argument("--variants", nargs="+", choices=list(VARIANTS), default=list(VARIANTS))
    parser.add_argument(
        "--rows-only",
        action="store_true",
        help="matrix: print only table rows (benchmarks/gpu_check.sh joins several runs into one table)",
    )
    parser.add_argument(
        "--baseline",
        choices=list(VARIANTS),
        default=None,
        help="matrix: the variant the last column compares with (default: the first one listed)",
    )
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=3)
    args = parser.parse_args(argv)
    reference = {"size": 256, "ngf": 64, "blocks": 9, "ndf": 64}
    quickstart = {"size": 64, "ngf": 32, "blocks": 6, "ndf": 32}
    for key, value in (reference if args.matrix else quickstart).items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    if args.matrix:
        if args.device.startswith("cuda") and not torch.cuda.is_available():
            parser.error("--matrix runs on CUDA by default and no GPU is visible; add --device cpu to try it")
        variant_matrix(args)
    else:
        cpu_scaling(args)


if __name__ == "__main__":
    main()
