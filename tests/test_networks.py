"""Networks match the papers' reference code: parameter counts, shapes, ranges, init and errors."""

import pytest
import torch
import torch.nn.functional as F
from torch import nn

# ganstyle.networks imports ganstyle first, which installs the torchvision import fix.
from ganstyle.networks import (
    AdainDecoder,
    DCGANDiscriminator,
    DCGANGenerator,
    NLayerDiscriminator,
    PixelDiscriminator,
    ResnetGenerator,
    TransformerNet,
    UnetGenerator,
    UnetSkipConnectionBlock,
    adaptive_instance_norm,
    calc_mean_std,
    define_generator,
    get_norm_layer,
    init_weights,
    uses_bias,
)


def n_params(net: nn.Module) -> int:
    return sum(p.numel() for p in net.parameters())


def conv_weights(net: nn.Module) -> torch.Tensor:
    return torch.cat([m.weight.flatten() for m in net.modules() if isinstance(m, nn.modules.conv._ConvNd)])


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


# --- parameter counts (REFERENCE.md) -------------------------------------------------------------


@pytest.mark.parametrize(
    ("build", "expected"),
    [
        pytest.param(lambda: ResnetGenerator(n_blocks=9, norm="instance"), 11_378_179, id="resnet_9blocks"),
        pytest.param(lambda: ResnetGenerator(n_blocks=6, norm="instance"), 7_837_699, id="resnet_6blocks"),
        pytest.param(
            lambda: ResnetGenerator(n_blocks=9, norm="batch"), 11_383_427, id="resnet_9blocks_batch"
        ),
        pytest.param(lambda: UnetGenerator(num_downs=8, norm="batch"), 54_413_955, id="unet_256"),
        pytest.param(lambda: UnetGenerator(num_downs=7, norm="batch"), 41_828_995, id="unet_128"),
        pytest.param(
            lambda: NLayerDiscriminator(in_channels=3, norm="instance"), 2_764_737, id="patchgan_70"
        ),
        pytest.param(
            lambda: NLayerDiscriminator(in_channels=6, norm="batch"), 2_768_705, id="patchgan_pix2pix_pair"
        ),
        pytest.param(lambda: PixelDiscriminator(in_channels=3, norm="instance"), 8_705, id="pixel_gan"),
        pytest.param(TransformerNet, 1_679_235, id="transformer_net"),
        pytest.param(AdainDecoder, 3_505_219, id="adain_decoder"),
        pytest.param(DCGANGenerator, 3_576_704, id="dcgan_generator_64"),
        pytest.param(DCGANDiscriminator, 2_765_568, id="dcgan_discriminator_64"),
    ],
)
def test_parameter_count_matches_reference_code(build, expected):
    assert n_params(build()) == expected


def test_cyclegan_two_generators_and_two_discriminators_total_28_285_832_parameters():
    assert 2 * n_params(ResnetGenerator()) + 2 * n_params(NLayerDiscriminator()) == 28_285_832


def test_state_dict_keys_follow_reference_layout_so_published_weights_load():
    resnet_keys = ResnetGenerator().state_dict().keys()
    assert {
        "model.1.weight",
        "model.10.conv_block.1.weight",
        "model.19.weight",
        "model.26.weight",
    } <= resnet_keys
    assert "model.model.1.model.3.model.1.weight" in UnetGenerator(num_downs=5, ngf=4).state_dict()
    assert {
        "res1.conv1.conv2d.weight",
        "in1.weight",
        "deconv3.conv2d.bias",
    } <= TransformerNet().state_dict().keys()
    assert {"1.weight", "28.bias"} <= AdainDecoder().state_dict().keys()  # a bare Sequential, as published


# --- shapes and ranges ---------------------------------------------------------------------------


def test_resnet_generator_keeps_input_size_and_stays_in_tanh_range():
    net = ResnetGenerator(in_channels=3, out_channels=1, ngf=8, n_blocks=2)
    out = net(100 * torch.randn(2, 3, 32, 48))
    assert out.shape == (2, 1, 32, 48)
    assert isinstance(net.model[-1], nn.Tanh)
    assert out.abs().max() <= 1.0
    assert ResnetGenerator.size_multiple == 4


@pytest.mark.parametrize("num_downs", [5, 8])
def test_unet_generator_keeps_input_size_at_its_size_multiple_and_stays_in_tanh_range(num_downs):
    net = UnetGenerator(num_downs=num_downs, ngf=4)
    side = net.size_multiple
    assert side == 2**num_downs
    out = net(100 * torch.randn(2, 3, side, side))
    assert out.shape == (2, 3, side, side)
    assert out.abs().max() <= 1.0


