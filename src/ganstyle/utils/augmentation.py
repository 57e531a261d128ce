"""Differentiable augmentation of what a discriminator sees: DiffAugment and ADA, for few images.

With few training images a discriminator memorises them, its verdict stops carrying information and
the generator collapses or copies. DiffAugment (Zhao et al. 2020) augments every image a
discriminator sees, real and generated alike, with differentiable operations, so the generator's
gradient passes through them; ADA (Karras et al. 2020) applies the same kind of operations with a
probability p that adapts to how much the discriminator overfits. ``augment=diffaugment`` /
``augment=ada`` turn them on for every adversarial model: :meth:`ImageModel.discriminate
<ganstyle.models.base.ImageModel.discriminate>` applies them to every discriminator input.

Every operation draws its random values per sample, on the batch's device, and makes no host
synchronisation. Images are in [-1, 1] with channels in groups of 3 (an RGB image, or pix2pix's
6-channel (input, output) pair: each group gets the same colour change, the whole tensor one geometric
transform, so a pair stays aligned).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F

POLICIES = ("color", "translation", "cutout")


def _per_sample(images: torch.Tensor, low: float, high: float) -> torch.Tensor:
    """U(low, high), one value per sample, shaped to broadcast over (C, H, W)."""
    draw = torch.rand(images.shape[0], 1, 1, 1, device=images.device, dtype=images.dtype)
    return low + (high - low) * draw


def _rgb_groups(images: torch.Tensor) -> torch.Tensor:
    """(N, C, H, W) as (N, C/3, 3, H, W): the colour operations act on each RGB image of a pair."""
    if images.shape[1] % 3:
        raise ValueError(
            f"colour augmentation needs RGB images (channels a multiple of 3), got {images.shape[1]}"
        )
    return images.reshape(images.shape[0], images.shape[1] // 3, 3, *images.shape[2:])


def brightness(images: torch.Tensor) -> torch.Tensor:
    """x + b, b ~ U(-0.5, 0.5) per sample (DiffAugment's rand_brightness; its images are in [-1, 1])."""
    return images + _per_sample(images, -0.5, 0.5)


def saturation(images: torch.Tensor) -> torch.Tensor:
    """mean_c(x) + s * (x - mean_c(x)), s ~ U(0, 2) per sample; mean over each RGB image's channels."""
    groups = _rgb_groups(images)
    grey = groups.mean(dim=2, keepdim=True)
    factor = _per_sample(images, 0.0, 2.0).unsqueeze(1)
    return (grey + factor * (groups - grey)).reshape(images.shape)


def contrast(images: torch.Tensor) -> torch.Tensor:
    """mean(x) + c * (x - mean(x)), c ~ U(0.5, 1.5) per sample; mean over each RGB image's pixels."""
    groups = _rgb_groups(images)
    mean = groups.mean(dim=(2, 3, 4), keepdim=True)
    factor = _per_sample(images, 0.5, 1.5).unsqueeze(1)
    return (mean + factor * (groups - mean)).reshape(images.shape)


def translation(images: torch.Tensor, ratio: float = 0.125) -> torch.Tensor:
    """Shift by (dy, dx), each an integer in [-ratio * side, ratio * side] (1/8 of the side) per
    sample, filling with zeros (DiffAugment's rand_translation). Differentiable: a gather of pixels."""
    n, _, height, width = images.shape
    shift_y, shift_x = int(height * ratio + 0.5), int(width * ratio + 0.5)
    dy = torch.randint(-shift_y, shift_y + 1, (n, 1, 1), device=images.device)
    dx = torch.randint(-shift_x, shift_x + 1, (n, 1, 1), device=images.device)
    rows = torch.arange(height, device=images.device).view(1, height, 1) - dy  # source row of each pixel
    cols = torch.arange(width, device=images.device).view(1, 1, width) - dx
    inside = ((rows >= 0) & (rows < height) & (cols >= 0) & (cols < width)).unsqueeze(1)
    padded = F.pad(images, (1, 1, 1, 1))  # index 0 and side + 1 hold zeros
    rows, cols = (rows + 1).clamp(0, height + 1), (cols + 1).clamp(0, width + 1)
    batch = torch.arange(n, device=images.device).view(n, 1, 1)
    shifted = padded.permute(0, 2, 3, 1)[batch, rows, cols].permute(0, 3, 1, 2)
    return shifted * inside


def cutout(images: torch.Tensor, ratio: float = 0.5) -> torch.Tensor:
    """Zero a square of ratio * side (half the side) at a random centre per sample, clipped at the
    borders (DiffAugment's rand_cutout)."""
    n, _, height, width = images.shape
    size_y, size_x = int(height * ratio + 0.5), int(width * ratio + 0.5)
    centre_y = torch.randint(0, height + (1 - size_y % 2), (n, 1, 1), device=images.device)
    centre_x = torch.randint(0, width + (1 - size_x % 2), (n, 1, 1), device=images.device)
    rows = torch.arange(height, device=images.device).view(1, height, 1)
    cols = torch.arange(width, device=images.device).view(1, 1, width)
    top, left = centre_y - size_y // 2, centre_x - size_x // 2
    hole = (rows >= top) & (rows < top + size_y) & (cols >= left) & (cols < left + size_x)
    return images * (~hole).unsqueeze(1).to(images.dtype)


OPERATIONS = {
    "color": (brightness, saturation, contrast),
    "translation": (translation,),
    "cutout": (cutout,),
}


def check_policies(policies: Sequence[str]) -> tuple[str, ...]:
    unknown = [name for name in policies if name not in POLICIES]
    if unknown:
        raise ValueError(
            f"augment.policies has {', '.join(map(repr, unknown))}: the policies are {', '.join(POLICIES)} "
            "(DiffAugment's), e.g. augment.policies=[color,translation,cutout]."
        )
    return tuple(policies)


def augment(
    images: torch.Tensor, policies: Sequence[str], probability: torch.Tensor | float = 1.0
) -> torch.Tensor:
    """``images`` through each operation of ``policies`` in order (DiffAugment's color, translation,
    cutout). With ``probability`` < 1 (ADA), each operation changes a sample with that probability
    and leaves it as it was otherwise; the choice is a per-sample mask, so nothing waits on the host."""
    always = isinstance(probability, (int, float)) and probability >= 1
    for policy in policies:
        for operation in OPERATIONS[policy]:
            changed = operation(images)
            if always:
                images = changed
            else:
                keep = torch.rand(images.shape[0], 1, 1, 1, device=images.device) >= probability
                images = torch.where(keep, images, changed)
    return images


class AdaptiveProbability:
    """ADA's augmentation probability p (Karras et al. 2020, section 3).

    The overfitting heuristic r_t = E[sign(D(x_real))] over the last ``interval`` batches is compared
    with ``target`` (0.6); p moves by sign(r_t - target) * (images in those batches) / (``kimg`` * 1000),
    so it can go from 0 to 1 in ``kimg`` thousand images (ADA's 500k), and stays in [0, 1]. Kept as a
    tensor on the batch's device: updating it makes no host synchronisation.
    """

    def __init__(self, target: float = 0.6, interval: int = 4, kimg: float = 500.0, p: float = 0.0) -> None:
        if not 0 < target < 1 or interval < 1 or kimg <= 0 or not 0 <= p <= 1:
            raise ValueError(
                f"augment: target={target} must be in (0, 1), interval={interval} at least 1, kimg={kimg} "
                f"positive and p={p} in [0, 1] (ADA: target 0.6, every 4 batches, 500 kimg)."
            )
        self.target, self.interval, self.kimg = target, int(interval), float(kimg)
        self.p = torch.tensor(float(p))
        self._signs = torch.zeros(())
        self._count = torch.zeros(())
        self._batches = 0
        self._images = 0

    def observe(self, real_scores: torch.Tensor) -> None:
        """Count the signs of a batch's D(real) outputs, one row per image (a patch map or several
        scales flattened into the row); every ``interval`` batches, adjust p."""
        scores = real_scores.detach()
        self._signs = self._signs.to(scores.device) + torch.sign(scores).sum()
        self._count = self._count.to(scores.device) + scores.numel()
        self._batches += 1
        self._images += int(scores.shape[0])  # images, not patches
        if self._batches >= self.interval:
            r_t = self._signs / self._count.clamp(min=1)
            step = torch.sign(r_t - self.target) * self._images / (self.kimg * 1000.0)
            self.p = (self.p.to(scores.device) + step).clamp(0.0, 1.0)
            self._signs, self._count = torch.zeros_like(self._signs), torch.zeros_like(self._count)
            self._batches = self._images = 0

    def state_dict(self) -> dict[str, float]:
        return {"p": float(self.p)}

    def load_state_dict(self, state: dict[str, float]) -> None:
        self.p = torch.tensor(float(state["p"]))
