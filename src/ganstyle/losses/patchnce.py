"""PatchNCE: the patchwise contrastive loss of CUT (Park et al. 2020, "Contrastive Learning for Unpaired
Image-to-Image Translation"; models/patchnce.py in taesungp/contrastive-unpaired-translation)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

# The reference fills the masked diagonal with -10 before dividing by the temperature: exp(-10 / 0.07)
# is zero in float32, so a patch is never its own negative.
MASKED_LOGIT = -10.0


class PatchNCELoss(nn.Module):
    """InfoNCE over sampled patches: each output patch must pick its own input patch among the others.

    For one layer, with ``q_i`` the projected, L2-normalised query patch i of G(x), ``k_i`` the key at the
    same location of x (detached: the gradient reaches G only through the queries), ``tau`` the
    temperature (0.07) and ``N(i)`` the negatives of patch i:

        l_i = -log( exp(q_i . k_i / tau) / (exp(q_i . k_i / tau) + sum_{j in N(i)} exp(q_i . k_j / tau)) )

    i.e. cross-entropy over the logits ``[q_i . k_i, q_i . k_j ...] / tau`` with target 0. Negatives
    (``negatives_from_minibatch=False``, CUT's default) are the other sampled patches of the *same*
    image: the logits row holds q_i . k_j for all P patches j of that image, with j = i replaced by
    ``-10`` (so P + 1 logits, the masked one contributing exp(-10 / tau), i.e. nothing). With
    ``negatives_from_minibatch=True`` every sampled patch of the batch (B * P of them) is a negative.

    Returns the unweighted per-patch losses ``l_i`` (shape ``(B * P,)``); the model averages them over
    patches and layers and multiplies by ``loss.nce_weight``, a loss that is about log(P + 1) (= 5.5 for
    256 patches) at chance.

    Args:
        temperature: ``tau`` (``--nce_T``, 0.07).
        negatives_from_minibatch: draw negatives from every image of the batch
            (``--nce_includes_all_negatives_from_minibatch``, for single-image translation).
    """

    def __init__(self, temperature: float = 0.07, negatives_from_minibatch: bool = False) -> None:
        super().__init__()
        if not temperature > 0:
            raise ValueError(
                f"PatchNCELoss: temperature must be positive (CUT uses 0.07), got {temperature}."
            )
        self.temperature = float(temperature)
        self.negatives_from_minibatch = bool(negatives_from_minibatch)

    def forward(self, query: Tensor, key: Tensor, batch_size: int) -> Tensor:
        """``query``, ``key``: ``(B * P, C)`` unit vectors, image-major (as PatchSampleF returns them)."""
        if query.shape != key.shape or query.dim() != 2 or query.shape[0] % batch_size:
            raise ValueError(
                f"PatchNCELoss: query {tuple(query.shape)} and key {tuple(key.shape)} must both be "
                f"(batch_size * patches, channels) with batch_size={batch_size}."
            )
        key = key.detach()
        positive = (query * key).sum(dim=1, keepdim=True)  # (B*P, 1)
        groups = 1 if self.negatives_from_minibatch else batch_size
        query_groups = query.reshape(groups, -1, query.shape[1])
        key_groups = key.reshape(groups, -1, key.shape[1])
        negatives = torch.bmm(query_groups, key_groups.transpose(1, 2))  # (groups, n, n)
        n = negatives.shape[1]
        diagonal = torch.eye(n, device=query.device, dtype=torch.bool)[None]
        negatives = negatives.masked_fill(diagonal, MASKED_LOGIT).reshape(-1, n)
        logits = torch.cat([positive, negatives], dim=1) / self.temperature
        target = torch.zeros(logits.shape[0], dtype=torch.long, device=query.device)
        return F.cross_entropy(logits, target, reduction="none")
