"""The reference code's generator files as ganstyle checkpoints, the published generators one command
away, and `ganstyle evaluate` at the papers' protocol.

The state dicts are built under the reference's parameter names and shapes, recorded from its
networks.py in tests/data/reference_generator_keys.json (ResNet-9 without and with CUT's anti-aliasing,
U-Net 256); ganstyle's own networks carrying the same tensors must give the same outputs.
"""

from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import ganstyle
from ganstyle.cli import main as cli_main
from ganstyle.inference.loading import CheckpointError
from ganstyle.models.base import build
from ganstyle.reference.importing import ReferenceImportError, import_reference, infer_generator

REFERENCE = json.loads((Path(__file__).parent / "data" / "reference_generator_keys.json").read_text())[
    "generators"
]
OURS = {
    "cyclegan_resnet_9blocks": {
        "_target_": "ganstyle.networks.define_generator", "netG": "resnet_9blocks", "in_channels": 3,
        "out_channels": 3, "ngf": 64, "norm": "instance",
    },
    "cut_resnet_9blocks": {
        "_target_": "ganstyle.networks.ResnetGenerator", "n_blocks": 9, "in_channels": 3, "out_channels": 3,
        "ngf": 64, "norm": "instance", "antialias": True, "antialias_up": True,
    },
    "pix2pix_unet_256": {
        "_target_": "ganstyle.networks.define_generator", "netG": "unet_256", "in_channels": 3,
        "out_channels": 3, "ngf": 64, "norm": "batch", "use_dropout": True,
    },
}  # fmt: skip
MODEL_OF = {"cyclegan_resnet_9blocks": "cyclegan", "cut_resnet_9blocks": "cut", "pix2pix_unet_256": "pix2pix"}


def reference_state_dict(name: str, seed: int = 0) -> dict[str, torch.Tensor]:
    """Random tensors under the reference's names and shapes (blur filters: the reference's values)."""
    generator = torch.Generator().manual_seed(seed)
    state = {}
    ours = build(OURS[name]).state_dict()
    for key, shape in REFERENCE[name].items():
        if key.endswith("filt") or key.endswith("num_batches_tracked"):
            state[key] = ours[key].clone()
        elif key.endswith("running_var"):
            state[key] = torch.rand(shape, generator=generator) + 0.5
        else:
            state[key] = torch.randn(shape, generator=generator) * 0.05
    return state


def photo(size: tuple[int, int] = (64, 48)) -> Image.Image:
    pixels = np.random.default_rng(3).integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
    return Image.fromarray(pixels)


@pytest.mark.parametrize("name", sorted(REFERENCE))
def test_ganstyle_networks_have_exactly_the_reference_parameter_names_and_shapes(name):
    ours = {key: list(value.shape) for key, value in build(OURS[name]).state_dict().items()}
    assert ours == REFERENCE[name]


@pytest.mark.parametrize("name", sorted(REFERENCE))
def test_the_architecture_is_read_from_the_tensors(name):
    guess = infer_generator(reference_state_dict(name), MODEL_OF[name])
    expected = {key: value for key, value in OURS[name].items() if key != "_target_"}
    assert {key: guess.config[key] for key in expected} == expected


@pytest.mark.parametrize(
    "name",
    # One architecture in the default suite; the other two (about 10 s each) under `slow`.
    [
        pytest.param(name, marks=() if name == "cyclegan_resnet_9blocks" else pytest.mark.slow)
        for name in sorted(REFERENCE)
    ],
)
def test_an_imported_generator_gives_the_outputs_of_our_network_with_the_same_weights(name, tmp_path):
    state = reference_state_dict(name)
    weights = tmp_path / "latest_net_G.pth"
    torch.save({f"module.{key}": value for key, value in state.items()}, weights)  # a DataParallel run's file
    checkpoint = import_reference(weights, MODEL_OF[name], tmp_path / "imported.ckpt")
    network = build(OURS[name])
    network.load_state_dict(state)
    network.eval()
    pixels = torch.rand(1, 3, 256, 256)  # the stylizer's convention: [0, 1]; the network's: [-1, 1]
    image = pixels * 2 - 1
    stylizer = ganstyle.load(checkpoint, device="cpu", tile=None)
    with torch.no_grad():
        expected = network(image)
    got = stylizer.stylize_tensor(pixels)
    expected = ((expected + 1) / 2).clamp(0, 1)
    assert torch.allclose(got, expected, atol=1e-5), (got - expected).abs().max()


