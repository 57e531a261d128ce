"""The documentation cannot drift from the configs: every `python train.py ...` command written in
README.md and docs/*.md is read from the files and composed with Hydra's compose API, then put through
the checks that need no files (`validate_config`, the model's loss-term check). A renamed key, group
or option breaks this test instead of a user's first run.

What is composed and what is skipped (and why):
- paths (`data.root=/data/horse2zebra`, `data.content=me.jpg`, `hydra.run.dir=outputs/.../<run>`) are
  composed as the strings they are; nothing reads them, so placeholders are fine;
- a placeholder inside a value (`outputs/train/runs/<run>`) becomes a plain word (`run`); a placeholder
  for a whole value (`model=<name>`) or for several overrides (`<same overrides>`) is dropped;
- a command written several times is composed once (at its first place);
- commands run from the repository root, where a relative `hydra.searchpath=[file://docs/examples/conf]`
  points; a `PYTHONPATH=<folders>` before `python train.py` puts those folders on `sys.path`;
- `-m` / `--multirun` is dropped and a sweep (`a=1,2`, `glob(*)`) composes with its first value;
  Optuna's search spaces (`interval(...)`, `tag(...)`) are left to the sweeper and skipped;
- nothing is instantiated (no data, networks or weights are read); training itself is what the
  journey tests (tests/journeys/) and the experiment smoke tests cover;
- the checks that depend on the machine or on the user's files are answered as on the machine the
  command is written for: a GPU is present (`trainer=gpu`, `trainer=ddp`), named images and the
  dataset experiments' fetched datasets exist, and
  values a dataset experiment leaves to the user (`???`, e.g. `data.style`) count as given.
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.override_parser.types import ChoiceSweep, Glob

from ganstyle.run.config_checks import validate_config

ROOT = Path(__file__).resolve().parents[1]
DOCUMENTS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
COMMAND = re.compile(r"(?:PYTHONPATH=(?P<python_path>\S+)\s+)?python train\.py(?=\s|$|`)(?P<overrides>.*)")


def documented_commands() -> list[tuple[str, str]]:
    """(where, the overrides text) of every `python train.py` in the documents: code blocks (with
    backslash continuations joined) and inline code spans."""
    found = []
    for document in DOCUMENTS:
        lines = document.read_text().splitlines()
        in_block = False
        index = 0
        while index < len(lines):
            line, number = lines[index], index + 1
            if line.lstrip().startswith("```"):
                in_block = not in_block
            elif in_block:
                while line.rstrip().endswith("\\") and index + 1 < len(lines):
                    index += 1
                    line = line.rstrip()[:-1] + " " + lines[index].strip()
                match = COMMAND.search(line)
                if match:
                    found.append((f"{document.name}:{number}", command_text(match, strip_comment)))
            else:
                for span in re.findall(r"`([^`]*python train\.py[^`]*)`", line):
                    found.append((f"{document.name}:{number}", command_text(COMMAND.search(span))))
            index += 1
    return found


def command_text(match: re.Match, clean=lambda text: text) -> str:
    """The overrides of a matched command, after its `PYTHONPATH=<folders>` when it sets one."""
    overrides = clean(match.group("overrides"))
    python_path = match.group("python_path")
    return f"PYTHONPATH={python_path} {overrides}" if python_path else overrides


def split_python_path(text: str) -> tuple[list[str], str]:
    """(the folders of a leading `PYTHONPATH=a:b`, the rest of the command text)."""
    match = re.match(r"PYTHONPATH=(\S+)\s*", text)
    return (match.group(1).split(":"), text[match.end() :]) if match else ([], text)


def strip_comment(text: str) -> str:
    """The command without its trailing `# comment` (a # inside quotes is kept)."""
    lexer = shlex.shlex(text, posix=True, punctuation_chars=False)
    lexer.whitespace_split = True
    lexer.commenters = "#"
    return " ".join(shlex.quote(token) for token in lexer)


def composable_overrides(text: str, config_dir: Path) -> list[str]:
    """The overrides of one documented command as the compose API takes them (see module docstring)."""
    tokens = [token for token in shlex.split(text) if token not in ("-m", "--multirun")]
    tokens = [token for token in tokens if "=" in token]  # drops `<same overrides>` and the like
    tokens = [token for token in tokens if not re.fullmatch(r"[^=]+=<[^<>]*>", token)]  # model=<name>
    tokens = [re.sub(r"<([^<>]*)>", lambda m: re.sub(r"\W+", "_", m.group(1)), token) for token in tokens]
    parsed = OverridesParser.create().parse_overrides(tokens)
    overrides = []
    for token, override in zip(tokens, parsed):
        if not override.is_sweep_override():
            overrides.append(token)
            continue
        value = override.value()
        key = override.get_key_element()
        if isinstance(value, ChoiceSweep):
            overrides.append(f"{key}={value.list[0]}")
        elif isinstance(value, Glob):
            options = sorted(path.stem for path in (config_dir / key).glob("*.yaml"))
            overrides.append(f"{key}={value.filter(options)[0]}")
        # interval()/range() search spaces belong to the sweeper: nothing to compose
    return overrides


COMMANDS = list(
    {text.strip(): (location, text) for location, text in reversed(documented_commands())}.values()
)[::-1]


def test_the_documents_hold_the_commands_this_test_composes():
    where = {location.split(":")[0] for location, _ in COMMANDS}
    assert {"README.md", "style_models.md", "pix2pix.md", "dcgan.md", "scaling.md"} <= where
    assert any("data=unpaired" in text for _, text in COMMANDS)  # the own-data command is among them


@pytest.mark.parametrize("location, text", COMMANDS, ids=[location for location, _ in COMMANDS])
def test_every_documented_train_command_composes_and_passes_the_config_checks(
    location, text, compose_config, monkeypatch
):
    import torch

    from ganstyle.run import config_checks

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 8)
    monkeypatch.setattr(config_checks, "check_named_images_exist", lambda cfg: None)
    monkeypatch.setattr(config_checks, "check_dataset_present", lambda cfg: None)  # fetched beforehand
    monkeypatch.setattr(config_checks, "check_required_values", lambda cfg: None)
    python_path, text = split_python_path(text)
    monkeypatch.chdir(ROOT)
    for folder in python_path:
        monkeypatch.syspath_prepend(str(ROOT / folder))
    overrides = composable_overrides(text, ROOT / "conf")
    cfg = compose_config(*overrides)
    validate_config(cfg)


