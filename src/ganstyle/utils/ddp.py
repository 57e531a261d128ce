"""DDP set up for GAN modules: each optimiser's backward pass leaves the other networks without gradients.

A GAN step trains one set of networks while another set only takes part in the forward pass (the
discriminators during the generator step, with ``requires_grad`` off under ``toggled_optimizer``).
DistributedDataParallel then waits for gradients that never come unless it looks for unused
parameters, so every DDP run of a :class:`~ganstyle.models.base.ImageModel` switches that on
(:func:`find_unused_parameters_for_gans`): ``trainer.strategy=ddp`` just works.
"""

from __future__ import annotations

import logging
from typing import Any

from ganstyle.config import ConfigError
from ganstyle.utils.lightning_compat import ddp_kwargs

log = logging.getLogger(__name__)


def find_unused_parameters_for_gans(strategy: Any) -> None:
    """Make a DDP strategy tolerate parameters that a backward pass leaves without gradients.

    Called from ``ImageModel.setup``, which Lightning runs before it wraps the module in
    DistributedDataParallel. Without this the discriminator step fails with "parameters that were not
    used in producing the loss" (the generators are not in the discriminator loss's graph), and the
    generators would step on their own rank's gradients. With it, DDP marks the untouched network's
    parameters ready at once and averages the trained network's gradients before ``optimizer.step``.
    The cost is one walk over the autograd graph per backward pass.
    """
    from lightning.pytorch.strategies import DDPStrategy

    if not isinstance(strategy, DDPStrategy):
        return
    kwargs = ddp_kwargs(strategy)
    if kwargs is None:
        raise ConfigError(
            "This Lightning version's DDPStrategy keeps its DistributedDataParallel arguments elsewhere, so "
            "ganstyle cannot switch on find_unused_parameters, which GAN training under DDP needs (each "
            "optimiser's backward pass leaves the other networks without gradients). Pass it explicitly: "
            "`trainer.strategy=ddp_find_unused_parameters_true` (or ddp_spawn_find_unused_parameters_true)."
        )
    if not kwargs.get("find_unused_parameters"):
        kwargs["find_unused_parameters"] = True
        log.info("DDP: find_unused_parameters=True (each GAN optimiser step leaves other networks unused)")
