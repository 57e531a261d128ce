"""FID/KID plumbing equals an independent numpy/scipy computation; PSNR/SSIM work on [-1, 1] images."""

from __future__ import annotations

import logging

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn
from torchmetrics.functional.image import structural_similarity_index_measure

from ganstyle.cli import main
from ganstyle.metrics import (
    DistributionMetrics,
    build_inception_feature_extractor,
    frechet_distance,
    psnr,
    ssim,
)
from ganstyle.networks.fid_inception import inception_skeleton
from ganstyle.weights import WEIGHTS, WeightsFileError, WeightsNotFoundError


@pytest.fixture
def checkpoints(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    return tmp_path / "torch" / "hub" / "checkpoints"


class TinyFeatures(nn.Module):
    """A small random feature network ([0, 1] images -> 6 features) that counts its calls."""

    num_features = 6

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.net = nn.Sequential(
            nn.Conv2d(3, 6, 3, stride=2), nn.Tanh(), nn.AdaptiveAvgPool2d(1), nn.Flatten()
        )
        self.calls = 0

    def forward(self, x):
        assert x.min() >= 0 and x.max() <= 1  # the documented input range for custom feature modules
        self.calls += 1
        return self.net(x)


def image_batch(n: int, seed: int, shift: float = 0.0) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return (torch.rand(n, 3, 16, 16, generator=generator) * 2 - 1 + shift).clamp(-1, 1)


def numpy_stats(features: torch.Tensor):
    array = features.double().numpy()
    return array.mean(axis=0), np.cov(array, rowvar=False)


# --- Fréchet distance ----------------------------------------------------------------------------------


def test_frechet_distance_of_1d_gaussians_is_closed_form():
    # N(1, 2^2) vs N(-2, 3^2): (1 + 2)^2 + (2 - 3)^2 = 10
    assert frechet_distance(
        np.array([1.0]), np.array([[4.0]]), np.array([-2.0]), np.array([[9.0]])
    ) == pytest.approx(10.0)


def test_frechet_distance_of_diagonal_gaussians():
    mu1, mu2 = np.array([0.0, 1.0, 2.0]), np.array([1.0, 1.0, 0.0])
    s1, s2 = np.array([1.0, 4.0, 9.0]), np.array([4.0, 4.0, 1.0])
    expected = ((mu1 - mu2) ** 2).sum() + ((np.sqrt(s1) - np.sqrt(s2)) ** 2).sum()
    assert frechet_distance(mu1, np.diag(s1), mu2, np.diag(s2)) == pytest.approx(expected)


def test_pipeline_fid_equals_numpy_frechet_distance_on_the_same_features():
    features = TinyFeatures()
    metrics = DistributionMetrics(feature=features, kid=False)
    real, fake = image_batch(40, seed=1), image_batch(40, seed=2, shift=0.3)
    for chunk in real.split(16):
        metrics.update(chunk, real=True)
    for chunk in fake.split(16):
        metrics.update(chunk, real=False)
    with torch.no_grad():
        f_real, f_fake = features((real + 1) / 2), features((fake + 1) / 2)
    expected = frechet_distance(*numpy_stats(f_real), *numpy_stats(f_fake))
    assert expected > 1e-4
    assert metrics.compute()["fid"] == pytest.approx(expected, rel=1e-3)


def test_identical_sets_have_fid_near_zero():
    metrics = DistributionMetrics(feature=TinyFeatures(), kid=False)
    images = image_batch(30, seed=3)
    metrics.update(images, real=True)
    metrics.update(images, real=False)
    assert abs(metrics.compute()["fid"]) < 1e-6


def test_real_statistics_are_computed_once_and_kept_across_epochs():
    features = TinyFeatures()
    metrics = DistributionMetrics(feature=features, kid=True, kid_subsets=5, kid_subset_size=8)
    assert not metrics.has_real_statistics
    metrics.update(image_batch(20, seed=1), real=True)
    metrics.update(image_batch(20, seed=2), real=False)
    assert features.calls == 2  # one feature pass per batch feeds both FID and KID
    first = metrics.compute()
    assert set(first) == {"fid", "kid", "kid_std"}

    metrics.reset()  # next epoch: generated images are forgotten, real statistics stay
    assert metrics.has_real_statistics and metrics.num_real == 20 and metrics.num_fake == 0
    metrics.update(image_batch(20, seed=2), real=False)
    assert features.calls == 3
    assert metrics.compute()["fid"] == pytest.approx(first["fid"], rel=1e-9)

    metrics.reset(include_real=True)
    assert metrics.num_real == 0 and metrics.num_fake == 0


def test_kid_subset_size_is_clamped_with_a_warning(caplog):
    metrics = DistributionMetrics(feature=TinyFeatures(), kid_subsets=4, kid_subset_size=1000)
    metrics.update(image_batch(12, seed=1), real=True)
    metrics.update(image_batch(10, seed=2), real=False)
    with caplog.at_level(logging.WARNING, logger="ganstyle"):
        scores = metrics.compute()
    assert np.isfinite(scores["kid"]) and np.isfinite(scores["kid_std"])
    assert "KID subset size 1000" in caplog.text and "subsets of 10" in caplog.text


def test_too_few_images_is_a_clear_error():
    metrics = DistributionMetrics(feature=TinyFeatures(), kid=False)
    metrics.update(image_batch(1, seed=1), real=True)
    with pytest.raises(ValueError, match="at least 2"):
        metrics.compute()


# --- the FID Inception and its weights -----------------------------------------------------------------


def _save_random_fid_inception(checkpoints):
    torch.manual_seed(0)
    state = inception_skeleton().state_dict()
    checkpoints.mkdir(parents=True)
    torch.save(state, checkpoints / WEIGHTS["fid_inception"].file_name)
    return state


def test_fid_inception_loads_a_file_saved_under_the_official_name(checkpoints):
    state = _save_random_fid_inception(checkpoints)
    extractor = build_inception_feature_extractor()
    torch.testing.assert_close(extractor.net.Conv2d_1a_3x3.conv.weight, state["Conv2d_1a_3x3.conv.weight"])
    torch.testing.assert_close(extractor.net.fc.bias, state["fc.bias"])
    assert extractor.num_features == 2048
    assert extractor.state_dict() == {}  # frozen weights stay out of checkpoints
    extractor.train()
    assert not extractor.training and all(not p.requires_grad for p in extractor.parameters())


@pytest.mark.slow
def test_fid_with_the_real_inception_architecture_runs_end_to_end(checkpoints):
    # About 7 s on two idle cores (the 299 px Inception pass and a 2048x2048 matrix square root).
    _save_random_fid_inception(checkpoints)
    metrics = DistributionMetrics(kid=False)  # the standard configuration: 2048-d features, from the cache
    metrics.update(image_batch(3, seed=1), real=True)
    metrics.update(image_batch(3, seed=2), real=False)
    assert np.isfinite(metrics.compute()["fid"])


def test_missing_fid_inception_fails_before_any_image_is_processed(checkpoints):
    with pytest.raises(WeightsNotFoundError, match="metrics.fid_weights_path"):
        DistributionMetrics()


def test_a_vgg_file_given_as_fid_inception_is_rejected(tmp_path, checkpoints):
    path = tmp_path / "vgg.pth"
    torch.save({"features.0.weight": torch.zeros(64, 3, 3, 3)}, path)
    with pytest.raises(WeightsFileError, match="another architecture"):
        build_inception_feature_extractor(weights_path=path)


def test_random_inception_weights_log_a_loud_warning(caplog):
    with caplog.at_level(logging.WARNING, logger="ganstyle"):
        build_inception_feature_extractor(weights="random", feature=64)
    assert "RANDOM weights" in caplog.text and "NOT comparable" in caplog.text


# --- the `ganstyle fid` command --------------------------------------------------------------------------


def _write_folder(folder, n: int, seed: int):
    folder.mkdir()
    rng = np.random.default_rng(seed)
    for i in range(n):
        Image.fromarray(rng.integers(0, 256, (20, 24, 3), dtype=np.uint8)).save(folder / f"{i}.png")


def test_fid_command_on_two_folders_with_explicit_random_weights(tmp_path, capsys):
    _write_folder(tmp_path / "a", 4, seed=1)
    _write_folder(tmp_path / "b", 3, seed=2)
    args = [
        "fid",
        str(tmp_path / "a"),
        str(tmp_path / "b"),
        "--weights",
        "random",
        "--feature",
        "64",
        "--kid",
    ]
    assert main([*args, "--batch-size", "2", "--device", "cpu"]) == 0
    out = capsys.readouterr().out
    assert "images: 4" in out and "fid " in out and "kid " in out


def test_fid_command_demands_real_weights_by_default(tmp_path, checkpoints, capsys):
    _write_folder(tmp_path / "a", 2, seed=1)
    _write_folder(tmp_path / "b", 2, seed=2)
    assert main(["fid", str(tmp_path / "a"), str(tmp_path / "b")]) == 1
    err = capsys.readouterr().err
    assert "ganstyle fetch-weights" in err and "--weights-path=" in err


# --- PSNR / SSIM ---------------------------------------------------------------------------------------------


def test_psnr_is_computed_on_the_unit_range_per_image():
    target = torch.zeros(2, 3, 8, 8)  # grey 0.5 on [0, 1]
    prediction = target.clone()
    prediction[0] += 0.2  # 0.1 on [0, 1]: MSE 0.01 -> 20 dB
    prediction[1] += 0.02  # 0.01 on [0, 1]: MSE 1e-4 -> 40 dB
    assert psnr(prediction, target).item() == pytest.approx(30.0, rel=1e-4)  # mean of per-image values


def test_ssim_is_one_for_identical_images_and_matches_torchmetrics_on_unit_range():
    a, b = image_batch(2, seed=1), image_batch(2, seed=2)
    assert ssim(a, a).item() == pytest.approx(1.0, abs=1e-5)
    expected = structural_similarity_index_measure((a + 1) / 2, (b + 1) / 2, data_range=1.0)
    torch.testing.assert_close(ssim(a, b), expected)
