"""Losses equal their reference formulas; the VGG feature network is frozen and computed once per image."""

from __future__ import annotations

import logging
import math

import pytest
import torch
from torch import nn

from ganstyle.losses import (
    AdversarialLoss,
    ContentLoss,
    MeanStdStyleLoss,
    PerceptualCriterion,
    ReconstructionLoss,
    StyleLoss,
    TotalVariationLoss,
    build_perceptual_criterion,
    gradient_penalty,
    gram_matrix,
    weighted_perceptual_terms,
)
from ganstyle.networks.vgg import DEFAULT_CONTENT_LAYERS, DEFAULT_STYLE_LAYERS, VGGFeatures, vgg_layer_names

GATYS_LAYERS = ["relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu4_2", "relu5_1", "conv4_2"]


@pytest.fixture(scope="module")
def vgg19() -> VGGFeatures:
    torch.manual_seed(0)
    return VGGFeatures("vgg19", GATYS_LAYERS, weights="random")


@pytest.fixture
def empty_torch_home(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    return tmp_path / "torch"


def images(batch: int = 2, size: int = 32, seed: int = 0) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return torch.rand(batch, 3, size, size, generator=generator) * 2 - 1


# --- perceptual terms against explicit formulas --------------------------------------------------------


def test_gram_matrix_is_feature_inner_products_over_chw():
    features = torch.randn(2, 4, 3, 5)
    gram = gram_matrix(features)
    expected = torch.empty(2, 4, 4)
    for b in range(2):
        for i in range(4):
            for j in range(4):
                expected[b, i, j] = (features[b, i] * features[b, j]).sum() / (4 * 3 * 5)
    torch.testing.assert_close(gram, expected)


def test_gram_matrix_stays_float32_under_mixed_precision():
    features = torch.randn(1, 4, 8, 8).bfloat16()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        gram = gram_matrix(features)
    assert gram.dtype == torch.float32
    torch.testing.assert_close(gram, gram_matrix(features.float()))


def test_style_loss_is_mean_over_layers_of_gram_mse():
    out = {"a": torch.randn(2, 3, 4, 4), "b": torch.randn(2, 5, 2, 2)}
    style = {"a": torch.randn(1, 3, 4, 4), "b": torch.randn(1, 5, 2, 2)}  # one style image for the batch

    def gram_mse(x, y):
        gx, gy = gram_matrix(x), gram_matrix(y).expand(x.shape[0], -1, -1)
        return ((gx - gy) ** 2).sum() / gx.numel()

    per_layer = {layer: gram_mse(out[layer], style[layer]) for layer in out}
    torch.testing.assert_close(StyleLoss(["a", "b"])(out, style), (per_layer["a"] + per_layer["b"]) / 2)
    torch.testing.assert_close(
        StyleLoss(["a", "b"], [0.25, 4.0])(out, style), 0.25 * per_layer["a"] + 4.0 * per_layer["b"]
    )
    torch.testing.assert_close(StyleLoss(["a", "b"], {"a": 1.0, "b": 0.0})(out, style), per_layer["a"])


def test_style_loss_rejects_mismatched_style_batch():
    with pytest.raises(ValueError, match="style batch"):
        StyleLoss(["a"])({"a": torch.randn(3, 2, 2, 2)}, {"a": torch.randn(2, 2, 2, 2)})


def test_content_loss_is_feature_mse():
    out, target = {"x": torch.randn(2, 3, 4, 4)}, {"x": torch.randn(2, 3, 4, 4)}
    expected = ((out["x"] - target["x"]) ** 2).sum() / out["x"].numel()
    torch.testing.assert_close(ContentLoss(["x"])(out, target), expected)


def test_total_variation_matches_neighbour_differences():
    x = torch.randn(2, 3, 5, 6)
    n_vertical, n_horizontal = 2 * 3 * 4 * 6, 2 * 3 * 5 * 5
    l1 = sum(
        abs(x[b, c, i + 1, j] - x[b, c, i, j])
        for b in range(2)
        for c in range(3)
        for i in range(4)
        for j in range(6)
    )
    l1_h = sum(
        abs(x[b, c, i, j + 1] - x[b, c, i, j])
        for b in range(2)
        for c in range(3)
        for i in range(5)
        for j in range(5)
    )
    torch.testing.assert_close(TotalVariationLoss()(x), l1 / n_vertical + l1_h / n_horizontal)
    dy, dx = x[:, :, 1:] - x[:, :, :-1], x[:, :, :, 1:] - x[:, :, :, :-1]
    torch.testing.assert_close(TotalVariationLoss(p=2)(x), (dy**2).mean() + (dx**2).mean())
    assert TotalVariationLoss()(torch.ones(1, 3, 4, 4)) == 0


# --- adversarial --------------------------------------------------------------------------------------

PRED = torch.tensor([[0.5, -1.0], [2.0, 0.0]])


def _softplus_mean(values):
    return sum(math.log1p(math.exp(v)) for v in values) / len(values)


@pytest.mark.parametrize(
    ("mode", "target_is_real", "for_discriminator", "expected"),
    [
        ("vanilla", True, True, _softplus_mean([-0.5, 1.0, -2.0, 0.0])),  # -log sigmoid(x) = softplus(-x)
        ("vanilla", False, True, _softplus_mean([0.5, -1.0, 2.0, 0.0])),  # -log(1 - sigmoid(x)) = softplus(x)
        ("vanilla", True, False, _softplus_mean([-0.5, 1.0, -2.0, 0.0])),  # non-saturating G loss
        ("lsgan", True, True, (0.25 + 4.0 + 1.0 + 1.0) / 4),
        ("lsgan", False, True, (0.25 + 1.0 + 4.0 + 0.0) / 4),
        ("lsgan", True, False, (0.25 + 4.0 + 1.0 + 1.0) / 4),
        ("hinge", True, True, (0.5 + 2.0 + 0.0 + 1.0) / 4),
        ("hinge", False, True, (1.5 + 0.0 + 3.0 + 1.0) / 4),
        ("hinge", True, False, -1.5 / 4),
        ("wgangp", True, True, -1.5 / 4),
        ("wgangp", False, True, 1.5 / 4),
        ("wgangp", True, False, -1.5 / 4),
    ],
)
def test_adversarial_loss_values_on_known_predictions(mode, target_is_real, for_discriminator, expected):
    loss = AdversarialLoss(mode)(PRED, target_is_real, for_discriminator)
    assert loss.shape == ()
    assert loss.item() == pytest.approx(expected, rel=1e-6)


@pytest.mark.parametrize("mode", ["vanilla", "lsgan", "hinge", "wgangp"])
def test_adversarial_loss_averages_patch_maps_per_image_scores_and_scales(mode):
    criterion = AdversarialLoss(mode)
    patch = torch.randn(2, 1, 6, 6)
    per_image = patch.mean(dim=(1, 2, 3))
    constant_patch = per_image.view(2, 1, 1, 1).expand(2, 1, 6, 6)
    # A constant patch map and the per-image score it repeats give the same loss.
    torch.testing.assert_close(criterion(constant_patch, True), criterion(per_image, True))
    torch.testing.assert_close(
        criterion([patch, per_image], False), (criterion(patch, False) + criterion(per_image, False)) / 2
    )


def test_unknown_adversarial_mode_lists_the_allowed_ones():
    with pytest.raises(ValueError, match="vanilla, lsgan, hinge, wgangp"):
        AdversarialLoss("wgan")


@pytest.mark.parametrize("mode", ["hinge", "wgangp"])
def test_hinge_and_wgan_generator_loss_needs_a_real_target(mode):
    with pytest.raises(ValueError, match="target_is_real=True"):
        AdversarialLoss(mode)(PRED, target_is_real=False, for_discriminator=False)


def test_label_smoothing_targets():
    loss = AdversarialLoss("lsgan", real_label=0.9)(torch.zeros(3), True)
    assert loss.item() == pytest.approx(0.81)


def _critic() -> nn.Module:
    torch.manual_seed(1)
    return nn.Sequential(nn.Conv2d(3, 4, 3, stride=2), nn.LeakyReLU(0.2), nn.Conv2d(4, 1, 3))  # patch output


def test_gradient_penalty_equals_direct_autograd_computation():
    critic, real, fake = _critic(), images(3, 8, seed=1), images(3, 8, seed=2)
    torch.manual_seed(123)
    alpha = torch.rand(3, 1, 1, 1)
    x_hat = (alpha * real + (1 - alpha) * fake).requires_grad_(True)
    (grad,) = torch.autograd.grad(critic(x_hat).sum(), x_hat)
    expected = ((grad.reshape(3, -1).norm(dim=1) - 1) ** 2).mean()

    torch.manual_seed(123)
    penalty = gradient_penalty(critic, real, fake)  # unweighted: the caller multiplies by gp_weight
    torch.testing.assert_close(10.0 * penalty, 10.0 * expected, rtol=1e-5, atol=1e-7)


def test_gradient_penalty_backpropagates_into_the_critic():
    critic = _critic()
    gradient_penalty(critic, images(2, 8, seed=1), images(2, 8, seed=2)).backward()
    weights = [p for p in critic.parameters() if p.dim() > 1]  # the last bias does not change input gradients
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in weights)


