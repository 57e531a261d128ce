"""GAN objectives: vanilla (BCE), least squares, hinge and Wasserstein with gradient penalty."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import nn

MODES = ("vanilla", "lsgan", "hinge", "wgangp")


class AdversarialLoss(nn.Module):
    """Adversarial loss on raw discriminator outputs D(x) (logits, no sigmoid), for D and for G.

    Every mode averages over all elements of the prediction, so a PatchGAN's (B, 1, h, w) map and a
    per-image (B,) or (B, 1) score give losses on the same scale; a list of predictions (multi-scale
    discriminators) gives the mean over scales. With t = real_label for target_is_real else fake_label:

    * ``vanilla`` (Goodfellow et al., pix2pix): BCEWithLogits(D(x), t); G uses t = real_label, the
      non-saturating loss -log sigmoid(D(G(z))).
    * ``lsgan`` (Mao et al., CycleGAN's default): mean (D(x) - t)^2; G: mean (D(G(z)) - real_label)^2.
    * ``hinge`` (Miyato et al.): D real: mean relu(1 - D(x)); D fake: mean relu(1 + D(x)); G: -mean D(G(z)).
    * ``wgangp`` (Gulrajani et al.): D real: -mean D(x); D fake: +mean D(x); G: -mean D(G(z)); add
      :func:`gradient_penalty` to the critic's loss.

    For hinge and wgangp the generator loss only exists with ``target_is_real=True``.
    """

    def __init__(self, mode: str = "lsgan", real_label: float = 1.0, fake_label: float = 0.0) -> None:
        super().__init__()
        if mode not in MODES:
            raise ValueError(f"Unknown adversarial mode {mode!r}; allowed: {', '.join(MODES)}")
        self.mode, self.real_label, self.fake_label = mode, float(real_label), float(fake_label)

    def _single(
        self, prediction: torch.Tensor, target_is_real: bool, for_discriminator: bool
    ) -> torch.Tensor:
        if self.mode in ("vanilla", "lsgan"):
            target = torch.full_like(prediction, self.real_label if target_is_real else self.fake_label)
            if self.mode == "vanilla":
                return F.binary_cross_entropy_with_logits(prediction, target)
            return F.mse_loss(prediction, target)
        if not for_discriminator:
            if not target_is_real:
                raise ValueError(f"the {self.mode} generator loss needs target_is_real=True")
            return -prediction.mean()
        if self.mode == "hinge":
            return F.relu(1.0 - prediction).mean() if target_is_real else F.relu(1.0 + prediction).mean()
        return -prediction.mean() if target_is_real else prediction.mean()

    def forward(
        self,
        prediction: torch.Tensor | Sequence[torch.Tensor],
        target_is_real: bool,
        for_discriminator: bool = True,
    ) -> torch.Tensor:
        if isinstance(prediction, torch.Tensor):
            return self._single(prediction, target_is_real, for_discriminator)
        losses = [self._single(p, target_is_real, for_discriminator) for p in prediction]
        return torch.stack(losses).mean()

    def extra_repr(self) -> str:
        return f"mode={self.mode!r}"


def gradient_penalty(
    critic: Callable[[torch.Tensor], torch.Tensor],
    real: torch.Tensor,
    fake: torch.Tensor,
    weight_lambda: float = 10.0,
) -> torch.Tensor:
    """WGAN-GP penalty: lambda * E_xhat[(||grad_xhat D(xhat)||_2 - 1)^2], xhat = a*real + (1-a)*fake.

    a ~ U(0, 1) per sample; the norm is over all of a sample's pixels and channels; a patch critic's
    outputs are summed per sample before differentiating (each sample's gradient only depends on its own
    outputs). ``create_graph=True`` so the penalty trains the critic. lambda = 10 as in Gulrajani et al.
    """
    alpha = torch.rand(real.shape[0], *([1] * (real.dim() - 1)), device=real.device, dtype=real.dtype)
    interpolates = (alpha * real.detach() + (1.0 - alpha) * fake.detach()).requires_grad_(True)
    scores = critic(interpolates)
    (gradients,) = torch.autograd.grad(
        outputs=scores, inputs=interpolates, grad_outputs=torch.ones_like(scores), create_graph=True
    )
    # tiny epsilon keeps the norm differentiable where the gradient is exactly zero
    norms = (gradients.flatten(1).square().sum(dim=1) + 1e-12).sqrt()
    return weight_lambda * (norms - 1.0).square().mean()
