"""Make ``import torchvision`` work when its compiled ops do not match the installed torch.

The PyPI torchvision wheel is built against CUDA torch. Paired with a CPU-only torch its ``_C.so``
fails to load, and ``torchvision/_meta_registrations.py`` then raises
``RuntimeError: operator torchvision::nms does not exist`` -- which also breaks every package that
imports torchvision (lightning, torchmetrics). Registering the two missing operator schemas lets the
pure-Python parts (models, transforms, utils, datasets) import and run; the compiled ops
(``torchvision.ops.nms``, ``torchvision.io`` codecs) stay unavailable, and ganstyle uses neither.

On a machine whose torchvision matches its torch the first import succeeds and nothing is changed.
This module must be imported before anything imports torchvision, lightning or torchmetrics.
"""

from __future__ import annotations

import sys

_SCHEMAS = (
    "nms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor",
    "qnms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor",
)
_library = None  # kept alive: dropping the Library object would unregister the schemas


def ensure_torchvision_importable() -> None:
    """Import torchvision, registering the missing op schemas first if the plain import fails."""
    global _library
    try:
        import torchvision  # noqa: F401

        return
    except RuntimeError as error:
        if "torchvision::nms does not exist" not in str(error):
            raise
    for name in [name for name in sys.modules if name == "torchvision" or name.startswith("torchvision.")]:
        del sys.modules[name]
    import torch

    _library = torch.library.Library("torchvision", "FRAGMENT")
    for schema in _SCHEMAS:
        _library.define(schema)
    import torchvision  # noqa: F401,F811


ensure_torchvision_importable()
