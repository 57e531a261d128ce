"""A local web page to apply trained models (``ganstyle serve``; ``pip install ganstyle[web]``).

``build_app(checkpoints)`` returns the Gradio Blocks, to launch or to mount in another app.
"""

from ganstyle.web.app import build_app
from ganstyle.web.checkpoints import ServedCheckpoint, find_checkpoints

__all__ = ["ServedCheckpoint", "build_app", "find_checkpoints"]
