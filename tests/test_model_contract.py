"""Every model keeps the contract its base class declares: the hooks the framework calls have one
signature, the class attributes that describe a model are declared, and the framework reads models
through that contract instead of probing them."""

from __future__ import annotations

import ast
import inspect
from pathlib import Path
from types import SimpleNamespace

import hydra
import lightning.pytorch as pl
import pytest
import torch
from omegaconf import OmegaConf

from ganstyle.callbacks.translate import TranslateTestSet
from ganstyle.inference.loading import CheckpointError, inference_network
from ganstyle.models import base
from ganstyle.models.base import (
    LEARNING_RATE_METRIC_NAMES,
    GANModule,
    ImageModel,
    InferenceConditioning,
    build_model,
)

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "src" / "ganstyle"
MODEL_CONFIGS = sorted(path.stem for path in (ROOT / "conf" / "model").glob("*.yaml"))
# The optimiser of each role has one name in every model; AdaIN's decoder and Gatys' image are
# what those models optimise and have no counterpart elsewhere.
OPTIMIZER_NAMES = set(base.OPTIMIZER_ROLES)


def model_class(config_name: str) -> type:
    target = OmegaConf.load(ROOT / "conf" / "model" / f"{config_name}.yaml")["_target_"]
    return hydra.utils.get_class(target)


MODEL_CLASSES = [model_class(name) for name in MODEL_CONFIGS]
IDS = [cls.__name__ for cls in MODEL_CLASSES]


def test_every_model_config_builds_an_image_model_and_the_old_base_name_still_imports():
    assert MODEL_CLASSES and all(issubclass(cls, ImageModel) for cls in MODEL_CLASSES)
    assert GANModule is ImageModel


# --- the checks, one function each, so a model outside conf/model/ (docs/examples/) is checked alike
def check_inference_generator_signature(cls: type) -> None:
    """inference_generator has the base's one signature; inference_conditioning names its keywords."""

    def parameters(function):
        return [(p.name, p.kind, p.default) for p in inspect.signature(function).parameters.values()]

    assert parameters(cls.inference_generator) == parameters(ImageModel.inference_generator)
    assert inspect.signature(cls.inference_generator).parameters["conditioning"].annotation == (
        "Unpack[InferenceConditioning]"
    )  # the keywords are the one TypedDict's, not the model's own
    assert set(cls.inference_conditioning) <= set(InferenceConditioning.__annotations__)


def check_declarations(cls: type) -> None:
    """The class attributes that describe a model are declared, and the hooks they promise exist."""
    assert cls.data_kinds and all(isinstance(kind, str) for kind in cls.data_kinds)
    assert cls.loss_terms and all(term.endswith("_weight") for term in cls.loss_terms)
    assert cls.visual_rows and all(row and all(isinstance(n, str) for n in row) for row in cls.visual_rows)
    # test_translations is overridden exactly when the model names the folders it fills
    overrides_translations = cls.test_translations is not ImageModel.test_translations
    assert overrides_translations == bool(cls.test_translation_folders)
    for hook in ("compute_visuals", "inference_generator", "make_optimizers"):
        assert getattr(cls, hook) is not getattr(ImageModel, hook), f"{cls.__name__} lacks {hook}"
    if cls.distribution_domains:
        assert cls.distribution_samples is not ImageModel.distribution_samples


def check_built_model(model: ImageModel) -> None:
    """A built model keeps plain hyperparameters that rebuild it, one optimiser per name, and gives
    an inference network (or says why it has none) for each of its directions."""
    # Plain data that rebuilds the same model: what ganstyle.load and load_from_checkpoint do.
    assert "DictConfig" not in repr(dict(model.hparams)) and "ListConfig" not in repr(dict(model.hparams))
    assert dict(type(model)(**dict(model.hparams)).hparams) == dict(model.hparams)

    # {role: optimizer}, the roles from the one list; configure_optimizers keeps their order.
    if not model.weights_built_from_data:  # Gatys' image (its optimiser's only parameter) comes in setup
        optimizers = model.make_optimizers()
        assert set(optimizers) <= OPTIMIZER_NAMES and all(
            isinstance(o, torch.optim.Optimizer) for o in optimizers.values()
        )
        listed, _ = model.configure_optimizers()
        assert model.optimizer_names == tuple(optimizers) and len(listed) == len(optimizers)

    conditioning = (
        {"style_images": [torch.rand(1, 3, 16, 16) * 2 - 1]} if model.inference_conditioning else {}
    )
    for direction in model.inference_directions or (None,):
        try:
            generator = model.inference_generator(direction, **conditioning)
        except NotImplementedError as error:  # no network to apply to images: the reason, not a trace
            assert type(model).__name__ in str(error) or "stylize" in str(error)
            continue
        assert isinstance(generator, torch.nn.Module)
        assert int(getattr(generator, "size_multiple", 1)) >= 1


