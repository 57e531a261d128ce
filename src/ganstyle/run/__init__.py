"""Running an experiment: everything between ``python train.py ...`` and a finished run folder.

- :mod:`~ganstyle.run.overrides` and :mod:`~ganstyle.run.config_checks`: the command line and the
  composed config, checked before anything is built;
- :mod:`~ganstyle.run.training`: ``train(cfg)``, the experiment as plain code; errors the user can
  fix are told in one paragraph (:mod:`~ganstyle.run.user_errors`);
- :mod:`~ganstyle.run.monitoring`: which validation metric the checkpoints keep the best of;
- :mod:`~ganstyle.run.checkpointing` and :mod:`~ganstyle.run.resuming`: checkpoints that survive
  crashes, and continuing a run from one;
- :mod:`~ganstyle.run.distributed`, :mod:`~ganstyle.run.ranks`, :mod:`~ganstyle.run.sweeps` and
  :mod:`~ganstyle.run.loggers`: several processes, multirun jobs that stay independent, W&B.

The run layer builds models, data and callbacks from the config; models never import it. Nothing is
imported here, so ``import ganstyle.run.sweeps`` (a Hydra callback) does not load the training code.
"""