def test_reconstruction_loss_l1_and_l2():
    x, y = torch.tensor([0.0, 1.0, -1.0]), torch.tensor([0.5, 1.0, 1.0])
    assert ReconstructionLoss("l1")(x, y).item() == pytest.approx(2.5 / 3)
    assert ReconstructionLoss("l2")(x, y).item() == pytest.approx(4.25 / 3)
    with pytest.raises(ValueError, match="l1, l2"):
        ReconstructionLoss("l3")


# --- the VGG feature network --------------------------------------------------------------------------


def test_vgg_layer_names_follow_block_numbering():
    names = vgg_layer_names("vgg16")
    assert names[:5] == ["conv1_1", "relu1_1", "conv1_2", "relu1_2", "pool1"]
    assert names[-1] == "pool5" and "relu4_3" in names and "relu4_4" not in names
    assert "relu5_4" in vgg_layer_names("vgg19")


def test_vgg_features_are_frozen_and_stay_in_eval_mode(vgg19):
    assert all(not p.requires_grad for p in vgg19.parameters())
    vgg19.train()
    assert not vgg19.training and not any(m.training for m in vgg19.modules())
    x = images().requires_grad_(True)
    features = vgg19(x)
    features["relu4_2"].sum().backward()
    assert x.grad is not None and all(p.grad is None for p in vgg19.parameters())


