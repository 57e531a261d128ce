"""Losses return unweighted terms and each model's step weights them: the weighted sums equal the papers'
objectives written out by hand, in float64."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from helpers import fit_one_batch
from torch import nn

from ganstyle.losses import AdversarialLoss, discriminator_loss, gradient_penalty, gram_matrix
from ganstyle.models.base import build_model
from ganstyle.models.cyclegan import CycleGAN

CYCLEGAN = (
    "experiment=null",
    "model.generator.netG=resnet_1blocks",
    "model.generator.ngf=4",
    "model.discriminator.ndf=4",
    "model.discriminator.n_layers=2",
    "loss.gan_weight=2.0",
    "loss.cycle_weight=3.0",
    "loss.identity_weight=0.5",
    "loss.content_weight=0.7",
    "loss.style_weight=1.0e3",
    "loss.tv_weight=0.2",
    "loss.feature_net.weights=random",
)


def images(batch: int, size: int, seed: int) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return (torch.rand(batch, 3, size, size, generator=generator) * 2 - 1).double()


def mean_over_layers(per_layer: list[torch.Tensor]) -> torch.Tensor:
    return sum(per_layer) / len(per_layer)


def test_cyclegan_generator_loss_is_the_weighted_sum_written_out_by_hand(compose_config):
    torch.manual_seed(0)
    model: CycleGAN = build_model(compose_config(*CYCLEGAN).model).double()
    real_A, real_B = images(2, 16, seed=1), images(2, 16, seed=2)
    terms, _, _ = model.generator_terms(real_A, real_B)

    G_AB, G_BA, D_A, D_B, vgg = model.G_AB, model.G_BA, model.D_A, model.D_B, model.perceptual.feature_net
    fake_B, fake_A = G_AB(real_A), G_BA(real_B)
    gan = ((D_B(fake_B) - 1) ** 2).mean() + ((D_A(fake_A) - 1) ** 2).mean()  # LSGAN, target real
    cycle = (G_BA(fake_B) - real_A).abs().mean() + (G_AB(fake_A) - real_B).abs().mean()
    identity = (G_BA(real_A) - real_A).abs().mean() + (G_AB(real_B) - real_B).abs().mean()
    content_layer, style_layers = model.perceptual.content.layers[0], model.perceptual.style.layers

    def content(output, source):
        return ((vgg(output)[content_layer] - vgg(source)[content_layer]) ** 2).mean()

    def style(output, target):
        out, tgt = vgg(output), vgg(target)
        return mean_over_layers(
            [((gram_matrix(out[k]) - gram_matrix(tgt[k])) ** 2).mean() for k in style_layers]
        )

    def tv(x):
        return (x[:, :, 1:] - x[:, :, :-1]).abs().mean() + (x[:, :, :, 1:] - x[:, :, :, :-1]).abs().mean()

    # L_G = l_GAN L_GAN + l_cyc L_cyc + l_idt l_cyc L_idt + l_c L_content + l_s L_style + l_tv L_tv
    expected = (
        2.0 * gan
        + 3.0 * cycle
        + 0.5 * 3.0 * identity
        + 0.7 * (content(fake_B, real_A) + content(fake_A, real_B))
        + 1.0e3 * (style(fake_B, real_B) + style(fake_A, real_A))
        + 0.2 * (tv(fake_B) + tv(fake_A))
    )
    # Grams are computed in float32 (see gram_matrix), so the style part is float32-accurate only.
    torch.testing.assert_close(sum(terms.values()), expected, rtol=1e-6, atol=0)
    torch.testing.assert_close(
        terms["loss_idt_A"], 1.5 * (G_BA(real_A) - real_A).abs().mean(), rtol=1e-12, atol=1e-12
    )
    torch.testing.assert_close(
        terms["loss_cycle_A"] + terms["loss_cycle_B"] + terms["loss_G_AB"] + terms["loss_G_BA"],
        3.0 * cycle + 2.0 * gan,
        rtol=1e-12,
        atol=1e-12,
    )

    # D_A: 0.5 * (LSGAN(D(real), 1) + LSGAN(D(fake), 0)), halved as in the reference.
    loss_D_A = model.discriminator_loss(D_A, real_A, fake_A)
    expected_D_A = 0.5 * (((D_A(real_A) - 1) ** 2).mean() + (D_A(fake_A) ** 2).mean())
    torch.testing.assert_close(loss_D_A, expected_D_A, rtol=1e-12, atol=1e-12)


FAST_STYLE = (
    "model=fast_style",
    "model.discriminator.ndf=8",
    "loss.content_weight=3.0",
    "loss.style_weight=2.0e4",
    "loss.tv_weight=0.5",
    "loss.gan_weight=7.0",
    "loss.feature_net.weights=random",
)


def test_fast_style_step_logs_the_weighted_objective_written_out_by_hand(compose_config):
    torch.manual_seed(0)
    model = build_model(compose_config(*FAST_STYLE).model).double()
    styles, style_weights = [images(1, 40, seed=5), images(1, 36, seed=6)], [3.0, 1.0]
    model.set_style_images(styles, style_weights)
    batch = {"content": images(2, 32, seed=3), "style": images(2, 32, seed=4)}

    # Expected from the model before its first step (the step logs the loss it stepped on).
    generator, critic = model.generator, model.discriminator
    vgg, criterion = model.criterion.feature_net, model.criterion
    with torch.no_grad():
        stylized = generator(batch["content"])
        out, src = vgg(stylized), vgg(batch["content"])
        content_layer = criterion.content.layers[0]
        content = ((out[content_layer] - src[content_layer]) ** 2).mean()
        style = 0.0
        for weight, image in zip((0.75, 0.25), styles):  # data.style_weights, normalised
            target = vgg(image)
            style = style + weight * mean_over_layers(
                [((gram_matrix(out[k]) - gram_matrix(target[k])) ** 2).mean() for k in criterion.style.layers]
            )
        tv = (stylized[:, :, 1:] - stylized[:, :, :-1]).abs().mean() + (
            stylized[:, :, :, 1:] - stylized[:, :, :, :-1]
        ).abs().mean()
        gan = ((critic(stylized) - 1) ** 2).mean()  # LSGAN, target real
    expected = {"content": 3.0 * content, "style": 2.0e4 * style, "tv": 0.5 * tv, "gan": 7.0 * gan}

    logged = fit_one_batch(model, batch).callback_metrics
    for name, value in expected.items():
        torch.testing.assert_close(
            logged[f"train/loss_{name}"].double(), value.double(), rtol=1e-6, atol=0, msg=name
        )
    total = sum(value.double() for value in expected.values())
    torch.testing.assert_close(logged["train/loss_G"].double(), total, rtol=1e-6, atol=0)


# --- the losses themselves are unweighted ---------------------------------------------------------------


class Critic(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(1)
        self.net = nn.Sequential(nn.Conv2d(3, 4, 3, stride=2), nn.LeakyReLU(0.2), nn.Conv2d(4, 1, 3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


@pytest.mark.parametrize("mode", ["lsgan", "vanilla", "hinge", "wgangp"])
@pytest.mark.parametrize("real_fake_weight", [0.5, 1.0])
def test_discriminator_loss_is_the_weighted_real_and_fake_terms_plus_the_weighted_penalty(
    mode, real_fake_weight
):
    critic, adversarial = Critic().double(), AdversarialLoss(mode)
    real, fake = images(3, 8, seed=1), images(3, 8, seed=2).requires_grad_(True)
    torch.manual_seed(7)
    objective = discriminator_loss(
        adversarial, critic, real, fake, gp_weight=10.0, real_fake_weight=real_fake_weight
    )

    loss_real, loss_fake = adversarial(critic(real), True), adversarial(critic(fake.detach()), False)
    assert torch.equal(objective.terms["real"], loss_real) and torch.equal(objective.terms["fake"], loss_fake)
    expected = real_fake_weight * (loss_real + loss_fake)
    if mode == "wgangp":
        torch.manual_seed(7)
        penalty = gradient_penalty(critic, real, fake)  # unweighted
        torch.testing.assert_close(objective.terms["gp"], penalty, rtol=1e-12, atol=1e-12)
        expected = expected + 10.0 * penalty
        assert set(objective.weighted_terms) == {"real", "fake", "gp"}
    else:
        assert set(objective.terms) == {"real", "fake"}
    torch.testing.assert_close(objective.loss, expected, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(objective.loss, sum(objective.weighted_terms.values()), rtol=1e-12, atol=1e-12)
    objective.loss.backward()
    assert fake.grad is None  # D's loss never reaches the generator


def test_gradient_penalty_is_unweighted_and_zero_for_a_unit_gradient_critic():
    # D(x) = sum(x * u) / ||u|| has gradient norm 1 everywhere: the penalty (||grad|| - 1)^2 is 0, and a
    # critic scaled by s has penalty (s - 1)^2 whatever gp_weight a model later applies.
    direction = torch.randn(1, 3, 4, 4, dtype=torch.float64)
    direction = direction / direction.norm()
    real, fake = images(2, 4, seed=1), images(2, 4, seed=2)
    for scale in (1.0, 3.0):
        penalty = gradient_penalty(lambda x, s=scale: s * (x * direction).flatten(1).sum(1), real, fake)
        torch.testing.assert_close(penalty, torch.tensor((scale - 1.0) ** 2, dtype=torch.float64))


def test_adain_style_term_is_the_criterions_unweighted_moment_loss(compose_config):
    torch.manual_seed(0)
    model = build_model(
        compose_config("model=adain", "loss.feature_net.weights=random", "loss.style_weight=10.0").model
    ).double()
    content, style = images(2, 16, seed=1), images(2, 16, seed=2)
    losses, decoded = model.losses(content, style)
    encoder = model.encoder
    with torch.no_grad():
        target = encoder(content)["relu4_1"]
        style_features, decoded_features = encoder(style), encoder(decoded)

    def moments(x):
        flat = x.reshape(x.shape[0], x.shape[1], -1)
        return flat.mean(2), (flat.var(2) + 1e-5).sqrt()

    mu_c, sigma_c = moments(target)
    mu_s, sigma_s = moments(style_features["relu4_1"])
    t = (
        sigma_s[..., None, None] * (target - mu_c[..., None, None]) / sigma_c[..., None, None]
        + mu_s[..., None, None]
    )
    torch.testing.assert_close(
        losses["content"], F.mse_loss(decoded_features["relu4_1"], t), rtol=1e-10, atol=0
    )
    expected_style = 0.0
    for layer in ("relu1_1", "relu2_1", "relu3_1", "relu4_1"):  # summed over layers, unweighted
        (mu_d, sigma_d), (mu_t, sigma_t) = moments(decoded_features[layer]), moments(style_features[layer])
        expected_style = expected_style + F.mse_loss(mu_d, mu_t) + F.mse_loss(sigma_d, sigma_t)
    torch.testing.assert_close(losses["style"], expected_style, rtol=1e-10, atol=0)
