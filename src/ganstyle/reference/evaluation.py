"""FID and KID of a trained (or imported) generator, measured the way the papers report them.

The protocol of the CycleGAN/CUT evaluations: every image of the test split, resized to 256x256 (the
reference's test-time ``--load_size 256 --crop_size 256``), no flips, translated once; FID and KID
against the other domain's test images at the same size, with the FID Inception network that
pytorch-fid and torch-fidelity share (``ganstyle fetch-weights --kinds fid_inception``). Paired data
(pix2pix) translates the test (else val) split's inputs and compares with its targets, adding PSNR
and SSIM.

:func:`evaluate` can score every checkpoint of a run folder, because papers quote the best epoch: the
table then marks the best and the last. Published numbers for the dataset (the catalogue's
``published:``, each with its source) are placed beside the run's.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from ganstyle.data.images import list_images, load_rgb
from ganstyle.utils.atomic_files import atomic_write_text

PAPER_SIZE = 256  # px, square: the reference's test-time resize
# The metric each translation direction is scored by, as training logs it.
DIRECTION_METRICS = {"AtoB": "fid_B", "BtoA": "fid_A"}


class EvaluationError(ValueError):
    """Something to evaluate is missing or unusable; the message says what and how to fix it."""


@dataclass
class Score:
    checkpoint: Path
    epoch: int | None
    direction: str
    images: int
    reference_images: int
    fid: float
    kid: float | None = None
    kid_std: float | None = None
    psnr: float | None = None
    ssim: float | None = None

    @property
    def metric(self) -> str:
        return DIRECTION_METRICS[self.direction]


@dataclass
class Evaluation:
    dataset_root: Path
    dataset_name: str | None
    size: int
    weights: str
    scores: list[Score] = field(default_factory=list)
    published: dict[str, list[dict[str, Any]]] = field(default_factory=dict)


def run_checkpoints(target: Path, every: bool) -> list[Path]:
    """The checkpoints to score: the file given, or a run folder's ``last.ckpt`` (``every``: each
    distinct checkpoint file in it, oldest epoch first; hard links to one file counted once)."""
    if target.is_file():
        return [target]
    folder = target / "checkpoints" if (target / "checkpoints").is_dir() else target
    if not folder.is_dir():
        raise EvaluationError(
            f"{target} is neither a checkpoint file nor a run folder with checkpoints/; pass "
            "outputs/<task>/runs/<run> or a .ckpt file (`ganstyle import-reference` makes one from the "
            "reference's .pth)."
        )
    files = sorted(folder.glob("*.ckpt"))
    if not files:
        raise EvaluationError(f"{folder} holds no .ckpt file; train first, or pass a checkpoint file.")
    if not every:
        last = folder / "last.ckpt"
        return [last if last.is_file() else files[-1]]
    seen, unique = set(), []
    for path in files:
        identity = (path.stat().st_dev, path.stat().st_ino)
        if identity not in seen:
            seen.add(identity)
            unique.append(path)
    return unique


def dataset_of_run(checkpoint: Path) -> tuple[Path | None, str | None]:
    """``data.root`` and the catalogue ``dataset`` of the run that wrote ``checkpoint`` (its
    .hydra/config.yaml), where recorded."""
    config = checkpoint.resolve().parent.parent / ".hydra" / "config.yaml"
    if not config.is_file():
        return None, None
    from omegaconf import OmegaConf

    saved = OmegaConf.load(config)
    root = OmegaConf.select(saved, "data.root", default=None)
    name = OmegaConf.select(saved, "dataset", default=None)
    root = None if root is None or "${" in str(root) else Path(str(root))
    return root, None if name is None else str(name)


def test_split(root: Path) -> tuple[str, dict[str, Path]]:
    """The dataset's kind and its test folders: unpaired ``testA``/``testB``, or a paired split."""
    if (root / "testA").is_dir() and (root / "testB").is_dir():
        return "unpaired", {"A": root / "testA", "B": root / "testB"}
    for split in ("test", "val"):
        if (root / split).is_dir() and list_images(root / split):
            return "paired", {"pairs": root / split}
    raise EvaluationError(
        f"{root} has no test split: an unpaired dataset needs testA/ and testB/, a paired one test/ (or "
        "val/) of side-by-side A|B images. Pass --dataset NAME or --data-root DIR."
    )


def square(image: Image.Image, size: int) -> Image.Image:
    return image.resize((size, size), Image.Resampling.BICUBIC) if image.size != (size, size) else image


