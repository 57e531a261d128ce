"""Neural style by optimisation (Gatys, Ecker & Bethge 2016, "Image Style Transfer Using Convolutional
Neural Networks"), with colour preservation (Gatys et al. 2017, "Controlling Perceptual Factors in Neural
Style Transfer").

No network is trained: the output image x itself is the parameter. With VGG19 features phi_l,

    L(x) = content_weight * L_content(phi_relu4_2(x), phi_relu4_2(content))
         + style_weight   * sum_k w_k * L_style(x, style_k)     (Grams at relu1_1, relu2_1, relu3_1, relu4_1, relu5_1)
         + tv_weight      * L_tv(x)

minimised by L-BFGS (the paper) or Adam, from the content image or white noise (``init``). w_k are the
style images' normalised weights (``data.style_weights``). Terms are :mod:`ganstyle.losses.perceptual`'s.

Iterations. Each training step is one optimiser step: with ``max_iter: 1`` (the default) one L-BFGS
iteration, one VGG forward and backward. The data module repeats the same image ``iterations_per_epoch``
times per epoch, so iterations = ``trainer.max_epochs * data.iterations_per_epoch`` (or ``trainer.max_steps``;
with one optimiser ``global_step`` counts iterations). L-BFGS keeps its curvature history across steps.

Weights. Gatys et al.'s alpha/beta (1e-3, 1e-4) belong to unnormalised Grams of a Caffe VGG on [0, 255]
inputs and do not carry over. On our scale (Gram / (C*H*W), per-layer MSE, mean over layers, ImageNet-
normalised [0, 1] images), ``style_weight=1e6`` with ``content_weight=1`` is the order PyTorch
implementations use: the PyTorch neural-style tutorial's 1e6 summed over 5 layers is our 5e6, and
Johnson's neural-style 100:5 on Caffe features (about 57x larger, so Gram MSEs 3300x larger relative to
content MSEs) is about our 3e5. Tune it per image pair.

Colour preservation (``preserve_color``, luminance-only transfer): the style images' luminance is matched
to the content's mean and deviation, L_S' = sigma_C / sigma_S * (L_S - mu_S) + mu_C; the optimised image
is a single luminance channel (repeated to RGB for VGG); the output combines it with the content's
chroma (I, Q in YIQ, or U, V in YUV).

    python train.py model=gatys                                          # embedded astronaut + mosaic
    python train.py model=gatys data.content=me.jpg data.style=[a.jpg,b.jpg] data.style_weights=[0.7,0.3]
Outputs: ``<run>/stylized.png`` and ``<run>/images/progress.png`` (snapshots left to right).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch import nn
from torchvision.utils import make_grid, save_image

from ganstyle.config import ConfigError
from ganstyle.data.single_image import fit_to_size
from ganstyle.losses.perceptual import build_perceptual_criterion, weighted_perceptual_terms
from ganstyle.losses.style_targets import StyleTargets, style_images_from
from ganstyle.models.base import ImageModel, InferenceConditioning, build

if TYPE_CHECKING:  # annotations only: typing.Unpack needs Python 3.11
    from typing_extensions import Unpack

log = logging.getLogger(__name__)

INITS = ("content", "noise")
MAX_PROGRESS_TILES = 12
# RGB (in [0, 1]) -> luminance and two chroma channels. YIQ: NTSC (FCC); YUV: ITU-R BT.601 (analogue).
COLOR_SPACES = {
    "yiq": ((0.299, 0.587, 0.114), (0.5959, -0.2746, -0.3213), (0.2115, -0.5227, 0.3112)),
    "yuv": ((0.299, 0.587, 0.114), (-0.14713, -0.28886, 0.436), (0.615, -0.51499, -0.10001)),
}


def rgb_to_luma_chroma(images: torch.Tensor, space: str = "yiq") -> torch.Tensor:
    """(N, 3, H, W) images in [-1, 1] -> (N, 3, H, W) of (Y, chroma 1, chroma 2); Y in [0, 1]."""
    matrix = torch.tensor(COLOR_SPACES[space], dtype=images.dtype, device=images.device)
    return torch.einsum("ij,njhw->nihw", matrix, (images + 1.0) / 2.0)


def luma_chroma_to_rgb(channels: torch.Tensor, space: str = "yiq") -> torch.Tensor:
    """Inverse of :func:`rgb_to_luma_chroma`: back to RGB in [-1, 1] (not clamped)."""
    matrix = torch.tensor(COLOR_SPACES[space], dtype=torch.float64).inverse()
    matrix = matrix.to(dtype=channels.dtype, device=channels.device)
    return torch.einsum("ij,njhw->nihw", matrix, channels) * 2.0 - 1.0


def match_luminance(style_luma: torch.Tensor, content_luma: torch.Tensor) -> torch.Tensor:
    """L_S' = sigma_C / sigma_S * (L_S - mu_S) + mu_C: the style's luminance with the content's mean and
    deviation (Gatys et al. 2017), so the transferred strokes keep the content's overall brightness."""
    scale = content_luma.std() / style_luma.std().clamp_min(1e-6)
    return (style_luma - style_luma.mean()) * scale + content_luma.mean()