def test_vgg_returns_requested_layers_in_one_truncated_pass(vgg19):
    features = vgg19(images())
    assert list(features) == GATYS_LAYERS
    assert features["relu1_1"].shape == (2, 64, 32, 32) and features["relu5_1"].shape == (2, 512, 2, 2)
    # conv4_2 is the pre-activation: an in-place ReLU must not have overwritten it.
    assert (features["conv4_2"] < 0).any()
    torch.testing.assert_close(features["relu4_2"], features["conv4_2"].clamp(min=0))
    assert len(vgg19.features) == vgg_layer_names("vgg19").index("relu5_1") + 1


def test_vgg_average_pooling_replaces_max_pooling():
    net = VGGFeatures("vgg16", ["relu2_1"], weights="random", pooling="avg")
    assert any(isinstance(m, nn.AvgPool2d) for m in net.modules())
    assert not any(isinstance(m, nn.MaxPool2d) for m in net.modules())


def test_vgg_rejects_unknown_layers_and_options():
    with pytest.raises(ValueError, match="relu4_4"):
        VGGFeatures("vgg16", ["relu4_4"], weights="random")
    with pytest.raises(ValueError, match="pooling"):
        VGGFeatures("vgg16", ["relu1_1"], weights="random", pooling="min")
    with pytest.raises(ValueError, match="imagenet"):
        VGGFeatures("vgg16", ["relu1_1"], weights="pretrained")


def test_random_vgg_weights_log_a_loud_warning(caplog):
    with caplog.at_level(logging.WARNING, logger="ganstyle"):
        VGGFeatures("vgg16", ["relu1_2"], weights="random")
    assert "RANDOM weights" in caplog.text and "not comparable" in caplog.text


def test_frozen_vgg_weights_are_left_out_of_checkpoints_and_load_back_strictly(vgg19):
    holder = nn.Module()
    holder.head = nn.Linear(2, 2)
    holder.criterion = PerceptualCriterion(vgg19, ["relu4_2"])
    state = holder.state_dict()
    assert set(state) == {"head.weight", "head.bias"}
    holder.load_state_dict(state)  # strict: the frozen weights are completed from the module itself
    with_vgg = {**state, **{f"criterion.feature_net.{k}": v for k, v in vgg19.named_parameters()}}
    holder.load_state_dict(with_vgg)  # an older checkpoint that does contain them also loads