def test_unet_skip_branch_carries_leaky_relu_of_input_like_reference_in_place_activation():
    block = UnetSkipConnectionBlock(4, 8, innermost=True, norm="instance")
    x = torch.randn(1, 4, 8, 8)
    out = block(x)
    assert out.shape == (1, 8, 8, 8)
    torch.testing.assert_close(out[:, :4], F.leaky_relu(x, 0.2))


def test_patchgan_gives_30x30_logits_for_256_input():
    net = NLayerDiscriminator(ndf=8)
    assert net(torch.randn(1, 3, 256, 256)).shape == (1, 1, 30, 30)
    assert NLayerDiscriminator.output_size(256) == 30


@pytest.mark.parametrize(("side", "n_layers"), [(64, 3), (70, 3), (64, 2), (128, 4)])
def test_patchgan_output_size_helper_matches_forward(side, n_layers):
    net = NLayerDiscriminator(ndf=4, n_layers=n_layers, norm="batch")
    expected = NLayerDiscriminator.output_size(side, n_layers)
    assert net(torch.randn(2, 3, side, side)).shape == (2, 1, expected, expected)


def test_pixel_discriminator_scores_every_pixel():
    assert PixelDiscriminator(in_channels=6, ndf=8)(torch.randn(2, 6, 10, 12)).shape == (2, 1, 10, 12)


def test_transformer_net_keeps_size_and_has_no_tanh():
    net = TransformerNet()
    assert net(torch.rand(1, 3, 32, 40) * 2 - 1).shape == (1, 3, 32, 40)
    assert not any(isinstance(m, nn.Tanh) for m in net.modules())
    assert TransformerNet.size_multiple == 4


def test_adain_decoder_upsamples_relu4_1_features_by_its_size_multiple():
    decoder = AdainDecoder()
    assert decoder(torch.randn(1, 512, 4, 5)).shape == (1, 3, 4 * 8, 5 * 8)
    assert decoder.size_multiple == 8
    assert not isinstance(decoder[-1], nn.ReLU)  # the image layer is linear


@pytest.mark.parametrize("image_size", [16, 32, 64, 128])
def test_dcgan_generator_makes_images_of_image_size_in_tanh_range(image_size):
    net = DCGANGenerator(latent_dim=16, ngf=4, image_size=image_size)
    out = net(torch.randn(3, 16))
    assert out.shape == (3, 3, image_size, image_size)
    assert out.abs().max() <= 1.0
    torch.testing.assert_close(net.eval()(torch.ones(2, 16)), net(torch.ones(2, 16, 1, 1)))


@pytest.mark.parametrize("norm", ["batch", "layer", "instance", "none"])
@pytest.mark.parametrize("image_size", [16, 64])
def test_dcgan_discriminator_returns_one_logit_per_image(image_size, norm):
    net = DCGANDiscriminator(ndf=4, image_size=image_size, norm=norm)
    assert net(torch.randn(3, 3, image_size, image_size)).shape == (3,)


@pytest.mark.parametrize("norm", ["layer", "instance", "none"])
def test_dcgan_critic_without_batch_norm_scores_each_sample_independently(norm):
    # WGAN-GP's penalty needs d D(x_i) / d x_j = 0 for i != j, which batch norm would break.
    net = DCGANDiscriminator(ndf=4, image_size=16, norm=norm)
    x = torch.randn(3, 3, 16, 16, requires_grad=True)
    (grad,) = torch.autograd.grad(net(x)[0], x)
    assert grad[0].abs().sum() > 0
    assert grad[1:].abs().sum() == 0


# --- dropout, bias and normalisation choices -----------------------------------------------------


def count(net: nn.Module, kind: type) -> int:
    return sum(isinstance(m, kind) for m in net.modules())


def test_resnet_generator_dropout_only_when_asked_one_per_block():
    assert count(ResnetGenerator(ngf=4, n_blocks=3), nn.Dropout) == 0
    assert count(ResnetGenerator(ngf=4, n_blocks=3, use_dropout=True), nn.Dropout) == 3


def test_unet_dropout_on_by_default_in_the_three_inner_512_blocks_of_unet_256():
    assert count(UnetGenerator(num_downs=8, ngf=4), nn.Dropout) == 3
    assert count(UnetGenerator(num_downs=8, ngf=4, use_dropout=False), nn.Dropout) == 0


