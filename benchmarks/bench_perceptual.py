"""What perceptual losses and FID cost: generator-step time with and without VGG terms, FID per 100 images.

    python -m benchmarks.bench_perceptual                       # CPU defaults: 128 px, ngf 32, 6 blocks
    python -m benchmarks.bench_perceptual --size 256 --ngf 64 --blocks 9 --device cuda

The generator step is half a CycleGAN generator update (G_AB, G_BA for the cycle, D_B for the adversarial
term, Adam), the cost model of a CycleGAN step with an extra perceptual term. VGG and Inception use random
weights (speed does not depend on the values), so no weights file is needed.
"""

from __future__ import annotations

import argparse
import logging
import time

import torch
from torch import nn

from ganstyle.losses import AdversarialLoss, PerceptualCriterion, ReconstructionLoss
from ganstyle.networks.vgg import DEFAULT_CONTENT_LAYERS, DEFAULT_STYLE_LAYERS, VGGFeatures


def build_networks(args) -> tuple[nn.Module, nn.Module, nn.Module]:
    try:
        from ganstyle.networks import NLayerDiscriminator, ResnetGenerator

        return (
            ResnetGenerator(ngf=args.ngf, n_blocks=args.blocks),
            ResnetGenerator(ngf=args.ngf, n_blocks=args.blocks),
            NLayerDiscriminator(ndf=64, n_layers=3),
        )
    except ImportError:  # a stand-in of similar shape when the networks package is not there

        def tiny_generator():
            return nn.Sequential(
                nn.Conv2d(3, args.ngf, 7, padding=3),
                nn.ReLU(),
                nn.Conv2d(args.ngf, 3, 7, padding=3),
                nn.Tanh(),
            )

        discriminator = nn.Sequential(nn.Conv2d(3, 64, 4, 2, 1), nn.LeakyReLU(0.2), nn.Conv2d(64, 1, 4, 1, 1))
        return tiny_generator(), tiny_generator(), discriminator


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_generator_steps(args, device, criterion: PerceptualCriterion | None, pass_style: bool) -> float:
    torch.manual_seed(0)
    g_ab, g_ba, d_b = (net.to(device) for net in build_networks(args))
    d_b.requires_grad_(False)  # the generator step does not update D
    optimizer = torch.optim.Adam(
        list(g_ab.parameters()) + list(g_ba.parameters()), lr=2e-4, betas=(0.5, 0.999)
    )
    adversarial, cycle = AdversarialLoss("lsgan"), ReconstructionLoss("l1")
    real_a = torch.rand(args.batch, 3, args.size, args.size, device=device) * 2 - 1
    style = torch.rand(1, 3, args.size, args.size, device=device) * 2 - 1
    if criterion is not None:
        criterion.to(device)
        criterion.set_style(None if pass_style else style)

    def step():
        optimizer.zero_grad(set_to_none=True)
        fake_b = g_ab(real_a)
        loss = adversarial(d_b(fake_b), True, for_discriminator=False) + 10.0 * cycle(g_ba(fake_b), real_a)
        if criterion is not None:
            terms = criterion(fake_b, content=real_a, style=style if pass_style else None)
            loss = loss + sum(terms.values())
        loss.backward()
        optimizer.step()

    for _ in range(args.warmup):
        step()
    sync(device)
    start = time.perf_counter()
    for _ in range(args.steps):
        step()
    sync(device)
    return (time.perf_counter() - start) / args.steps


def time_fid(args, device) -> tuple[float, float, float]:
    from ganstyle.metrics.fid import DistributionMetrics

    metrics = DistributionMetrics(
        weights="random", feature=2048, kid=True, kid_subset_size=args.fid_images
    ).to(device)
    images = torch.rand(args.fid_images, 3, args.size, args.size, device=device) * 2 - 1
    metrics.update(images[: args.fid_batch], real=True)  # warm-up
    metrics.reset(include_real=True)
    sync(device)
    start = time.perf_counter()
    for chunk in images.split(args.fid_batch):
        metrics.update(chunk, real=True)
    sync(device)
    features_time = time.perf_counter() - start
    for chunk in images.flip(0).split(args.fid_batch):
        metrics.update(chunk, real=False)
    start = time.perf_counter()
    metrics.fid.compute()
    fid_compute = time.perf_counter() - start
    start = time.perf_counter()
    metrics.kid.compute()
    kid_compute = time.perf_counter() - start
    return features_time * 100 / args.fid_images, fid_compute, kid_compute


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--ngf", type=int, default=32)
    parser.add_argument("--blocks", type=int, default=6)
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--arch", choices=("vgg16", "vgg19"), default="vgg19")
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument(
        "--rounds", type=int, default=2, help="time every variant this often, keep the fastest"
    )
    parser.add_argument("--fid-images", type=int, default=100)
    parser.add_argument("--fid-batch", type=int, default=25)
    parser.add_argument("--skip-fid", action="store_true")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.ERROR)  # silence the random-weights warnings: timing only
    device = torch.device(args.device)

    content_layers, style_layers = (
        list(DEFAULT_CONTENT_LAYERS[args.arch]),
        list(DEFAULT_STYLE_LAYERS[args.arch]),
    )
    vgg = VGGFeatures(args.arch, content_layers + style_layers, weights="random")
    variants = [
        ("no perceptual terms", None, False),
        (
            f"+ content ({', '.join(content_layers)})",
            PerceptualCriterion(vgg, content_layers),
            False,
        ),
        (
            "+ content + style (cached style Grams)",
            PerceptualCriterion(vgg, content_layers, style_layers),
            False,
        ),
        (
            "+ content + style (style image each step)",
            PerceptualCriterion(vgg, content_layers, style_layers),
            True,
        ),
    ]
    threads = torch.get_num_threads()
    print(
        f"\nGenerator step: {args.size} px, batch {args.batch}, ResNet ngf {args.ngf} x {args.blocks} blocks, "
        f"{args.arch}, device {device} ({threads} CPU threads)\n"
    )
    print("| variant | s / step | ratio |")
    print("| --- | --- | --- |")
    # Rounds over all variants, fastest kept: the first calls of each layer shape pay one-off kernel set-up.
    best = [float("inf")] * len(variants)
    for _ in range(args.rounds):
        for index, (_name, criterion, pass_style) in enumerate(variants):
            best[index] = min(best[index], time_generator_steps(args, device, criterion, pass_style))
    for (name, _criterion, _pass_style), seconds in zip(variants, best):
        print(f"| {name} | {seconds:.3f} | {seconds / best[0]:.2f}x |")

    if not args.skip_fid:
        per_100, fid_compute, kid_compute = time_fid(args, device)
        print(
            f"\nFID Inception (2048-d, random weights), {args.size} px inputs resized to 299, batch {args.fid_batch}\n"
        )
        print("| part | seconds |")
        print("| --- | --- |")
        print(f"| feature pass per 100 images | {per_100:.2f} |")
        print(f"| FID from statistics (2048x2048 matrix square root) | {fid_compute:.2f} |")
        print(f"| KID ({args.fid_images}-image subsets x 100) | {kid_compute:.2f} |")


if __name__ == "__main__":
    main()