# --- the perceptual criterion ------------------------------------------------------------------------


def test_zero_weights_build_nothing(empty_torch_home):
    # No weights file exists here: building a VGG would raise, so None proves nothing was built.
    assert build_perceptual_criterion({"content_weight": 0.0, "style_weight": 0.0, "feature_net": {}}) is None
    assert build_perceptual_criterion({"cycle_weight": 10.0}) is None
    tv_only = build_perceptual_criterion({"tv_weight": 1.0})
    assert tv_only.feature_net is None
    assert set(tv_only(images())) == {"tv"}


@pytest.mark.parametrize("arch", ["vgg16", "vgg19"])
def test_criterion_defaults_to_the_papers_layers(arch):
    criterion = build_perceptual_criterion(
        {"content_weight": 1.0, "style_weight": 1.0, "feature_net": {"arch": arch, "weights": "random"}}
    )
    assert criterion.content.layers == list(DEFAULT_CONTENT_LAYERS[arch])
    assert criterion.style.layers == list(DEFAULT_STYLE_LAYERS[arch])
    assert criterion.feature_net.arch == arch


def test_criterion_terms_equal_unweighted_reference_losses_and_weighting_them_gives_the_weighted_ones(vgg19):
    criterion = PerceptualCriterion(
        vgg19,
        content_layers=["relu4_2"],
        style_layers=["relu1_1", "relu3_1"],
        style_layer_weights=[2.0, 0.5],
        tv=True,
    )
    output, content, style = images(seed=1), images(seed=2), images(1, seed=3)
    terms = criterion(output, content=content, style=style)
    f_out, f_content, f_style = vgg19(output), vgg19(content), vgg19(style)
    content_ref = ((f_out["relu4_2"] - f_content["relu4_2"]) ** 2).mean()
    # The per-layer weights belong to the style term's definition: they stay inside it.
    style_ref = sum(
        w * ((gram_matrix(f_out[layer]) - gram_matrix(f_style[layer])) ** 2).mean()
        for layer, w in [("relu1_1", 2.0), ("relu3_1", 0.5)]
    )
    torch.testing.assert_close(terms["content"], content_ref)
    torch.testing.assert_close(terms["style"], style_ref)
    torch.testing.assert_close(terms["tv"], TotalVariationLoss()(output))
    weighted = weighted_perceptual_terms(
        terms, {"content_weight": 3.0, "style_weight": 1e4, "tv_weight": 0.1}
    )
    torch.testing.assert_close(weighted["content"], 3.0 * content_ref)
    torch.testing.assert_close(weighted["style"], 1e4 * style_ref)
    torch.testing.assert_close(weighted["tv"], 0.1 * TotalVariationLoss()(output))


def test_built_criterion_returns_the_same_terms_whatever_the_weights():
    """The loss weights only switch terms on: the criterion's terms are unweighted."""
    output, content, style = images(seed=1), images(seed=2), images(1, seed=3)
    terms = []
    for scale in (1.0, 1.0e4):
        torch.manual_seed(0)
        criterion = build_perceptual_criterion(
            {
                "content_weight": 2.0 * scale,
                "style_weight": 3.0 * scale,
                "tv_weight": 0.5 * scale,
                "feature_net": {"arch": "vgg16", "weights": "random"},
            }
        )
        terms.append(criterion(output, content=content, style=style))
    assert set(terms[0]) == {"content", "style", "tv"}
    for name in terms[0]:
        assert torch.equal(terms[0][name], terms[1][name]), name


def test_mean_std_style_loss_is_adains_sum_over_layers_of_mean_and_deviation_errors(vgg19):
    layers = ["relu1_1", "relu2_1", "relu3_1", "relu4_1"]
    loss = MeanStdStyleLoss(layers, [1.0] * len(layers))
    output, style = vgg19(images(2, seed=1)), vgg19(images(2, seed=2))

    def mean_std(x):
        flat = x.reshape(x.shape[0], x.shape[1], -1)
        return flat.mean(2), (flat.var(2, unbiased=True) + 1e-5).sqrt()

    expected = 0.0
    for layer in layers:
        (mo, so), (ms, ss) = mean_std(output[layer]), mean_std(style[layer])
        expected = expected + ((mo - ms) ** 2).mean() + ((so - ss) ** 2).mean()
    torch.testing.assert_close(loss(output, style), expected)


