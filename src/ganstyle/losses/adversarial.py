"""GAN objectives: vanilla (BCE), least squares, hinge and Wasserstein with gradient penalty, and the
discriminator's loss every model with a discriminator trains on.

:class:`AdversarialLoss` and :func:`gradient_penalty` return unweighted terms; the generator's
``loss.gan_weight`` is applied by the model's step, the discriminator's weights (the halving and
``loss.gp_weight``) by :func:`discriminator_loss`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import NamedTuple

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

    For hinge and wgangp the generator loss only exists with ``target_is_real=True``. The loss is
    unweighted: the model multiplies the generator's term by ``loss.gan_weight``.
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
    critic: Callable[[torch.Tensor], torch.Tensor], real: torch.Tensor, fake: torch.Tensor
) -> torch.Tensor:
    """WGAN-GP penalty, unweighted: E_xhat[(||grad_xhat D(xhat)||_2 - 1)^2], xhat = a*real + (1-a)*fake.

    a ~ U(0, 1) per sample; the norm is over all of a sample's pixels and channels; a patch critic's
    outputs are summed per sample before differentiating (each sample's gradient only depends on its own
    outputs). ``create_graph=True`` so the penalty trains the critic. The weight lambda
    (``loss.gp_weight``, 10 in Gulrajani et al.) is applied by :func:`discriminator_loss`.
    """
    alpha = torch.rand(real.shape[0], *([1] * (real.dim() - 1)), device=real.device, dtype=real.dtype)
    interpolates = (alpha * real.detach() + (1.0 - alpha) * fake.detach()).requires_grad_(True)
    scores = critic(interpolates)
    (gradients,) = torch.autograd.grad(
        outputs=scores, inputs=interpolates, grad_outputs=torch.ones_like(scores), create_graph=True
    )
    # tiny epsilon keeps the norm differentiable where the gradient is exactly zero
    norms = (gradients.flatten(1).square().sum(dim=1) + 1e-12).sqrt()
    return (norms - 1.0).square().mean()


class DiscriminatorLoss(NamedTuple):
    """What :func:`discriminator_loss` returns: the loss and its terms, unweighted and weighted.

    ``terms`` and ``weighted_terms`` have the keys ``real``, ``fake`` and, with wgangp, ``gp``;
    ``loss`` equals ``sum(weighted_terms.values())``.
    """

    loss: torch.Tensor
    terms: dict[str, torch.Tensor]
    weighted_terms: dict[str, torch.Tensor]


def discriminator_loss(
    adversarial: AdversarialLoss,
    discriminator: Callable[[torch.Tensor], torch.Tensor],
    real: torch.Tensor,
    fake: torch.Tensor,
    gp_weight: float,
    real_fake_weight: float = 0.5,
    predictions: tuple[torch.Tensor, torch.Tensor] | None = None,
) -> DiscriminatorLoss:
    """The discriminator's loss on a batch of real and generated images:

        L_D = w * (L(D(real), real) + L(D(fake), fake)) + lambda_gp * GP(D, real, fake)

    with L = ``adversarial`` and the penalty term only when its mode is ``wgangp``. w =
    ``real_fake_weight``: 0.5 in the pix2pix / CycleGAN / CUT reference code (halved so D learns
    slower than G), 1 in DCGAN's and WGAN-GP's Algorithm 1; lambda_gp = ``gp_weight`` (``loss.gp_weight``).

    ``fake`` is detached, so D's step never reaches the generator. ``predictions``: D(real) and
    D(fake) when the caller scored them itself (one batched call, or another order); by default D is
    called on ``real``, then on ``fake``. The penalty always calls ``discriminator`` on interpolates.
    """
    fake = fake.detach()
    if predictions is None:
        predictions = (discriminator(real), discriminator(fake))
    prediction_real, prediction_fake = predictions
    terms = {"real": adversarial(prediction_real, True), "fake": adversarial(prediction_fake, False)}
    weighted_terms = {"real": real_fake_weight * terms["real"], "fake": real_fake_weight * terms["fake"]}
    loss = real_fake_weight * (terms["real"] + terms["fake"])
    if adversarial.mode == "wgangp":
        terms["gp"] = gradient_penalty(discriminator, real, fake)
        weighted_terms["gp"] = gp_weight * terms["gp"]
        loss = loss + weighted_terms["gp"]
    return DiscriminatorLoss(loss, terms, weighted_terms)
