"""Speed switches for a model's networks: channels-last memory layout, ``torch.compile`` and fused
optimisers.

Set from the ``performance`` block of conf/train.yaml (``performance.channels_last=true``,
``performance.compile=true``) and applied by ``ImageModel.setup`` before Lightning moves the model to its
device and wraps it for DDP. Both are off by default because on the 2-core CPU this project is tested
on both were slower: channels_last convolutions ran slower than NCHW, and ``torch.compile`` cost
50-80 s of compilation for 0.8-0.9x the eager speed. On GPUs with tensor cores, channels_last with
``trainer.precision=bf16-mixed`` is the usual win; measure with ``python -m benchmarks.bench_scaling``.
``performance.fused_optimizers`` (default ``auto``) builds Adam/AdamW with ``fused=True`` when every
parameter is on CUDA: one kernel updates all parameters instead of several per tensor (see
:func:`fused_optimizer_kwargs`).
"""

from __future__ import annotations

import logging
from typing import Any

import torch
from torch import nn

log = logging.getLogger(__name__)


def trainable_networks(module: nn.Module) -> dict[str, nn.Module]:
    """The direct children that hold parameters (generators, discriminators, encoders), not metrics.

    torchmetrics objects are modules too but hold state, not weights, and must not be compiled.
    """
    from torchmetrics import Metric

    return {
        name: child
        for name, child in module.named_children()
        if not isinstance(child, Metric) and any(True for _ in child.parameters())
    }


def to_channels_last(value: Any) -> Any:
    """4-D tensors (N, C, H, W) in a batch converted to channels-last; anything else unchanged."""
    if isinstance(value, torch.Tensor):
        return value.contiguous(memory_format=torch.channels_last) if value.dim() == 4 else value
    if isinstance(value, dict):
        return {key: to_channels_last(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(to_channels_last(item) for item in value)
    return value


def _inputs_to_channels_last(network: nn.Module, inputs: tuple[Any, ...]) -> tuple[Any, ...]:
    return to_channels_last(inputs)


def prepare_networks(module: nn.Module, channels_last: bool, compile: bool) -> None:
    """Apply the switches to ``module``'s networks, once (Lightning calls setup for every stage).

    ``nn.Module.compile`` compiles in place, so parameter names and checkpoints stay as they were
    (wrapping in ``torch.compile(net)`` would prefix every key with ``_orig_mod.``).
    """
    if channels_last and not getattr(module, "_channels_last_applied", False):
        # Every 4-D parameter and buffer; each network's image inputs are converted as they arrive
        # (a hook per network rather than on the batch, so data modules keep their own transfer hooks).
        module.to(memory_format=torch.channels_last)
        for network in trainable_networks(module).values():
            network.register_forward_pre_hook(_inputs_to_channels_last)
        module._channels_last_applied = True
    if compile and not getattr(module, "_networks_compiled", False):
        networks = trainable_networks(module)
        for network in networks.values():
            network.compile()
        module._networks_compiled = True
        log.info("torch.compile: %s (the first steps include compilation)", ", ".join(networks))


FUSABLE_OPTIMIZERS = (torch.optim.Adam, torch.optim.AdamW)


def fused_optimizer_kwargs(
    optimizer_class: Any, parameters: list[nn.Parameter], setting: bool | str = "auto"
) -> dict[str, bool]:
    """The ``fused`` argument to add to an optimiser's configured ones (empty: keep the config's).

    ``auto`` fuses Adam/AdamW when every parameter is on CUDA, where the fused kernel is torch's
    fastest update; elsewhere the optimiser stays as configured. ``true``/``false`` force it for any
    optimiser that takes ``fused`` (torch then refuses devices it has no fused kernel for). The
    optimiser state has the same keys either way, so checkpoints load into either.
    """
    if setting == "auto":
        on_cuda = bool(parameters) and all(p.is_cuda for p in parameters)
        fuse = (
            on_cuda and isinstance(optimizer_class, type) and issubclass(optimizer_class, FUSABLE_OPTIMIZERS)
        )
        return {"fused": True} if fuse else {}
    if not isinstance(setting, bool):
        raise ValueError(f"performance.fused_optimizers must be auto, true or false; got {setting!r}.")
    return {"fused": setting}