def to_metric_tensor(image: Image.Image) -> torch.Tensor:
    """(3, H, W) in [-1, 1], the metrics' input convention."""
    array = torch.from_numpy(np.asarray(image, dtype=np.uint8).copy()).permute(2, 0, 1)
    return array.float() / 127.5 - 1.0


def split_pair(image: Image.Image) -> tuple[Image.Image, Image.Image]:
    width, height = image.size
    half = width // 2
    return image.crop((0, 0, half, height)), image.crop((half, 0, 2 * half, height))


def _images(folder: Path, size: int) -> list[Image.Image]:
    paths = list_images(folder)
    if len(paths) < 2:
        raise EvaluationError(f"{folder} holds {len(paths)} image file(s); FID needs at least 2 per side.")
    return [square(load_rgb(path), size) for path in paths]


def _metrics(weights: str, weights_path: str | None, count: int, device: torch.device):
    from ganstyle.metrics.fid import DistributionMetrics

    # KID's subsets: the standard 1000 images per subset, clamped to the smaller side's count.
    return DistributionMetrics(
        weights=weights,
        weights_path=weights_path,
        kid=True,
        kid_subsets=100,
        kid_subset_size=max(2, min(1000, count)),
        weights_config_key="--weights-path",
    ).to(device)


def _score_translation(
    stylizer, sources: Sequence[Image.Image], references: Sequence[Image.Image], metrics, device
) -> tuple[dict[str, float], list[Image.Image]]:
    translated = stylizer.stylize_images(list(sources))
    for image in references:
        metrics.update(to_metric_tensor(image)[None].to(device), real=True)
    for image in translated:
        metrics.update(to_metric_tensor(image)[None].to(device), real=False)
    return metrics.compute(), translated


def _psnr_ssim(outputs: Sequence[Image.Image], targets: Sequence[Image.Image]) -> tuple[float, float]:
    from torchmetrics.functional.image import peak_signal_noise_ratio, structural_similarity_index_measure

    fake = torch.stack([to_metric_tensor(image) for image in outputs]) / 2 + 0.5
    real = torch.stack([to_metric_tensor(image) for image in targets]) / 2 + 0.5
    psnr = float(peak_signal_noise_ratio(fake, real, data_range=1.0))
    ssim = float(structural_similarity_index_measure(fake, real, data_range=1.0))
    return psnr, ssim


def checkpoint_epoch(path: Path) -> int | None:
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except Exception:
        return None
    epoch = checkpoint.get("epoch") if isinstance(checkpoint, dict) else None
    return int(epoch) if isinstance(epoch, int) else None


def evaluate(
    target: Path,
    dataset_root: Path,
    dataset_name: str | None = None,
    every_checkpoint: bool = False,
    directions: Sequence[str] | None = None,
    size: int = PAPER_SIZE,
    weights: str = "fid_inception",
    weights_path: str | None = None,
    device: str | None = None,
    published: dict[str, list[dict[str, Any]]] | None = None,
    paired_direction: str = "AtoB",
    save_translations: Path | None = None,
) -> Evaluation:
    """Score each checkpoint of ``target`` on ``dataset_root``'s test split (see the module docstring)."""
    from ganstyle.inference.loading import load_model, model_stylizer, resolve_device, usable_directions

    checkpoints = run_checkpoints(target, every_checkpoint)
    kind, folders = test_split(dataset_root)
    run_device = resolve_device(device)
    result = Evaluation(dataset_root, dataset_name, size, weights, published=dict(published or {}))
    if kind == "unpaired":
        domain = {"A": _images(folders["A"], size), "B": _images(folders["B"], size)}
    else:
        pairs = [split_pair(load_rgb(path)) for path in list_images(folders["pairs"])]
        if paired_direction == "BtoA":
            pairs = [(b, a) for a, b in pairs]
        sources = [square(a, size) for a, _ in pairs]
        targets = [square(b, size) for _, b in pairs]
    for checkpoint in checkpoints:
        model = load_model(checkpoint)  # once per checkpoint, for every direction scored
        epoch = checkpoint_epoch(checkpoint)
        # One-way models (CUT, pix2pix) translate A -> B and take no direction.
        two_way = usable_directions(model)
        available = two_way or ["AtoB"]
        wanted = [d for d in (directions or available) if d in available] if kind == "unpaired" else [None]
        if not wanted:
            raise EvaluationError(
                f"{checkpoint} translates {', '.join(available)}; --direction {', '.join(directions or [])} "
                "is not among them."
            )
        for direction in wanted:
            stylizer = model_stylizer(
                model,
                checkpoint.name,
                direction=direction if two_way else None,
                device=run_device,
                tile=None,
                batch_size=8,
            )
            if kind == "unpaired":
                source, reference = ("A", "B") if direction in (None, "AtoB") else ("B", "A")
                metrics = _metrics(weights, weights_path, min(len(domain["A"]), len(domain["B"])), run_device)
                scores, translated = _score_translation(
                    stylizer, domain[source], domain[reference], metrics, run_device
                )
                score = Score(
                    checkpoint, epoch, direction or "AtoB", len(domain[source]),
                    len(domain[reference]), float(scores["fid"]), _float(scores.get("kid")),
                    _float(scores.get("kid_std")),
                )  # fmt: skip
                names = list_images(folders[source])
            else:
                metrics = _metrics(weights, weights_path, len(targets), run_device)
                scores, translated = _score_translation(stylizer, sources, targets, metrics, run_device)
                psnr, ssim = _psnr_ssim(translated, targets)
                score = Score(
                    checkpoint, epoch, paired_direction, len(sources), len(targets),
                    float(scores["fid"]), _float(scores.get("kid")), _float(scores.get("kid_std")), psnr, ssim,
                )  # fmt: skip
                names = list_images(folders["pairs"])
            result.scores.append(score)
            if save_translations is not None:
                out = save_translations / checkpoint.stem / score.direction
                out.mkdir(parents=True, exist_ok=True)
                for image, source_path in zip(translated, names):
                    image.save(out / f"{source_path.stem}.png")
    return result