def test_conv_bias_only_when_norm_has_no_affine_shift():
    def hidden_conv_has_bias(norm: str) -> bool:
        return ResnetGenerator(ngf=4, n_blocks=1, norm=norm).model[1].bias is not None

    assert hidden_conv_has_bias("instance") and hidden_conv_has_bias("none")
    assert not hidden_conv_has_bias("batch") and not hidden_conv_has_bias("layer")
    assert [uses_bias(n) for n in ("instance", "batch", "none", "layer")] == [True, False, True, False]


def test_get_norm_layer_builds_reference_norm_layers():
    instance = get_norm_layer("instance")(8)
    batch = get_norm_layer("batch")(8)
    assert (
        isinstance(instance, nn.InstanceNorm2d) and not instance.affine and not instance.track_running_stats
    )
    assert isinstance(batch, nn.BatchNorm2d) and batch.affine and batch.track_running_stats
    assert isinstance(get_norm_layer("none")(8), nn.Identity)
    assert isinstance(get_norm_layer("layer")(8), nn.GroupNorm)
    assert n_params(instance) == 0


# --- initialisation ------------------------------------------------------------------------------


def test_default_init_draws_conv_weights_from_normal_0_002_and_zeroes_biases():
    net = ResnetGenerator(ngf=16, n_blocks=2)
    weights = conv_weights(net)
    assert abs(weights.std().item() - 0.02) < 0.001
    assert abs(weights.mean().item()) < 0.001
    assert all((m.bias == 0).all() for m in net.modules() if isinstance(m, nn.Conv2d) and m.bias is not None)


def test_init_centres_batch_norm_scales_on_one():
    net = UnetGenerator(num_downs=5, ngf=16)
    scales = torch.cat([m.weight for m in net.modules() if isinstance(m, nn.BatchNorm2d)])
    assert abs(scales.mean().item() - 1.0) < 0.01
    assert 0.01 < scales.std().item() < 0.03
    assert all((m.bias == 0).all() for m in net.modules() if isinstance(m, nn.BatchNorm2d))


def test_init_weights_kaiming_and_orthogonal_follow_their_definitions():
    linear = init_weights(nn.Linear(256, 64), "kaiming")
    assert abs(linear.weight.std().item() - (2 / 256) ** 0.5) < 0.01
    linear = init_weights(nn.Linear(256, 64), "orthogonal", init_gain=1.0)
    torch.testing.assert_close(linear.weight @ linear.weight.T, torch.eye(64), atol=1e-4, rtol=0)
    conv = init_weights(nn.Conv2d(64, 64, 3), "xavier", init_gain=1.0)
    assert abs(conv.weight.std().item() - (2 / (2 * 64 * 9)) ** 0.5) < 0.005


def test_transformer_net_keeps_pytorch_default_init_unless_asked():
    first = TransformerNet().conv1.conv2d  # PyTorch default: uniform in +-1/sqrt(fan_in), biases too
    bound = 1 / (3 * 9 * 9) ** 0.5
    assert first.weight.abs().max() <= bound and first.bias.abs().sum() > 0
    net = TransformerNet(init_type="normal")
    assert abs(conv_weights(net).std().item() - 0.02) < 0.001
    assert (net.conv1.conv2d.bias == 0).all()


# --- AdaIN ---------------------------------------------------------------------------------------


def test_adain_output_takes_style_channel_mean_and_std():
    content = torch.randn(2, 8, 16, 16) * 3 + 1
    style = torch.randn(2, 8, 12, 10) * torch.rand(1, 8, 1, 1) * 5 + torch.randn(1, 8, 1, 1)
    out = adaptive_instance_norm(content, style)
    assert out.shape == content.shape
    style_mean, style_std = calc_mean_std(style)
    out_mean, out_std = calc_mean_std(out)
    torch.testing.assert_close(out_mean, style_mean, atol=1e-4, rtol=0)
    torch.testing.assert_close(out_std, style_std, atol=1e-3, rtol=1e-3)


def test_adain_with_its_own_statistics_returns_the_content():
    content = torch.randn(2, 4, 8, 8) * 2
    torch.testing.assert_close(adaptive_instance_norm(content, content), content, atol=1e-4, rtol=1e-4)


def test_adain_broadcasts_a_single_style_over_the_content_batch():
    out = adaptive_instance_norm(torch.randn(3, 4, 8, 8), torch.randn(1, 4, 6, 6))
    assert out.shape == (3, 4, 8, 8)


def test_calc_mean_std_uses_unbiased_variance_plus_eps_like_reference():
    feat = torch.randn(2, 3, 5, 5)
    mean, std = calc_mean_std(feat, eps=1e-5)
    flat = feat.flatten(2)
    torch.testing.assert_close(std.flatten(1), (flat.var(dim=2, unbiased=True) + 1e-5).sqrt())
    torch.testing.assert_close(mean.flatten(1), flat.mean(dim=2))


