"""Weights files are found where torch looks, checked against the architecture, and missing ones explained."""

from __future__ import annotations

import urllib.error
from pathlib import Path

import pytest
import torch
from torchvision.models.vgg import cfgs, make_layers

from ganstyle.cli import main
from ganstyle.losses import build_perceptual_criterion
from ganstyle.networks.vgg import IMAGENET_MEAN, IMAGENET_STD, VGGFeatures
from ganstyle.weights import (
    WEIGHTS,
    WeightsDownloadError,
    WeightsFileError,
    WeightsNotFoundError,
    cache_dir,
    fetch_weights,
    load_checked_state_dict,
    resolve_weights,
)


@pytest.fixture
def checkpoints(tmp_path, monkeypatch) -> Path:
    """An empty torch hub cache: TORCH_HOME points into the test's temp folder."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    return tmp_path / "torch" / "hub" / "checkpoints"


def random_vgg_state(arch: str, seed: int = 0) -> dict[str, torch.Tensor]:
    """A randomly initialised VGG trunk under torchvision's key names (plus a stand-in classifier key)."""
    torch.manual_seed(seed)
    features = make_layers(cfgs["D" if arch == "vgg16" else "E"])
    state = {f"features.{name}": value for name, value in features.state_dict().items()}
    state["classifier.6.bias"] = torch.zeros(1000)  # extra keys of the official file are allowed
    return state


def save_official(arch_or_kind: str, state, folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / WEIGHTS[arch_or_kind].file_name
    torch.save(state, path)
    return path


def test_urls_are_torchvisions_and_torch_fidelitys():
    import torchvision.models as models
    from torch_fidelity.feature_extractor_inceptionv3 import URL_INCEPTION_V3

    assert WEIGHTS["vgg16"].url == models.VGG16_Weights.IMAGENET1K_V1.url
    assert WEIGHTS["vgg19"].url == models.VGG19_Weights.IMAGENET1K_V1.url
    assert WEIGHTS["fid_inception"].url == URL_INCEPTION_V3
    assert WEIGHTS["vgg19"].file_name == "vgg19-dcbb9e9d.pth"
    assert WEIGHTS["vgg16"].hash_prefix == "397923af"


def test_cache_is_torch_hub_checkpoints_under_torch_home(checkpoints):
    assert cache_dir() == checkpoints


def test_missing_weights_error_names_file_folder_and_both_fixes(checkpoints):
    with pytest.raises(WeightsNotFoundError) as info:
        resolve_weights("vgg19")
    message = str(info.value)
    assert isinstance(info.value, ValueError)
    assert "vgg19-dcbb9e9d.pth" in message and str(checkpoints) in message
    assert "ganstyle fetch-weights --kinds vgg19" in message
    assert "loss.feature_net.weights_path=" in message
    assert "\n" not in message  # one paragraph


def test_missing_fid_inception_names_the_metrics_key(checkpoints):
    with pytest.raises(WeightsNotFoundError, match="metrics.fid_weights_path=") as info:
        resolve_weights("fid_inception")
    assert "weights-inception-2015-12-05-6726825d.pth" in str(info.value)


def test_missing_weights_stop_the_criterion_before_training(checkpoints):
    with pytest.raises(WeightsNotFoundError, match="vgg16-397923af.pth"):
        build_perceptual_criterion({"content_weight": 1.0, "feature_net": {"arch": "vgg16"}})


@pytest.mark.parametrize("arch", ["vgg16", "vgg19"])
def test_vgg_loads_the_official_file_from_the_cache(arch, checkpoints):
    state = random_vgg_state(arch)
    save_official(arch, state, checkpoints)
    net = VGGFeatures(arch, ["relu2_2", "relu3_1"])
    for name, value in net.features.state_dict().items():
        torch.testing.assert_close(value, state[f"features.{name}"])

    # Same result as torchvision's trunk on [0, 1] images with the ImageNet normalisation.
    reference = make_layers(cfgs["D" if arch == "vgg16" else "E"])
    reference.load_state_dict(
        {k.removeprefix("features."): v for k, v in state.items() if k.startswith("features.")}
    )
    x = torch.rand(1, 3, 32, 32) * 2 - 1
    normalised = ((x + 1) / 2 - torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)) / torch.tensor(
        IMAGENET_STD
    ).view(1, 3, 1, 1)
    torch.testing.assert_close(net(x)["relu3_1"], reference[:12](normalised))


