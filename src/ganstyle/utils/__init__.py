"""Helpers models build on: the image pool, learning-rate schedules, the networks' speed switches,
DDP set up for GANs, random states carried in checkpoints, and Lightning's private internals
(``lightning_compat``). Nothing here imports a model or the run layer (:mod:`ganstyle.run`)."""