def test_a_documented_command_with_a_renamed_key_would_fail_here(compose_config):
    from hydra.errors import ConfigCompositionException

    overrides = composable_overrides("-m loss.cycle_wieght=5,10 data.root=/data/<dataset>", ROOT / "conf")
    assert overrides == ["loss.cycle_wieght=5", "data.root=/data/dataset"]
    with pytest.raises(ConfigCompositionException, match="cycle_wieght"):
        compose_config(*overrides)


OWN_DATA_COMMANDS = [
    (location, text)
    for location, text in COMMANDS
    if re.search(r"(?<![\w.])data=(?!embedded)", text) and "experiment=" not in text
]


def test_the_own_data_commands_are_found():
    assert {"README.md", "cut.md"} <= {location.split(":")[0] for location, _ in OWN_DATA_COMMANDS}
    assert {"model=cut", "model=pix2pix"} <= {word for _, text in OWN_DATA_COMMANDS for word in text.split()}


@pytest.mark.parametrize(
    "location, text", OWN_DATA_COMMANDS, ids=[location for location, _ in OWN_DATA_COMMANDS]
)
def test_a_documented_command_on_your_own_data_trains_at_the_model_configs_reference_sizes(
    location, text, compose_config, monkeypatch
):
    # Without experiment=null: the quick start's CPU sizes are for the embedded data only.
    monkeypatch.chdir(ROOT)
    overrides = composable_overrides(split_python_path(text)[1], ROOT / "conf")
    cfg = compose_config(*overrides)
    reference = compose_config(*overrides, "experiment=null")
    assert cfg.hydra.runtime.choices.get("experiment") is None
    for group in ("model", "scheduler", "trainer", "data", "callbacks"):
        assert cfg[group] == reference[group], group


def test_own_data_gets_the_reference_networks_and_run_length(compose_config):
    cyclegan = compose_config("data=unpaired", "data.root=/data/horse2zebra")
    assert cyclegan.model.generator.netG == "resnet_9blocks" and cyclegan.trainer.max_epochs == 200
    assert (cyclegan.data.load_size, cyclegan.data.crop_size) == (286, 256)
    cut = compose_config("model=cut", "data=unpaired", "data.root=/data/horse2zebra")
    assert (cut.model.generator.ngf, cut.model.generator.n_blocks, cut.trainer.max_epochs) == (64, 9, 400)
    # The embedded data keeps its quick start; a sweep mixing both kinds of data is refused.
    assert compose_config().model.generator.netG == "unet_64"
    with pytest.raises(Exception, match="mixes the embedded data and other data"):
        compose_config("data=embedded_cyclegan,unpaired")