# --- every model config --------------------------------------------------------------------------
@pytest.mark.parametrize("cls", MODEL_CLASSES, ids=IDS)
def test_inference_generator_has_the_one_signature_of_the_base(cls):
    check_inference_generator_signature(cls)


@pytest.mark.parametrize("cls", MODEL_CLASSES, ids=IDS)
def test_every_model_declares_what_describes_it(cls):
    check_declarations(cls)


def test_the_learning_rate_curves_keep_their_names():
    # train/lr_G, train/lr_D and train/lr_F are read by reports, dashboards and tests of existing runs
    assert LEARNING_RATE_METRIC_NAMES == {"generator": "G", "discriminator": "D", "heads": "F"}


@pytest.mark.parametrize("config_name", MODEL_CONFIGS)
def test_a_built_model_keeps_plain_hyperparameters_one_optimiser_per_name_and_the_inference_contract(
    compose_config, config_name
):
    cfg = compose_config(f"model={config_name}")
    check_built_model(build_model(cfg.model))


def test_finite_or_skip_refuses_an_optimiser_name_the_model_does_not_declare(compose_config):
    model = build_model(compose_config("model=dcgan").model)
    model.configure_optimizers()
    with pytest.raises(ValueError, match="'G'.*make_optimizers"):
        model.finite_or_skip({"loss_G": torch.tensor(float("nan"))}, "G")
    assert model.finite_or_skip({"loss_G": torch.tensor(1.0)}, "generator")
    assert not model.finite_or_skip({"loss_G": torch.tensor(float("nan"))}, "generator")
    assert model.nonfinite_terms() == {"generator": {"loss_G": pytest.approx(float("nan"), nan_ok=True)}}
    model.clear_nonfinite_terms()
    assert model.nonfinite_terms() == {} and model.skipped_steps == 1


def test_inference_refuses_conditioning_a_model_does_not_declare(compose_config):
    model = build_model(compose_config("model=cyclegan").model)
    with pytest.raises(CheckpointError, match="takes no alpha"):
        inference_network(model, alpha=0.5)
    _, info = inference_network(model, "BtoA")
    assert info.direction == "BtoA"


def test_a_model_without_test_translations_never_loads_the_test_set(tmp_path, compose_config):
    model = build_model(compose_config("model=dcgan").model)
    assert model.test_translations({}) == {}

    class DataModule:
        stages: list[str] = []

        def setup(self, stage):
            self.stages.append(stage)

    datamodule = DataModule()
    trainer = SimpleNamespace(datamodule=datamodule, fast_dev_run=False)
    TranslateTestSet(dirpath=str(tmp_path)).on_fit_end(trainer, model)
    assert datamodule.stages == []


def probed_names(path: Path) -> list[str]:
    """``hasattr``/``getattr`` calls in a file whose first argument is a model, by its usual names."""
    model_names = {"model", "pl_module", "model_class", "cls"}
    found = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name)
            and node.func.id in ("hasattr", "getattr")
            and node.args
            and isinstance(node.args[0], ast.Name)
            and node.args[0].id in model_names
        ):
            found.append(f"{path.relative_to(PACKAGE)}:{node.lineno} {ast.unparse(node)}")
    return found


def test_the_framework_reads_models_through_the_contract_without_probing_them():
    # Models themselves may inspect their own networks; the rest of the package calls declared hooks.
    offenders = [
        hit
        for path in sorted(PACKAGE.rglob("*.py"))
        if "models" not in path.relative_to(PACKAGE).parts
        for hit in probed_names(path)
    ]
    assert not offenders, "\n".join(offenders)


# --- one discriminator path --------------------------------------------------------------------------
DISCRIMINATOR_ATTRIBUTES = {*base.DISCRIMINATOR_ATTRIBUTES, "critic"}
MODEL_SOURCES = sorted((PACKAGE / "models").glob("*.py")) + [ROOT / "docs" / "examples" / "minimal_gan.py"]


def direct_discriminator_calls(path: Path) -> list[str]:
    """``self.D(...)``-like calls: a discriminator called without ImageModel.discriminate."""
    calls = []
    for node in ast.walk(ast.parse(path.read_text())):
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and isinstance(node.func.value, ast.Name)
            and node.func.value.id == "self"
            and node.func.attr in DISCRIMINATOR_ATTRIBUTES
        ):
            calls.append(f"{path.name}:{node.lineno} self.{node.func.attr}(...)")
    return calls


def test_no_model_calls_a_discriminator_except_through_discriminate():
    assert [call for path in MODEL_SOURCES for call in direct_discriminator_calls(path)] == []