def test_explicit_path_wins_over_the_cache(tmp_path, checkpoints):
    save_official("vgg16", random_vgg_state("vgg16", seed=0), checkpoints)
    explicit = tmp_path / "my-vgg16.pth"
    torch.save(random_vgg_state("vgg16", seed=1), explicit)
    assert resolve_weights("vgg16", explicit) == explicit
    net = VGGFeatures("vgg16", ["relu1_1"], weights_path=str(explicit))
    torch.testing.assert_close(net.features[0].weight, random_vgg_state("vgg16", seed=1)["features.0.weight"])


def test_missing_explicit_path_is_reported(tmp_path, checkpoints):
    with pytest.raises(WeightsNotFoundError, match="does not exist"):
        VGGFeatures("vgg16", ["relu1_1"], weights_path=str(tmp_path / "nope.pth"))


def test_a_text_file_under_the_official_name_is_rejected(checkpoints):
    checkpoints.mkdir(parents=True)
    (checkpoints / "vgg19-dcbb9e9d.pth").write_text("<html>404 Not Found</html>")
    with pytest.raises(WeightsFileError, match="not what its name says") as info:
        VGGFeatures("vgg19", ["relu1_1"])
    assert "cannot be read as a PyTorch file" in str(info.value)


def test_weights_of_another_architecture_are_rejected(checkpoints):
    save_official("vgg19", random_vgg_state("vgg16"), checkpoints)  # VGG16 weights under VGG19's name
    with pytest.raises(WeightsFileError, match="another architecture"):
        VGGFeatures("vgg19", ["relu1_1"])


def test_a_torch_file_that_is_not_a_state_dict_is_rejected(tmp_path):
    path = tmp_path / "tensor.pth"
    torch.save(torch.zeros(3), path)
    with pytest.raises(WeightsFileError, match="not a state dict"):
        load_checked_state_dict("vgg16", path)


def _fake_download(state_by_name):
    def download(url, dst, hash_prefix=None, progress=True):
        torch.save(state_by_name[url.rsplit("/", 1)[-1]], dst)

    return download


def test_fetch_downloads_into_the_cache_and_checks_the_file(checkpoints, monkeypatch):
    monkeypatch.setattr(
        torch.hub, "download_url_to_file", _fake_download({"vgg16-397923af.pth": random_vgg_state("vgg16")})
    )
    assert fetch_weights(["vgg16"]) == [checkpoints / "vgg16-397923af.pth"]
    assert resolve_weights("vgg16", download=False) == checkpoints / "vgg16-397923af.pth"


def test_fetch_removes_a_download_that_is_not_valid(checkpoints, monkeypatch):
    monkeypatch.setattr(
        torch.hub, "download_url_to_file", _fake_download({"vgg19-dcbb9e9d.pth": {"x": torch.zeros(1)}})
    )
    with pytest.raises(WeightsFileError):
        fetch_weights(["vgg19"])
    assert not (checkpoints / "vgg19-dcbb9e9d.pth").exists()


def _offline(url, dst, hash_prefix=None, progress=True):
    raise urllib.error.URLError("[Errno -3] Temporary failure in name resolution")


def test_fetch_offline_explains_how_to_carry_the_file_over(checkpoints, monkeypatch):
    monkeypatch.setattr(torch.hub, "download_url_to_file", _offline)
    with pytest.raises(WeightsDownloadError, match="offline") as info:
        fetch_weights(["fid_inception"])
    assert "copy the file" in str(info.value) and "metrics.fid_weights_path" in str(info.value)
    with pytest.raises(WeightsNotFoundError, match="name resolution"):
        resolve_weights("vgg19", download=True)


def test_fetch_weights_command(tmp_path, checkpoints, monkeypatch, capsys):
    monkeypatch.setattr(
        torch.hub, "download_url_to_file", _fake_download({"vgg16-397923af.pth": random_vgg_state("vgg16")})
    )
    assert main(["fetch-weights", "--kinds", "vgg16", "--dir", str(tmp_path / "carry")]) == 0
    assert (tmp_path / "carry" / "vgg16-397923af.pth").is_file()
    assert "vgg16-397923af.pth" in capsys.readouterr().out

    monkeypatch.setattr(torch.hub, "download_url_to_file", _offline)
    assert main(["fetch-weights", "--kinds", "vgg19"]) == 1
    assert "offline" in capsys.readouterr().err
