"""Speed options that must not change results: batched network calls and fused optimisers."""

from __future__ import annotations

import copy

import pytest
import torch

from ganstyle.models.base import build_model
from ganstyle.models.cyclegan import CycleGAN

TINY = (
    "experiment=null",
    "model.generator.netG=resnet_1blocks",
    "model.generator.ngf=4",
    "model.discriminator.ndf=4",
    "model.discriminator.n_layers=2",
    "model.pool_size=4",
)


def tiny_cyclegan(compose_config, *overrides: str) -> CycleGAN:
    cfg = compose_config(*TINY, *overrides)
    return build_model(cfg.model)


def losses_and_gradients(model: CycleGAN, real_A: torch.Tensor, real_B: torch.Tensor):
    """Every loss of one CycleGAN step and the gradients each optimiser's loss gives every parameter."""
    model.zero_grad(set_to_none=True)
    terms, fake_A, fake_B = model.generator_terms(real_A, real_B)
    sum(terms.values()).backward()
    generator_gradients = {name: p.grad.clone() for name, p in model.named_parameters() if p.grad is not None}
    model.zero_grad(set_to_none=True)
    # The pools are filled in the same order on both paths, so D sees the same pooled fakes.
    loss_D_A = model.discriminator_loss(model.D_A, real_A, model.pool_A.query(fake_A))
    loss_D_B = model.discriminator_loss(model.D_B, real_B, model.pool_B.query(fake_B))
    (loss_D_A + loss_D_B).backward()
    discriminator_gradients = {
        name: p.grad.clone() for name, p in model.named_parameters() if p.grad is not None
    }
    losses = {**terms, "loss_D_A": loss_D_A, "loss_D_B": loss_D_B}
    return {k: v.detach() for k, v in losses.items()}, generator_gradients, discriminator_gradients


@pytest.mark.parametrize("identity_weight", [0.5, 0.0])
def test_batched_calls_give_the_losses_and_gradients_of_separate_calls(compose_config, identity_weight):
    torch.manual_seed(0)
    batched = tiny_cyclegan(compose_config, f"loss.identity_weight={identity_weight}").double()
    separate = copy.deepcopy(batched)
    separate.batch_generator_calls = separate.batch_discriminator_calls = False
    assert batched.batch_generator_calls and batched.batch_discriminator_calls  # instance norm
    real_A = torch.rand(2, 3, 16, 16, dtype=torch.float64) * 2 - 1
    real_B = torch.rand(3, 3, 16, 16, dtype=torch.float64) * 2 - 1  # unequal batches split correctly

    torch.manual_seed(1)  # the pools draw the same random swaps on both paths
    losses, g_grads, d_grads = losses_and_gradients(batched, real_A, real_B)
    torch.manual_seed(1)
    expected_losses, expected_g, expected_d = losses_and_gradients(separate, real_A, real_B)

    assert losses.keys() == expected_losses.keys()
    assert ("loss_idt_A" in losses) == (identity_weight > 0)
    for name, value in losses.items():
        torch.testing.assert_close(value, expected_losses[name], rtol=1e-12, atol=1e-12, msg=name)
    for gradients, expected in ((g_grads, expected_g), (d_grads, expected_d)):
        assert gradients.keys() == expected.keys() and gradients
        for name, value in gradients.items():
            torch.testing.assert_close(value, expected[name], rtol=1e-10, atol=1e-12, msg=name)
    # Every generator and discriminator parameter received a gradient from its own step.
    assert {n.split(".")[0] for n in g_grads} >= {"G_AB", "G_BA"}
    assert {n.split(".")[0] for n in d_grads} == {"D_A", "D_B"}


def test_batch_norm_networks_keep_separate_calls(compose_config, monkeypatch):
    model = tiny_cyclegan(compose_config, "model.generator.norm=batch", "model.discriminator.norm=batch")
    assert not model.batch_generator_calls and not model.batch_discriminator_calls
    calls = []
    for network in (model.G_AB, model.G_BA, model.D_A, model.D_B):
        network.register_forward_pre_hook(lambda module, inputs: calls.append(inputs[0].shape[0]))
    real_A, real_B = torch.rand(2, 3, 16, 16), torch.rand(2, 3, 16, 16)
    model.generator_terms(real_A, real_B)
    model.discriminator_loss(model.D_A, real_A, real_A)
    assert set(calls) == {2}  # never a concatenated batch of 4


def test_the_switch_turns_batched_calls_off(compose_config):
    model = tiny_cyclegan(compose_config, "model.batch_shared_calls=false")
    assert not model.batch_generator_calls and not model.batch_discriminator_calls


def generators(model: CycleGAN) -> list[torch.nn.Parameter]:
    return [*model.G_AB.parameters(), *model.G_BA.parameters()]


def optimizer_state_after_one_step(optimizer: torch.optim.Optimizer, parameters) -> dict:
    for p in parameters:
        p.grad = torch.ones_like(p)
    optimizer.step()
    return copy.deepcopy(optimizer.state_dict())


def test_fused_optimizers_true_builds_fused_adam_and_checkpoints_load_either_way(compose_config):
    fused_model = tiny_cyclegan(compose_config)
    fused_model.set_performance_options(fused_optimizers=True)
    plain_model = copy.deepcopy(fused_model)
    plain_model.set_performance_options(fused_optimizers="auto")  # auto on the CPU: as configured

    fused_opt_G, _ = fused_model.make_optimizers().values()
    plain_opt_G, _ = plain_model.make_optimizers().values()
    assert isinstance(fused_opt_G, torch.optim.Adam) and fused_opt_G.defaults["fused"] is True
    assert not plain_opt_G.defaults["fused"]
    assert fused_opt_G.defaults["lr"] == plain_opt_G.defaults["lr"]  # the rest as configured

    fused_state = optimizer_state_after_one_step(fused_opt_G, generators(fused_model))
    plain_state = optimizer_state_after_one_step(plain_opt_G, generators(plain_model))
    # Same update either way, and each optimiser's checkpoint loads into the other kind.
    for p, q in zip(generators(fused_model), generators(plain_model), strict=True):
        torch.testing.assert_close(p, q)
    plain_opt_G.load_state_dict(fused_state)
    fused_opt_G.load_state_dict(plain_state)
    for state in (plain_opt_G.state_dict()["state"], fused_opt_G.state_dict()["state"]):
        assert len(state) == len(generators(fused_model))
        assert all(float(s["step"]) == 1 for s in state.values())
    optimizer_state_after_one_step(fused_opt_G, generators(fused_model))  # steps on after loading


def test_fused_optimizers_refuses_a_value_other_than_auto_true_false(compose_config):
    with pytest.raises(ValueError, match="fused_optimizers"):
        tiny_cyclegan(compose_config).set_performance_options(fused_optimizers="yes")
