"""Weight initialisation (pytorch-CycleGAN-and-pix2pix's ``init_weights``) and argument checks.

The checks live here because every network constructor runs them right before it initialises its
weights; each raises a ValueError that says what was wrong, what is allowed and how to fix it.
"""

from __future__ import annotations

from torch import nn
from torch.nn import init

INIT_TYPES = ("normal", "xavier", "kaiming", "orthogonal")


def check_init(init_type: str | None, init_gain: float, owner: str, allow_none: bool = False) -> None:
    """Validate ``init_type`` / ``init_gain`` before a network is built."""
    allowed = INIT_TYPES + ((None,) if allow_none else ())
    if init_type not in allowed:
        none_hint = " or None (keep PyTorch's default initialisation)" if allow_none else ""
        raise ValueError(
            f"{owner}: unknown init_type {init_type!r}. Allowed values are "
            f"{', '.join(repr(t) for t in INIT_TYPES)}{none_hint}. The papers' code uses 'normal' "
            "with init_gain=0.02 (weights ~ N(0, 0.02)); set init_type accordingly."
        )
    if isinstance(init_gain, bool) or not isinstance(init_gain, (int, float)) or not init_gain > 0:
        raise ValueError(
            f"{owner}: init_gain must be a positive number, got {init_gain!r}. It is the standard "
            "deviation for init_type='normal' and the gain for 'xavier' / 'orthogonal' "
            "(0.02 in the reference code)."
        )


def check_int(owner: str, name: str, value: object, minimum: int, meaning: str) -> None:
    """Raise a ValueError unless ``value`` is an int (not a bool) >= ``minimum``."""
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(
            f"{owner}: {name} must be an integer >= {minimum}, got {value!r}. {meaning} "
            f"Pass an integer >= {minimum} for {name}."
        )


def init_weights(net: nn.Module, init_type: str = "normal", init_gain: float = 0.02) -> nn.Module:
    """Initialise ``net`` in place as the CycleGAN / pix2pix reference does, and return it.

    Conv / ConvTranspose / Linear weights: ``normal`` N(0, gain), ``xavier`` (normal, gain),
    ``kaiming`` (normal, fan_in; gain unused) or ``orthogonal`` (gain); their biases are zeroed.
    BatchNorm weights ~ N(1, gain), biases 0 (a BN weight is a scale, so it is centred on one).
    Other layers (instance / group norm affine parameters) keep PyTorch's defaults, as in the
    reference. DCGAN (Radford et al. 2016) uses the same scheme with ``normal`` and 0.02.
    """
    check_init(init_type, init_gain, "init_weights")

    def init_func(m: nn.Module) -> None:
        if isinstance(m, (nn.modules.conv._ConvNd, nn.Linear)) and m.weight is not None:
            if init_type == "normal":
                init.normal_(m.weight, 0.0, init_gain)
            elif init_type == "xavier":
                init.xavier_normal_(m.weight, gain=init_gain)
            elif init_type == "kaiming":
                init.kaiming_normal_(m.weight, a=0, mode="fan_in")
            else:
                init.orthogonal_(m.weight, gain=init_gain)
            if m.bias is not None:
                init.zeros_(m.bias)
        elif isinstance(m, nn.modules.batchnorm._BatchNorm) and m.affine:
            init.normal_(m.weight, 1.0, init_gain)
            init.zeros_(m.bias)

    net.apply(init_func)
    return net