def test_old_instance_norm_statistics_in_a_file_are_dropped_as_the_reference_does(tmp_path):
    state = reference_state_dict("cyclegan_resnet_9blocks")
    state["model.2.running_mean"] = torch.zeros(64)  # PyTorch < 0.4 saved these for InstanceNorm
    state["model.2.running_var"] = torch.ones(64)
    torch.save(state, tmp_path / "old.pth")
    import_reference(tmp_path / "old.pth", "cyclegan", tmp_path / "old.ckpt")


def test_only_imported_directions_are_offered_and_both_files_fill_both(tmp_path):
    torch.save(reference_state_dict("cyclegan_resnet_9blocks", 1), tmp_path / "latest_net_G_A.pth")
    torch.save(reference_state_dict("cyclegan_resnet_9blocks", 2), tmp_path / "latest_net_G_B.pth")
    one = import_reference(tmp_path / "latest_net_G_A.pth", "cyclegan", tmp_path / "a.ckpt")
    assert ganstyle.load(one, device="cpu") is not None
    with pytest.raises(
        CheckpointError, match="imported from the reference code's generator file for AtoB only"
    ):
        ganstyle.load(one, direction="BtoA", device="cpu")
    both = cli_main(
        ["import-reference", str(tmp_path / "latest_net_G_A.pth"), "--model", "cyclegan", "--generator-ba",
         str(tmp_path / "latest_net_G_B.pth"), "--output", str(tmp_path / "both.ckpt")]
    )  # fmt: skip
    assert both == 0
    b_to_a = ganstyle.load(tmp_path / "both.ckpt", direction="BtoA", device="cpu", tile=None)
    assert b_to_a(photo()).size == (64, 48)


@pytest.mark.slow
def test_stylize_and_export_take_an_imported_checkpoint(tmp_path):
    torch.save(reference_state_dict("cut_resnet_9blocks"), tmp_path / "latest_net_G.pth")
    checkpoint = tmp_path / "cut.ckpt"
    assert (
        cli_main(
            ["import-reference", str(tmp_path / "latest_net_G.pth"), "--model", "cut", "-o", str(checkpoint)]
        )
        == 0
    )
    (tmp_path / "in").mkdir()
    photo().save(tmp_path / "in" / "a.png")
    assert (
        cli_main(["stylize", str(checkpoint), str(tmp_path / "in"), "--output", str(tmp_path / "out")]) == 0
    )
    assert Image.open(tmp_path / "out" / "a.png").size == (64, 48)
    assert cli_main(["export", str(checkpoint), "--format", "torchscript"]) == 0


@pytest.mark.parametrize(
    ("make", "model", "expected"),
    [
        (lambda: {"model.0.weight": torch.zeros(64, 3, 4, 4)}, "cyclegan", "not a reference generator"),
        (
            lambda: reference_state_dict("pix2pix_unet_256"),
            "cut",
            "No cut generator the reference code builds",
        ),
        (lambda: "not tensors", "cyclegan", "does not hold a state dict of tensors"),
    ],
)
def test_a_file_that_is_not_such_a_generator_is_refused_saying_what_it_holds(
    tmp_path, make, model, expected, capsys
):
    torch.save(make(), tmp_path / "x.pth")
    code = cli_main(
        ["import-reference", str(tmp_path / "x.pth"), "--model", model, "-o", str(tmp_path / "x.ckpt")]
    )
    assert code == 1 and expected in " ".join(capsys.readouterr().err.split())
    assert not (tmp_path / "x.ckpt").exists()