def luminance_image(luma: torch.Tensor) -> torch.Tensor:
    """A (N, 1, H, W) luminance in [0, 1] as the grey RGB image in [-1, 1] that VGG sees."""
    return (luma * 2.0 - 1.0).expand(-1, 3, -1, -1)


class GatysStyleTransfer(ImageModel):
    """The output image as the only parameter, optimised against VGG19 content and style targets; see
    the module docstring for the objective, the iteration count and colour preservation."""

    data_kinds = ("single_image_style",)  # one content image and its style image(s)

    loss_terms = ("content_weight", "style_weight", "tv_weight")
    visual_rows = (("content", "style", "stylized"),)
    test_translation_folders = ("stylized",)  # the one result, under the content image's name
    # One image: no distribution to score with FID; monitor.metric=auto picks the objective.
    ground_truth_monitor = ("val/loss_perceptual", "min")
    # Sized by the content image in setup: absent from a freshly built model (see resuming).
    weights_built_from_data = ("image", "content_image")

    def __init__(
        self,
        optimizers: dict[str, dict[str, Any]],
        optimizer: str = "lbfgs",  # lbfgs (the paper) | adam: a key of `optimizers`
        init: str = "content",  # content | noise (white noise, as in the paper's figures)
        preserve_color: bool = False,
        color_space: str = "yiq",  # yiq (Gatys et al. 2017) | yuv
        progress_every: int = 10,  # iterations between snapshots in images/progress.png
        scheduler: dict[str, Any] | None = None,
        loss: dict[str, Any] | None = None,
    ) -> None:
        super().__init__()
        loss = self.checked_loss_config(loss)
        if optimizer not in (optimizers or {}):
            raise ConfigError(
                f"model.optimizer={optimizer!r} is not one of the configured optimizers "
                f"{sorted(optimizers or {})}: use model.optimizer=lbfgs (the paper) or model.optimizer=adam."
            )
        for key, value, allowed in (("init", init, INITS), ("color_space", color_space, tuple(COLOR_SPACES))):
            if value not in allowed:
                raise ConfigError(f"model.{key}={value!r} is not known; choose one of {', '.join(allowed)}.")
        if not isinstance(progress_every, int) or progress_every < 1:
            raise ConfigError(
                f"model.progress_every={progress_every!r} must be a positive number of iterations."
            )
        self.save_hyperparameters()  # as plain data (ImageModel)

        self.criterion = build_perceptual_criterion(loss)  # VGG19, frozen: only the image is optimised
        self.style_targets = StyleTargets()
        # Created from the content image in setup() (or from a checkpoint's shapes when loading one).
        self.register_parameter("image", None)
        self.register_buffer("content_image", None)
        self.progress: list[tuple[int, torch.Tensor]] = []

    @classmethod
    def check_loss_config(cls, loss: dict[str, Any]) -> None:
        super().check_loss_config(loss)
        if float(loss.get("gan_weight") or 0) != 0:
            raise ConfigError(
                f"loss.gan_weight={loss['gan_weight']} but GatysStyleTransfer has no adversarial term (it "
                "optimises one image against VGG statistics). Set loss.gan_weight=0, or use model=fast_style "
                "for a transformer network with a critic."
            )
        if not float(loss.get("style_weight") or 0) > 0:
            raise ConfigError(
                "GatysStyleTransfer needs loss.style_weight > 0: without the Gram term it only reconstructs "
                "the content. The default is 1.0e6 on this project's scale (see gatys.py)."
            )

    # --- the optimised image -------------------------------------------------------------------
    @torch.no_grad()
    def start(self, content: torch.Tensor, styles: list[torch.Tensor], weights: list[float]) -> None:
        """Set the targets from a (1, 3, H, W) content and (1, 3, h, w) style images in [-1, 1], and
        initialise the image from the content or noise. ``setup`` calls it with the data module's images."""
        hp, criterion = self.hparams, self.criterion
        device = next(criterion.feature_net.parameters()).device
        content = content.to(device)
        self.content_image = content
        if hp.preserve_color:
            content_luma = rgb_to_luma_chroma(content, hp.color_space)[:, :1]
            target = luminance_image(content_luma)
            styles = [
                luminance_image(
                    match_luminance(rgb_to_luma_chroma(s.to(device), hp.color_space)[:, :1], content_luma)
                )
                for s in styles
            ]
            start = target[:, :1]
        else:
            target, start = content, content
        if criterion.content is not None:
            for layer, feature in criterion.feature_net(target).items():
                if layer in criterion.content.layers:
                    self.register_buffer(f"content_feature_{layer}", feature, persistent=False)
        self.style_targets.set(criterion, styles, weights)
        if hp.init == "noise":
            start = torch.rand_like(start) * 2.0 - 1.0
        self.image = nn.Parameter(start.clone())
        self.progress = []

    def vgg_input(self) -> torch.Tensor:
        """The image VGG sees: the parameter, or its luminance repeated to RGB with colour preservation."""
        return self.image.expand(-1, 3, -1, -1) if self.hparams.preserve_color else self.image

    @torch.no_grad()
    def stylized_image(self) -> torch.Tensor:
        """The current result as (1, 3, H, W) in [-1, 1]; with colour preservation, the optimised luminance
        combined with the content's chroma."""
        if self.image is None:
            raise RuntimeError("No image yet: fit the model first, or load a checkpoint of a fitted one.")
        image = self.image
        if self.hparams.preserve_color:
            channels = rgb_to_luma_chroma(self.content_image, self.hparams.color_space)
            channels = torch.cat([(image + 1.0) / 2.0, channels[:, 1:]], dim=1)
            image = luma_chroma_to_rgb(channels, self.hparams.color_space)
        return image.clamp(-1.0, 1.0)

    def forward(self) -> torch.Tensor:
        """The current result (no input: the image is the model); see :meth:`stylized_image`."""
        return self.stylized_image()

    def inference_generator(
        self, direction: str | None = None, **conditioning: Unpack[InferenceConditioning]
    ) -> nn.Module:
        raise NotImplementedError(
            "GatysStyleTransfer has no network to apply to new images: it optimises one image per run. "
            "Its result is the run's stylized.png (or `GatysStyleTransfer.load_from_checkpoint(path)"
            ".stylized_image()`); for a new photo run `python train.py model=gatys data.content=<photo>`, "
            "or train model=fast_style / model=adain for a network that stylises any image."
        )

    def setup(self, stage: str) -> None:
        super().setup(stage)
        if stage == "fit":
            datamodule = self.trainer.datamodule
            if not hasattr(datamodule, "content_image"):
                raise ConfigError(
                    f"GatysStyleTransfer optimises one image, but the data module {type(datamodule).__name__} "
                    "has no single content image. Use the single-image data (the default data=embedded_gatys, "
                    "with data.content=<image> data.style=<image>)."
                )
            styles, weights = style_images_from(datamodule, type(self).__name__)
            self.start(datamodule.content_image(), styles, weights)

    # --- optimisation --------------------------------------------------------------------------
    def objective_terms(self) -> dict[str, torch.Tensor]:
        """Weighted content, style and TV terms of the current image (one VGG pass):
        content_weight * L_content + style_weight * sum_k w_k L_style(style_k) + tv_weight * L_tv."""
        return weighted_perceptual_terms(self.distances(), self.hparams.loss)

    def distances(self) -> dict[str, torch.Tensor]:
        """The unweighted terms: the criterion's, against the content features and style Grams fixed in
        :meth:`start`."""
        criterion = self.criterion
        content_features = None
        if criterion.content is not None:
            content_features = {
                layer: getattr(self, f"content_feature_{layer}") for layer in criterion.content.layers
            }
        return criterion(
            self.vgg_input(), content_features=content_features, style_targets=self.style_targets
        )

    def training_step(self, batch: dict[str, Any], batch_idx: int) -> None:
        optimizer = self.optimizers()
        if self.global_step % self.hparams.progress_every == 0:
            self.progress.append((self.global_step, self.stylized_image().cpu()))
        evaluated: list[dict[str, torch.Tensor]] = []

        def closure() -> torch.Tensor:
            # L-BFGS may evaluate the objective more than once per step (line search); Adam once.
            optimizer.zero_grad(set_to_none=True)
            terms = self.objective_terms()
            loss = sum(terms.values())
            evaluated.append({name: value.detach() for name, value in terms.items()})
            if self.finite_or_skip(terms, "image"):
                self.manual_backward(loss)
            else:  # a zero gradient: L-BFGS sees a stationary point and leaves the image as it is
                self.image.grad = torch.zeros_like(self.image)
            return loss

        if self.hparams.optimizer == "lbfgs":  # L-BFGS re-evaluates the objective itself
            optimizer.step(closure=closure)
        else:  # Adam would still move on its momentum with a zero gradient: skip the step instead
            closure()
            if all(torch.isfinite(value).all() for value in evaluated[0].values()):
                optimizer.step()
        terms = evaluated[0]  # at the image the step started from
        logged = {f"train/loss_{name}": value for name, value in terms.items()}
        logged["train/loss"] = sum(terms.values())
        self.log_training_values(logged, 1, progress_bar={"loss": logged["train/loss"]})

    def make_optimizers(self):
        return {"image": build(self.hparams.optimizers[self.hparams.optimizer])([self.image])}

    # --- validation, outputs -------------------------------------------------------------------
    @classmethod
    def validation_metric_names(cls, loss: dict[str, Any], has_targets: bool | None) -> frozenset[str] | None:
        names = {"val/loss_perceptual", "val/style_distance"}
        return frozenset(
            names | ({"val/content_distance"} if float(loss.get("content_weight") or 0) else set())
        )

    def validation_step(self, batch: dict[str, Any], batch_idx: int) -> None:
        distances = self.distances()
        terms = weighted_perceptual_terms(distances, self.hparams.loss)
        self.log("val/loss_perceptual", sum(terms.values()), batch_size=1, prog_bar=True, sync_dist=True)
        self.log("val/style_distance", distances["style"], batch_size=1, sync_dist=True)
        if "content" in distances:
            self.log("val/content_distance", distances["content"], batch_size=1, sync_dist=True)

    @torch.no_grad()
    def compute_visuals(self, batch: dict[str, Any]) -> dict[str, torch.Tensor]:
        content = batch["content"].to(self.device)
        style = fit_to_size(batch["style"].to(self.device), *content.shape[-2:])
        return {"content": content, "style": style, "stylized": self.stylized_image()}

    def test_translations(self, batch: dict[str, Any]) -> dict[str, tuple[torch.Tensor, list[str]]]:
        return {"stylized": (self.stylized_image(), batch["content_path"])}

    def progress_strip(self) -> torch.Tensor:
        """Snapshots (at most 12, evenly spaced, the last being the final image) side by side, [0, 1]."""
        snapshots = [*self.progress, (self.global_step, self.stylized_image().cpu())]
        if len(snapshots) > MAX_PROGRESS_TILES:
            keep = torch.linspace(0, len(snapshots) - 1, MAX_PROGRESS_TILES).round().long().tolist()
            snapshots = [snapshots[i] for i in keep]
        log.info("progress.png shows iterations %s", [step for step, _ in snapshots])
        tiles = [((image[0] + 1.0) / 2.0).clamp(0.0, 1.0) for _, image in snapshots]
        return make_grid(tiles, nrow=len(tiles), padding=2, pad_value=1.0)

    def on_fit_end(self) -> None:
        if not self.trainer.is_global_zero or self.image is None:
            return
        run_dir = Path(self.trainer.default_root_dir)
        (run_dir / "images").mkdir(parents=True, exist_ok=True)
        save_image((self.stylized_image()[0] + 1.0) / 2.0, run_dir / "stylized.png")
        save_image(self.progress_strip(), run_dir / "images" / "progress.png")

    # --- checkpoints ---------------------------------------------------------------------------
    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        super().on_save_checkpoint(checkpoint)
        checkpoint["gatys_progress"] = [(step, image) for step, image in self.progress]

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        super().on_load_checkpoint(checkpoint)
        # The image and content exist only after setup(); allocate them from the saved shapes so
        # load_from_checkpoint() works without data and a resumed run gets its image back.
        state = checkpoint.get("state_dict", {})
        if "image" in state and (self.image is None or self.image.shape != state["image"].shape):
            self.image = nn.Parameter(torch.empty_like(state["image"]))
        if "content_image" in state and self.content_image is None:
            self.content_image = torch.empty_like(state["content_image"])
        self.progress = list(checkpoint.get("gatys_progress", []))
