"""Train a ganstyle model. Every option is a Hydra override; see README.md and conf/train.yaml.

python train.py                                   # CycleGAN, embedded dataset, CPU quick start
python train.py model=cyclegan loss.style_weight=1e4
python train.py -m loss.cycle_weight=5,10         # one job per value
"""

import os
import sys

# Paths in conf/paths derive from the folder holding this file, not from the working directory.
os.environ.setdefault("GANSTYLE_ROOT", os.path.dirname(os.path.abspath(__file__)))

import hydra  # noqa: E402

from ganstyle.config import ConfigError, rewrite_command_line  # noqa: E402  (also registers schemas)
from ganstyle.run.overrides import check_output_folder_in_argv, check_overrides  # noqa: E402
from ganstyle.run.resuming import check_reused_run_dir_in_argv  # noqa: E402


def exit_with(message: str) -> None:
    """A problem the user can fix: its paragraph on stderr and exit code 1, no traceback."""
    print(f"Error: {message}", file=sys.stderr)
    sys.exit(1)


@hydra.main(version_base="1.3", config_path="conf", config_name="train")
def main(cfg) -> float | None:
    # Imported here so that a mistake on the command line is answered before Lightning loads.
    from ganstyle.run.sweeps import report_failures_in_multirun
    from ganstyle.run.training import discard_unstarted_run, train
    from ganstyle.run.user_errors import user_error_message

    # Under -m a failing job writes <job dir>/FAILED and returns None, so the other jobs still run.
    train_job = report_failures_in_multirun(train, explain=user_error_message)
    try:
        return train_job(cfg)
    except Exception as error:
        message = user_error_message(error)
        if message is None:
            raise
        discard_unstarted_run(cfg)  # bad input: no half-made run folder is left behind
        exit_with(message)


if __name__ == "__main__":
    if "--verbose" in sys.argv:  # every library line and Lightning's model table (ganstyle.run.console)
        sys.argv.remove("--verbose")
        os.environ["GANSTYLE_VERBOSE"] = "1"
    try:  # before Hydra starts: it rewrites <run dir>/.hydra/ of an earlier run before train() runs
        # experiment=null as Hydra's ~experiment; the quick start dropped for data other than the embedded
        sys.argv = rewrite_command_line(sys.argv, os.path.join(os.environ["GANSTYLE_ROOT"], "conf"))
        # A misspelt key gets the nearest valid names instead of Hydra's "+key" hint.
        check_overrides(sys.argv, os.path.join(os.environ["GANSTYLE_ROOT"], "conf"))
        check_reused_run_dir_in_argv(sys.argv)
        check_output_folder_in_argv(sys.argv)  # Hydra creates it with a traceback when it cannot
    except ConfigError as error:
        exit_with(str(error))
    main()