def test_every_discriminator_call_of_a_training_step_and_its_penalty_runs_inside_discriminate(
    compose_config, monkeypatch
):
    from helpers import fit_one_batch

    cfg = compose_config(
        "experiment=null",
        "loss.gan_mode=wgangp",
        "model.batch_shared_calls=false",
        "model.generator.netG=resnet_1blocks",
        "model.generator.ngf=4",
        "model.discriminator.ndf=4",
        "model.discriminator.n_layers=1",
        "model.pool_size=0",
    )
    model = build_model(cfg.model)
    inside, calls = [], {"inside": 0, "outside": 0}

    def count(module, args):
        calls["inside" if inside else "outside"] += 1

    original = ImageModel.discriminate

    def discriminate(self, *args, **kwargs):
        inside.append(True)
        try:
            return original(self, *args, **kwargs)
        finally:
            inside.pop()

    monkeypatch.setattr(ImageModel, "discriminate", discriminate)
    for network in (model.D_A, model.D_B):
        network.register_forward_pre_hook(count)
    images = torch.rand(2, 1, 3, 16, 16) * 2 - 1
    fit_one_batch(model, {"A": images[0], "B": images[1], "A_path": ["a.png"], "B_path": ["b.png"]})
    # G step: D_A and D_B once each; D step: real, fake and the penalty's interpolates for each.
    assert calls == {"inside": 8, "outside": 0}


def test_every_validation_value_a_model_logs_is_averaged_over_processes():
    """``self.log("val/...", ...)`` passes ``sync_dist=True``: each DDP process validates its own shard,
    so without it the epoch value (and the best checkpoint picked from it) would be rank 0's alone."""
    unsynced = []
    for path in [*sorted((PACKAGE / "models").glob("*.py")), ROOT / "docs" / "examples" / "minimal_gan.py"]:
        for node in ast.walk(ast.parse(path.read_text())):
            if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)):
                continue
            if node.func.attr != "log" or not node.args:
                continue
            name = node.args[0]
            text = name.value if isinstance(name, ast.Constant) else None
            if isinstance(name, ast.JoinedStr) and isinstance(name.values[0], ast.Constant):
                text = name.values[0].value
            synced = any(keyword.arg == "sync_dist" for keyword in node.keywords)
            if isinstance(text, str) and text.startswith("val/") and not synced:
                unsynced.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert not unsynced, "validation values logged without sync_dist=True:\n" + "\n".join(unsynced)


class ValidationMetricNames(pl.Callback):
    """Records the ``val/`` metrics a run logged, after its validation."""

    seen: set[str] = set()

    def on_validation_end(self, trainer, pl_module):
        ValidationMetricNames.seen = {name for name in trainer.callback_metrics if name.startswith("val/")}


# Logged by the framework for every adversarial model (ImageModel.log_real_score_gap), not declared.
FRAMEWORK_METRICS = ("val/D_real_heldout_", "val/D_real_train_")


@pytest.mark.parametrize("config_name", MODEL_CONFIGS)
def test_a_model_logs_the_validation_metrics_it_declares(compose_config, config_name, tmp_path):
    """validation_metric_names is the one list of what validation_step logs (monitor.metric=auto and
    the refusal of an unlogged monitor read it): a model's quick start, one batch of each, logs
    exactly those, besides the discriminators' statistics every adversarial model gets."""
    from ganstyle.run.monitoring import validation_has_targets
    from ganstyle.run.training import train

    cfg = compose_config(
        f"model={config_name}",
        "debug=smoke",
        "trainer.limit_train_batches=1",
        "trainer.check_val_every_n_epoch=1",  # DCGAN's quick start validates every 20 epochs
        "~callbacks.image_grids",
        "~callbacks.translate_test_set",
        "~callbacks.report",
        "~callbacks.run_summary",
        "~callbacks.model_checkpoint",
        "~callbacks.progress_bar",
        "metrics.fid=false",
        f"+callbacks.names._target_={__name__}.ValidationMetricNames",
        output_dir=tmp_path,
    )
    datamodule = hydra.utils.instantiate(cfg.data, _convert_="all")
    model_class = hydra.utils.get_class(cfg.model._target_)
    loss = base.complete_loss_config(OmegaConf.to_container(cfg.loss, resolve=True))
    declared = model_class.validation_metric_names(loss, validation_has_targets(datamodule))
    ValidationMetricNames.seen = set()
    train(cfg)
    logged = {name for name in ValidationMetricNames.seen if not name.startswith(FRAMEWORK_METRICS)}
    assert declared is not None and logged == declared, (sorted(logged), sorted(declared or ()))
