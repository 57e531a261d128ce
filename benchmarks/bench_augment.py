"""What augmenting the discriminators' inputs costs: a CycleGAN step with and without DiffAugment.

    python -m benchmarks.bench_augment                          # 256 px, reference networks, CPU
    python -m benchmarks.bench_augment --device cuda --steps 20

One step is what CycleGAN's training step computes (both generators' losses, both discriminators'
losses on real and pooled fakes, backward, Adam for each), written out in plain PyTorch on the
model's networks, timed alone and then with ``augment=diffaugment`` (color, translation, cutout on
every discriminator input: six batches a step). The ratio of the two is the claim; the operations
alone are timed too, on the same six batches.
"""

from __future__ import annotations

import argparse
import time

import torch

from ganstyle.models.cyclegan import CycleGAN
from ganstyle.utils.augmentation import augment

POLICIES = ("color", "translation", "cutout")


def build(size: int, device: torch.device) -> CycleGAN:
    network = {"_target_": "ganstyle.networks.define_generator", "netG": "resnet_9blocks", "ngf": 64}
    model = CycleGAN(
        generator=network,
        discriminator={"_target_": "ganstyle.networks.NLayerDiscriminator", "ndf": 64, "n_layers": 3},
        optimizer={"_target_": "torch.optim.Adam", "_partial_": True, "lr": 2e-4, "betas": [0.5, 0.999]},
        loss={"gan_mode": "lsgan", "cycle_weight": 10.0, "identity_weight": 0.5},
        pool_size=50,
    )
    return model.to(device).train()


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_steps(model: CycleGAN, batch: tuple[torch.Tensor, torch.Tensor], steps: int, device) -> float:
    """Seconds per CycleGAN step (after one warm-up step)."""
    opt_G, opt_D = model.make_optimizers().values()
    real_A, real_B = batch
    for step in range(steps + 1):
        if step == 1:
            sync(device)
            start = time.perf_counter()
        opt_G.zero_grad(set_to_none=True)
        terms, fake_A, fake_B = model.generator_terms(real_A, real_B)
        sum(terms.values()).backward()
        opt_G.step()
        opt_D.zero_grad(set_to_none=True)
        loss_D = model.discriminator_loss(
            model.D_A, real_A, model.pool_A.query(fake_A)
        ) + model.discriminator_loss(model.D_B, real_B, model.pool_B.query(fake_B))
        loss_D.backward()
        opt_D.step()
    sync(device)
    return (time.perf_counter() - start) / steps


def time_operations(batch: torch.Tensor, steps: int, device) -> float:
    """Seconds for the six augmentations of one step (two reals, two fakes, two generator-step fakes)."""
    augment(batch, POLICIES)
    sync(device)
    start = time.perf_counter()
    for _ in range(steps * 6):
        augment(batch, POLICIES)
    sync(device)
    return (time.perf_counter() - start) / steps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    device = torch.device(args.device)
    torch.manual_seed(0)
    batch = tuple(torch.rand(1, 3, args.size, args.size, device=device) * 2 - 1 for _ in range(2))
    plain = build(args.size, device)
    augmented = build(args.size, device)
    augmented.set_augmentation(policies=POLICIES)
    seconds_plain = time_steps(plain, batch, args.steps, device)
    seconds_augmented = time_steps(augmented, batch, args.steps, device)
    seconds_operations = time_operations(batch[0], args.steps, device)
    print(f"device {device}, {args.size} px, batch 1, reference networks, {args.steps} timed steps")
    print(
        f"CycleGAN step: {seconds_plain * 1000:.1f} ms; with DiffAugment: {seconds_augmented * 1000:.1f} ms"
    )
    print(f"ratio with / without: {seconds_augmented / seconds_plain:.3f}")
    print(
        f"the six augmentations alone: {seconds_operations * 1000:.2f} ms = "
        f"{100 * seconds_operations / seconds_plain:.2f}% of a step"
    )


if __name__ == "__main__":
    main()