# --- argument errors -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("build", "names"),
    [
        pytest.param(lambda: ResnetGenerator(n_blocks=-1), ["n_blocks", ">= 0"], id="negative_blocks"),
        pytest.param(lambda: ResnetGenerator(ngf=0), ["ngf", ">= 1"], id="zero_ngf"),
        pytest.param(lambda: ResnetGenerator(ngf=2.5), ["ngf"], id="float_ngf"),
        pytest.param(lambda: ResnetGenerator(in_channels=True), ["in_channels"], id="bool_channels"),
        pytest.param(lambda: ResnetGenerator(norm="group"), ["'group'", "'instance'", "'batch'"], id="norm"),
        pytest.param(lambda: ResnetGenerator(padding_type="circular"), ["'circular'", "'reflect'"], id="pad"),
        pytest.param(lambda: ResnetGenerator(init_type="uniform"), ["'uniform'", "'normal'"], id="init"),
        pytest.param(lambda: ResnetGenerator(init_gain=0), ["init_gain"], id="zero_gain"),
        pytest.param(lambda: UnetGenerator(num_downs=4), ["num_downs", ">= 5"], id="unet_num_downs"),
        pytest.param(lambda: UnetGenerator(norm="Batch"), ["'Batch'", "'batch'"], id="unet_norm_case"),
        pytest.param(lambda: NLayerDiscriminator(n_layers=-1), ["n_layers"], id="patchgan_layers"),
        pytest.param(lambda: NLayerDiscriminator(ndf=-64), ["ndf"], id="patchgan_ndf"),
        pytest.param(lambda: PixelDiscriminator(norm="spectral"), ["'spectral'"], id="pixel_norm"),
        pytest.param(lambda: TransformerNet(init_type="he"), ["'he'", "None"], id="transformer_init"),
        pytest.param(lambda: DCGANGenerator(image_size=48), ["image_size", "power of two"], id="dcgan_size"),
        pytest.param(lambda: DCGANGenerator(image_size=8), ["image_size", ">= 16"], id="dcgan_small"),
        pytest.param(lambda: DCGANGenerator(latent_dim=0), ["latent_dim"], id="dcgan_latent"),
        pytest.param(lambda: DCGANDiscriminator(norm="spectral"), ["'spectral'", "'layer'"], id="dcgan_norm"),
        pytest.param(lambda: get_norm_layer("bn"), ["'bn'", "'none'"], id="get_norm_layer"),
        pytest.param(lambda: init_weights(nn.Linear(2, 2), "bad"), ["'bad'", "'kaiming'"], id="init_weights"),
    ],
)
def test_bad_arguments_raise_one_paragraph_value_error_naming_the_problem(build, names):
    with pytest.raises(ValueError) as error:
        build()
    message = str(error.value)
    assert "\n" not in message
    for name in names:
        assert name in message


@pytest.mark.parametrize(
    ("content", "style"),
    [
        pytest.param(torch.randn(2, 4, 8, 8), torch.randn(2, 5, 8, 8), id="channels"),
        pytest.param(torch.randn(3, 4, 8, 8), torch.randn(2, 4, 8, 8), id="batch"),
        pytest.param(torch.randn(4, 8, 8), torch.randn(4, 8, 8), id="unbatched"),
    ],
)
def test_adain_rejects_mismatched_features_with_clear_error(content, style):
    with pytest.raises(ValueError, match="adaptive_instance_norm"):
        adaptive_instance_norm(content, style)


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("resnet_9blocks", lambda: ResnetGenerator(n_blocks=9, ngf=8)),
        ("resnet_1blocks", lambda: ResnetGenerator(n_blocks=1, ngf=8)),
        ("unet_256", lambda: UnetGenerator(num_downs=8, ngf=8, norm="instance", use_dropout=False)),
        ("unet_64", lambda: UnetGenerator(num_downs=6, ngf=8, norm="instance", use_dropout=False)),
    ],
)
def test_define_generator_builds_the_reference_netG_names(name, expected):
    built, reference = define_generator(name, ngf=8), expected()
    assert type(built) is type(reference)
    assert [tuple(p.shape) for p in built.parameters()] == [tuple(p.shape) for p in reference.parameters()]


@pytest.mark.parametrize("name", ["unet_48", "unet_16", "resnet", "resnet_blocks", "vgg"])
def test_define_generator_refuses_unknown_names_with_the_allowed_patterns(name):
    with pytest.raises(ValueError, match=r"resnet_<n>blocks .* unet_<size>"):
        define_generator(name)
