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
from hydra.errors import HydraException  # noqa: E402
from omegaconf.errors import OmegaConfBaseException  # noqa: E402

from ganstyle.config import ConfigError, rewrite_command_line  # noqa: E402  (also registers schemas)
from ganstyle.run.overrides import check_output_folder_in_argv, check_overrides  # noqa: E402
from ganstyle.run.resuming import check_reused_run_dir_in_argv  # noqa: E402


def exit_with(message: str) -> None:
    """A problem the user can fix: its paragraph on stderr and exit code 1, no traceback."""
    print(f"Error: {message}", file=sys.stderr)
    sys.exit(1)


@hydra.main(version_base="1.3", config_path="conf", config_name="train")
def main(cfg) -> float | None:
    restore_hydra_error_setting()  # composed: errors from here on are Hydra's to report, as usual
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


# Until the config is composed, Hydra raises its errors to this script (HYDRA_FULL_ERROR) instead of
# printing them: a composition error then gets its one paragraph from check_overrides.
_USER_HYDRA_FULL_ERROR = os.environ.get("HYDRA_FULL_ERROR")


def restore_hydra_error_setting() -> None:
    if _USER_HYDRA_FULL_ERROR is None:
        os.environ.pop("HYDRA_FULL_ERROR", None)
    else:
        os.environ["HYDRA_FULL_ERROR"] = _USER_HYDRA_FULL_ERROR


if __name__ == "__main__":
    if "--verbose" in sys.argv:  # every library line and Lightning's model table (ganstyle.run.console)
        sys.argv.remove("--verbose")
        os.environ["GANSTYLE_VERBOSE"] = "1"
    config_dir = os.path.join(os.environ["GANSTYLE_ROOT"], "conf")
    try:  # before Hydra starts: it rewrites <run dir>/.hydra/ of an earlier run before train() runs
        # experiment=null as Hydra's ~experiment; the quick start dropped for data other than the embedded
        sys.argv = rewrite_command_line(sys.argv, config_dir)
        if "-m" in sys.argv or "--multirun" in sys.argv:  # every job composes before the sweep folder exists
            check_overrides(sys.argv, config_dir)
        check_reused_run_dir_in_argv(sys.argv)
        check_output_folder_in_argv(sys.argv)  # Hydra creates it with a traceback when it cannot
    except ConfigError as error:
        exit_with(str(error))
    os.environ["HYDRA_FULL_ERROR"] = "1"
    try:
        main()
    except HydraException as error:  # the command line did not compose (main() was never entered)
        restore_hydra_error_setting()
        try:  # a misspelt key gets the nearest valid names instead of Hydra's "+key" hint
            check_overrides(sys.argv, config_dir)
        except ConfigError as explained:
            exit_with(str(explained))
        cause = f"\n{error.__cause__}" if isinstance(error.__cause__, OmegaConfBaseException) else ""
        exit_with(f"{error}{cause}")
