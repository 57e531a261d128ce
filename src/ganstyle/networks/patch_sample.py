"""CUT's projection heads, PatchSampleF (Park et al. 2020; ``--netF mlp_sample`` in the authors' code).

For each encoder layer the heads sample the same random spatial locations from a batch of feature
maps and project each sampled feature vector with a 2-layer MLP to a unit vector, on which PatchNCE
compares patches.

The authors' code creates the MLPs lazily at the first batch, once the feature widths are seen; here
the widths are arguments (``ResnetGenerator.feature_channels(nce_layers)`` gives them before training),
so the heads exist when the optimisers, checkpoints and DDP are set up, like every other network.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from ganstyle.networks.init import check_init, check_int, init_weights


class PatchSampleF(nn.Module):
    """One head per feature layer: Linear(C_l, nc), ReLU, Linear(nc, nc), then L2 normalisation.

    Parameters for CUT's default layers of the 256 px generator (widths 3, 128, 256, 256, 256) and
    ``nc=256``: 560,384.

    Args:
        in_channels: the width C_l of each layer's features, in the order the features are passed.
        nc: the projection width (``--netF_nc``, 256).
        use_mlp: project with the MLPs (``mlp_sample``); False samples and normalises only (``sample``).
        init_type, init_gain: weight initialisation, see :func:`init_weights` (CUT's reference: xavier, gain 0.02,
            its --init_type default; the model passes the generator's).
    """

    def __init__(
        self,
        in_channels: Sequence[int],
        nc: int = 256,
        use_mlp: bool = True,
        init_type: str = "normal",
        init_gain: float = 0.02,
    ) -> None:
        super().__init__()
        owner = type(self).__name__
        in_channels = list(in_channels)
        if not in_channels:
            raise ValueError(f"{owner}: in_channels is empty; pass one feature width per NCE layer.")
        for width in in_channels:
            check_int(owner, "in_channels[i]", width, 1, "Each is the channel count of one NCE layer.")
        check_int(owner, "nc", nc, 1, "It is the projection width (256 in CUT).")
        check_init(init_type, init_gain, owner)
        self.in_channels, self.nc, self.use_mlp = in_channels, nc, use_mlp
        self.mlps = nn.ModuleList(
            nn.Sequential(nn.Linear(width, nc), nn.ReLU(), nn.Linear(nc, nc)) if use_mlp else nn.Identity()
            for width in in_channels
        )
        init_weights(self, init_type, init_gain)

    def forward(
        self,
        features: Sequence[Tensor],
        num_patches: int = 256,
        patch_ids: Sequence[Tensor] | None = None,
        generator: torch.Generator | None = None,
    ) -> tuple[list[Tensor], list[Tensor]]:
        """Sample and project ``num_patches`` locations of each ``(B, C_l, H_l, W_l)`` feature map.

        Returns per layer the unit vectors ``(B * P, nc)`` (image-major: rows ``b * P .. b * P + P - 1``
        are image b's patches, P = min(num_patches, H_l * W_l)) and the flat location indices used.
        Pass the indices of one call as ``patch_ids`` to another to sample the same locations (the
        query and its positive key); without them, fresh locations are drawn, shared by the batch,
        from the global random state or from ``generator`` (a CPU ``torch.Generator``).
        """
        if len(features) != len(self.mlps):
            raise ValueError(
                f"{type(self).__name__} has {len(self.mlps)} heads but got {len(features)} feature maps."
            )
        projected, ids = [], []
        for index, (feature, head) in enumerate(zip(features, self.mlps)):
            flat = feature.permute(0, 2, 3, 1).flatten(1, 2)  # (B, H*W, C)
            if patch_ids is not None:
                chosen = patch_ids[index]
            else:
                chosen = torch.randperm(flat.shape[1], device=feature.device)[
                    : min(num_patches, flat.shape[1])
                ]
            sample = head(flat[:, chosen, :].flatten(0, 1))
            projected.append(l2_normalize(sample))
            ids.append(chosen)
        return projected, ids


def l2_normalize(x: Tensor, eps: float = 1e-7) -> Tensor:
    """``x / (||x||_2 + eps)`` along dim 1, as the reference's ``Normalize(2)``."""
    return x / (x.pow(2).sum(1, keepdim=True).sqrt() + eps)
