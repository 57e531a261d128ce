"""Checks on a discriminator's config against the adversarial objective it will be trained with.

Shared by every model that trains a critic (DCGAN/WGAN-GP, pix2pix), so a config error reads the same
whichever model meets it.
"""

from __future__ import annotations

from typing import Any

from ganstyle.config import ConfigError


def check_critic_norm(owner: str, discriminator: dict[str, Any], gan_mode: str) -> None:
    """Refuse a batch-norm discriminator with WGAN-GP, with the reason and the fix."""
    if gan_mode == "wgangp" and discriminator.get("norm") == "batch":
        raise ConfigError(
            f"{owner}: loss.gan_mode=wgangp with model.discriminator.norm=batch. The gradient penalty "
            "constrains the critic's gradient for each sample on its own, but batch norm makes every "
            "sample's score depend on the rest of its batch, so the penalty no longer means what it should "
            "(Gulrajani et al. 2017, Sec. 4). Set model.discriminator.norm=layer (their recommendation), "
            "instance or none."
        )