def test_criterion_runs_vgg_once_for_the_output_and_once_for_the_targets(vgg19):
    criterion = PerceptualCriterion(vgg19, ["relu4_2"], ["relu1_1", "relu2_1"])
    batches = []
    handle = vgg19.register_forward_hook(lambda _m, args, _out: batches.append(args[0].shape[0]))
    try:
        criterion(images(2, seed=1), content=images(2, seed=2), style=images(2, seed=3))
        assert batches == [2, 4]  # output with grad; content and style together, no graph
        batches.clear()
        criterion.set_style(images(1, seed=3))
        batches.clear()
        criterion(images(2, seed=1), content=images(2, seed=2))
        assert batches == [2, 2]  # cached style Grams: the style image is not processed again
    finally:
        handle.remove()


def test_cached_style_grams_give_the_same_loss_as_passing_the_style(vgg19):
    criterion = PerceptualCriterion(vgg19, [], ["relu1_1", "relu2_1"])
    output, style = images(2, seed=1), images(1, seed=4)
    direct = criterion(output, style=style)["style"]
    criterion.set_style(style)
    torch.testing.assert_close(criterion(output)["style"], direct)
    criterion.set_style(None)
    with pytest.raises(ValueError, match="set_style"):
        criterion(output)


def test_criterion_gradients_reach_the_output_not_the_targets(vgg19):
    criterion = PerceptualCriterion(vgg19, ["relu4_2"], ["relu1_1"])
    output = images(seed=1).requires_grad_(True)
    content, style = images(seed=2).requires_grad_(True), images(1, seed=3).requires_grad_(True)
    sum(criterion(output, content=content, style=style).values()).backward()
    assert output.grad is not None and output.grad.abs().sum() > 0
    assert content.grad is None and style.grad is None


def test_criterion_checks_layers_and_inputs(vgg19):
    with pytest.raises(ValueError, match="relu2_2"):
        PerceptualCriterion(vgg19, ["relu2_2"])
    criterion = PerceptualCriterion(vgg19, ["relu4_2"])
    with pytest.raises(ValueError, match="content image"):
        criterion(images())


def test_our_weights_relate_to_pytorch_examples_as_documented():
    """pytorch/examples' fast_neural_style loss (images in [0, 255], content 1e5, style 1e10 summed over
    4 layers) equals ours with content_weight=1e5 and style_weight=4e10 (mean over layers)."""
    torch.manual_seed(0)
    vgg = VGGFeatures("vgg16", ["relu1_2", "relu2_2", "relu3_3", "relu4_3"], weights="random")
    output, content, style = images(2, seed=1), images(2, seed=2), images(1, seed=3)

    # Their pipeline, written out: [0, 255] images, normalize_batch (divide by 255, ImageNet mean/std).
    mean, std = (
        torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1),
        torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1),
    )
    indices = {"relu1_2": 3, "relu2_2": 8, "relu3_3": 15, "relu4_3": 22}  # torchvision vgg16.features

    def their_features(x):
        h, out = ((x + 1) * 127.5 / 255.0 - mean) / std, {}
        for i, module in enumerate(vgg.features):
            h = module(h)
            out.update({name: h for name, index in indices.items() if index == i})
        return out

    fy, fx, fs = their_features(output), their_features(content), their_features(style)
    their_content = 1e5 * ((fy["relu2_2"] - fx["relu2_2"]) ** 2).mean()
    their_style = 1e10 * sum(
        ((gram_matrix(fy[k]) - gram_matrix(fs[k]).expand(2, -1, -1)) ** 2).mean() for k in indices
    )

    ours = PerceptualCriterion(vgg, DEFAULT_CONTENT_LAYERS["vgg16"], DEFAULT_STYLE_LAYERS["vgg16"])
    terms = weighted_perceptual_terms(
        ours(output, content=content, style=style), {"content_weight": 1e5, "style_weight": 4e10}
    )
    torch.testing.assert_close(terms["content"], their_content, rtol=1e-4, atol=0)
    torch.testing.assert_close(terms["style"], their_style, rtol=1e-4, atol=0)
