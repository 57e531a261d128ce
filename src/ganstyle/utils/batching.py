"""One call of a network on several batches it sees together, where that changes nothing."""

from __future__ import annotations

from typing import Any

import torch
from torch.nn.modules.batchnorm import _BatchNorm
from torch.nn.modules.instancenorm import _InstanceNorm


def samples_are_independent(network: torch.nn.Module) -> bool:
    """True when each output sample depends only on its own input sample (instance norm or none).

    Batch norm normalises by statistics of the whole batch, so calling it on two batches at once
    changes both results; instance norm that tracks running statistics would update them once with
    the joint batch instead of twice. Either keeps separate calls.
    """
    for module in network.modules():
        if isinstance(module, _BatchNorm):
            return False
        if isinstance(module, _InstanceNorm) and module.track_running_stats:
            return False
    return True


def batched_call(network: Any, *inputs: torch.Tensor) -> tuple[Any, ...]:
    """``network`` applied to each of ``inputs`` in one call on their concatenation.

    Gives the same outputs and gradients as separate calls when :func:`samples_are_independent`;
    one larger call keeps a GPU busier than several small ones. A list of predictions (multi-scale
    discriminators) is split scale by scale.
    """
    sizes = [x.shape[0] for x in inputs]
    output = network(torch.cat(inputs, dim=0))
    if isinstance(output, torch.Tensor):
        return output.split(sizes)
    return tuple(zip(*(scale.split(sizes) for scale in output)))
