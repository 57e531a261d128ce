"""History of generated images shown to a discriminator (Shrivastava et al. 2017).

CycleGAN updates its discriminators on a mix of the newest fakes and fakes from earlier steps, which
damps oscillation. Behaviour matches the reference ``ImagePool``: until the pool holds ``pool_size``
images every fake is stored and returned; after that each fake is, with probability 0.5, swapped
with a random stored one (the stored one is returned, the new one kept), else returned as is.
Fakes holding NaN or inf are returned but never stored: a step the model skips for a non-finite
loss must not leave a NaN image in the history, where it would spoil later discriminator steps.
"""

from __future__ import annotations

import torch


class ImagePool:
    def __init__(self, pool_size: int = 50, generator: torch.Generator | None = None) -> None:
        if pool_size < 0:
            raise ValueError(f"pool_size must be >= 0 (0 disables the pool), got {pool_size}.")
        self.pool_size = pool_size
        self.images: list[torch.Tensor] = []
        self._generator = generator

    def __len__(self) -> int:
        return len(self.images)

    def _rand(self) -> float:
        return float(torch.rand((), generator=self._generator))

    def query(self, images: torch.Tensor) -> torch.Tensor:
        """Return a batch of the same size, mixing `images` (detached) with stored history."""
        images = images.detach()
        if self.pool_size == 0:
            return images
        returned = []
        finite = torch.isfinite(images.flatten(1)).all(dim=1).tolist()  # one device sync per batch
        for image, storable in zip(images, finite):
            image = image.unsqueeze(0)
            if not storable:
                returned.append(image)
            elif len(self.images) < self.pool_size:
                self.images.append(image.clone())
                returned.append(image)
            elif self._rand() > 0.5:
                index = int(torch.randint(0, self.pool_size, (), generator=self._generator))
                returned.append(self.images[index].to(image.device).clone())
                self.images[index] = image.clone()
            else:
                returned.append(image)
        return torch.cat(returned, dim=0)

    def state_dict(self) -> dict:
        """Stored images on the CPU, so checkpoints restore the pool exactly."""
        return {"pool_size": self.pool_size, "images": [image.cpu() for image in self.images]}

    def load_state_dict(self, state: dict, device: torch.device | str | None = None) -> None:
        self.pool_size = int(state["pool_size"])
        self.images = [image.to(device) if device is not None else image for image in state["images"]]