def test_a_truncated_reference_file_is_refused(tmp_path):
    torch.save(reference_state_dict("cyclegan_resnet_9blocks"), tmp_path / "full.pth")
    data = (tmp_path / "full.pth").read_bytes()
    (tmp_path / "cut.pth").write_bytes(data[: len(data) // 3])
    with pytest.raises(ReferenceImportError, match="not a truncated download"):
        import_reference(tmp_path / "cut.pth", "cyclegan", tmp_path / "x.ckpt")


# --- published generators, fetched ----------------------------------------------------------------
def test_models_fetch_downloads_a_published_generator_and_imports_it(server, tmp_path, monkeypatch, capsys):
    import yaml

    buffer = io.BytesIO()
    torch.save(reference_state_dict("cyclegan_resnet_9blocks"), buffer)
    server.files["/horse2zebra.pth"] = buffer.getvalue()
    tar_buffer = io.BytesIO()
    with tarfile.open(fileobj=tar_buffer, mode="w") as archive:
        pth = io.BytesIO()
        torch.save(reference_state_dict("cut_resnet_9blocks"), pth)
        info = tarfile.TarInfo("checkpoints/horse2zebra_cut_pretrained/latest_net_G.pth")
        info.size = len(pth.getvalue())
        archive.addfile(info, io.BytesIO(pth.getvalue()))
    server.files["/pretrained_models.tar"] = tar_buffer.getvalue()
    catalogue_file = tmp_path / "catalogue.yaml"
    catalogue_file.write_text(
        yaml.safe_dump(
            {
                "models": {
                    "horse2zebra": {"urls": [server.url("/missing.pth"), server.url("/horse2zebra.pth")]},
                    "horse2zebra_cut": {"urls": [server.url("/pretrained_models.tar")]},
                    "zebra2horse": {"urls": [server.url("/horse2zebra.pth")]},
                }
            }
        )
    )
    monkeypatch.setenv("GANSTYLE_CATALOGUE", str(catalogue_file))
    assert cli_main(["models", "fetch", "horse2zebra", "--output", str(tmp_path / "h2z.ckpt")]) == 0
    assert cli_main(["models", "fetch", "horse2zebra_cut", "--output", str(tmp_path / "h2z_cut.ckpt")]) == 0
    assert cli_main(["models", "fetch", "zebra2horse", "--output", str(tmp_path / "z2h.ckpt")]) == 0
    for name in ("h2z.ckpt", "h2z_cut.ckpt", "z2h.ckpt"):
        assert ganstyle.load(tmp_path / name, device="cpu", tile=None)(photo()).size == (64, 48)
    with pytest.raises(CheckpointError, match="for BtoA only"):  # zebra -> horse is the dataset's B -> A
        ganstyle.load(tmp_path / "z2h.ckpt", direction="AtoB", device="cpu")
    names = sorted(path.name for path in tmp_path.iterdir())
    assert names == ["catalogue.yaml", "h2z.ckpt", "h2z_cut.ckpt", "z2h.ckpt"]
    assert cli_main(["models", "list"]) == 0
    assert "style_monet" in capsys.readouterr().out


@pytest.fixture
def server():
    from test_reference_datasets import ArchiveServer

    running = ArchiveServer()
    running.thread.start()
    yield running
    running.httpd.shutdown()
    running.httpd.server_close()


# --- evaluation at the papers' protocol -------------------------------------------------------------
def small_unpaired(root: Path) -> Path:
    for split, count in (("testA", 3), ("testB", 4)):
        (root / split).mkdir(parents=True)
        for index in range(count):
            photo((40 + index, 30)).save(root / split / f"{index}.png")
    return root


def small_generator_file(path: Path, seed: int) -> Path:
    """A reference-layout CycleGAN generator small enough for the default suite (ResNet, 1 block, ngf 8)."""
    torch.manual_seed(seed)
    network = build({**OURS["cyclegan_resnet_9blocks"], "netG": "resnet_1blocks", "ngf": 8})
    torch.save(network.state_dict(), path)
    return path


def test_evaluate_scores_each_direction_of_a_checkpoint_beside_the_published_numbers(tmp_path, capsys):
    import yaml

    small_generator_file(tmp_path / "G_A.pth", 1)
    small_generator_file(tmp_path / "G_B.pth", 2)
    checkpoint = import_reference(
        tmp_path / "G_A.pth", "cyclegan", tmp_path / "h2z.ckpt", weights_ba=tmp_path / "G_B.pth"
    )
    datasets = tmp_path / "datasets"
    small_unpaired(datasets / "horse2zebra")
    command = ["evaluate", str(checkpoint), "--dataset", "horse2zebra", "--weights", "random", "--size", "32"]
    import os

    os.environ["GANSTYLE_DATASETS"] = str(datasets)
    try:
        assert cli_main(command) == 0
    finally:
        del os.environ["GANSTYLE_DATASETS"]
    page = (tmp_path / "h2z_evaluation.md").read_text()
    assert (
        "every image resized to 32x32, no flips" in page and "random weights: the values mean nothing" in page
    )
    rows = [line for line in page.splitlines() if line.startswith("| h2z.ckpt")]
    assert [row.split("|")[3].strip() for row in rows] == ["AtoB", "BtoA"]
    assert [row.split("|")[4].strip() for row in rows] == ["fid_B", "fid_A"]
    assert all(
        row.split("|")[9].strip() == "3" if "AtoB" in row else row.split("|")[9].strip() == "4"
        for row in rows
    )
    published = yaml.safe_load((Path(ganstyle.__file__).parent / "reference" / "catalogue.yaml").read_text())[
        "datasets"
    ]["horse2zebra"]["published"]["fid_B"]
    for entry in published:
        assert f"| fid_B | {entry['method']} | {entry['value']} | {entry['source']} |" in page
    assert "h2z_evaluation.md" in capsys.readouterr().out


def test_evaluate_without_a_test_set_or_dataset_says_which_to_pass(tmp_path, capsys):
    torch.save(reference_state_dict("cut_resnet_9blocks"), tmp_path / "G.pth")
    checkpoint = import_reference(tmp_path / "G.pth", "cut", tmp_path / "cut.ckpt")
    assert cli_main(["evaluate", str(checkpoint)]) == 1
    assert "pass --dataset NAME" in " ".join(capsys.readouterr().err.split())
    assert cli_main(["evaluate", str(checkpoint), "--data-root", str(tmp_path)]) == 1
    assert "has no test split" in " ".join(capsys.readouterr().err.split())


@pytest.mark.slow
def test_fetch_then_train_then_evaluate_end_to_end(server, tmp_path):
    """What README's "Reproduce a paper" does, at test sizes: fetch, train the dataset's experiment under
    debug=smoke, evaluate every checkpoint of the run."""
    import subprocess
    import sys

    import yaml
    from helpers import run_train, user_environment
    from test_reference_datasets import UNPAIRED_COUNTS, unpaired_zip

    server.files["/horse2zebra.zip"] = unpaired_zip()
    catalogue_file = tmp_path / "catalogue.yaml"
    catalogue_file.write_text(
        yaml.safe_dump(
            {
                "datasets": {
                    "horse2zebra": {"urls": [server.url("/horse2zebra.zip")], "counts": UNPAIRED_COUNTS}
                }
            }
        )
    )
    env = {"GANSTYLE_CATALOGUE": str(catalogue_file), "GANSTYLE_DATASETS": str(tmp_path / "datasets")}

    def ganstyle_cli(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "-m", "ganstyle.cli", *args],
            cwd=tmp_path,
            env=user_environment(tmp_path, tmp_path / "cache", **env),
            capture_output=True,
            text=True,
            timeout=300,
        )

    fetched = ganstyle_cli("datasets", "fetch", "horse2zebra")
    assert fetched.returncode == 0, fetched.stderr
    assert "python train.py experiment=horse2zebra trainer=gpu" in fetched.stdout
    run_dir = tmp_path / "run"
    trained = run_train(
        "experiment=horse2zebra", "debug=smoke", "model.generator.ngf=8", "model.generator.netG=resnet_1blocks",
        "model.discriminator.ndf=8", "data.load_size=36", "data.crop_size=32", "data.num_workers=0",
        f"hydra.run.dir={run_dir}", cwd=tmp_path, cache=tmp_path / "cache", env=env,
    )  # fmt: skip
    assert trained.returncode == 0, trained.stderr[-3000:]
    evaluated = ganstyle_cli(
        "evaluate", str(run_dir), "--every-checkpoint", "--weights", "random", "--size", "32"
    )
    assert evaluated.returncode == 0, evaluated.stderr
    page = (run_dir / "evaluation.md").read_text()
    assert "| fid_B | CUT | 45.5 |" in page and "best, last" in page