def _float(value: Any) -> float | None:
    return None if value is None else float(value)


def best_and_last(scores: Sequence[Score]) -> dict[str, dict[str, Score]]:
    """Per direction: the lowest-FID score and the score of the last (highest-epoch) checkpoint."""
    by_direction: dict[str, list[Score]] = {}
    for score in scores:
        by_direction.setdefault(score.direction, []).append(score)
    summary = {}
    for direction, group in by_direction.items():
        last = max(
            group, key=lambda s: (s.epoch if s.epoch is not None else -1, s.checkpoint.name == "last.ckpt")
        )
        summary[direction] = {"best": min(group, key=lambda s: s.fid), "last": last}
    return summary


def markdown_table(evaluation: Evaluation) -> str:
    """The evaluation as a Markdown page: one row per checkpoint and direction, best and last marked,
    the papers' numbers for the same metric beside them."""
    lines = [
        f"# Evaluation on {evaluation.dataset_name or evaluation.dataset_root}",
        "",
        f"Test split of {evaluation.dataset_root}, every image resized to {evaluation.size}x{evaluation.size}, "
        f"no flips; FID/KID with the {evaluation.weights} Inception weights"
        + (" (random weights: the values mean nothing)" if evaluation.weights == "random" else "")
        + ".",
        "",
        "| checkpoint | epoch | direction | metric | FID | KID (x100) | PSNR | SSIM | images | reference images | |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    marks = best_and_last(evaluation.scores)
    for score in evaluation.scores:
        flags = [name for name, chosen in marks[score.direction].items() if chosen is score]
        kid = "" if score.kid is None else f"{100 * score.kid:.2f} ± {100 * (score.kid_std or 0):.2f}"
        psnr = "" if score.psnr is None else f"{score.psnr:.2f}"
        ssim = "" if score.ssim is None else f"{score.ssim:.3f}"
        epoch = "" if score.epoch is None else str(score.epoch)
        lines.append(
            f"| {score.checkpoint.name} | {epoch} | {score.direction} | {score.metric} | {score.fid:.2f} | {kid} | "
            f"{psnr} | {ssim} | {score.images} | {score.reference_images} | {', '.join(flags)} |"
        )
    rows = [
        (metric, entry) for metric, entries in evaluation.published.items() for entry in entries if entries
    ]
    if rows:
        lines += [
            "",
            "Published numbers for this dataset:",
            "",
            "| metric | method | value | source |",
            "| --- | --- | --- | --- |",
        ]
        lines += [
            f"| {metric} | {entry.get('method')} | {entry.get('value')} | {entry.get('source')} |"
            for metric, entry in rows
        ]
    return "\n".join(lines) + "\n"


def write_evaluation(evaluation: Evaluation, path: Path) -> Path:
    return atomic_write_text(path, markdown_table(evaluation))


__all__ = ["Evaluation", "EvaluationError", "Score", "evaluate", "markdown_table", "write_evaluation"]
