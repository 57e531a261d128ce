"""The page of ``ganstyle serve``: pick a trained model, drop photos, see before and after, download.

:func:`build_app` returns the Gradio Blocks, for ``ganstyle serve`` and for people who mount it in their
own app. Images go through :func:`ganstyle.inference.loading.model_stylizer`, the path ``ganstyle
stylize`` takes (large photos in tiles), so page and command give identical pixels. Each checkpoint is
loaded once (a small cache), and requests run one at a time (the queue), so two visitors never hold two
models' activations in memory together.

Safe by default: uploads are checked before any work (size, pixel count, whether they are images at
all) and every problem is a message on the page; results are written to a temporary folder only.
"""

from __future__ import annotations

import io
import os
import tempfile
import threading
import zipfile
from collections import OrderedDict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from PIL import Image

from ganstyle.web.checkpoints import ServedCheckpoint, find_checkpoints

MAX_UPLOAD_MB = 50  # per file; Gradio refuses larger uploads before they reach the page's function
MAX_PIXELS = 40_000_000  # per image: a 40 MP photo tiles in bounded memory; beyond it, use the CLI
MAX_FILES = 32  # per request
CACHED_MODELS = 2
DIRECTIONS = ("AtoB", "BtoA")  # CycleGAN's; one-way models ignore the control (it is hidden for them)
EXAMPLE_PHOTOS = ("astronaut", "coffee", "chelsea")  # scikit-image's colour photos, shipped offline


class PageError(ValueError):
    """A problem with a request, shown on the page; the server goes on serving."""


class ModelCache:
    """The last few loaded models, by checkpoint path and modification time (a rewritten file reloads)."""

    def __init__(self, size: int = CACHED_MODELS) -> None:
        self.size = size
        self.models: OrderedDict[tuple[str, float], Any] = OrderedDict()
        self.lock = threading.Lock()

    def get(self, path: Path) -> Any:
        from ganstyle.inference.loading import CheckpointError, load_model

        try:
            key = (str(path), path.stat().st_mtime)
        except OSError as error:
            raise PageError(
                f"The checkpoint {path} is no longer there ({error.strerror}); pick another model, or restart "
                "`ganstyle serve` to list the checkpoints anew."
            ) from error
        with self.lock:
            if key not in self.models:
                try:
                    self.models[key] = load_model(path)
                except CheckpointError as error:
                    raise PageError(str(error)) from error
                while len(self.models) > self.size:
                    self.models.popitem(last=False)
            self.models.move_to_end(key)
            return self.models[key]


def read_upload(path: Path, max_pixels: int = MAX_PIXELS) -> Image.Image:
    """An uploaded file as an RGB image, or a PageError naming the file and what is wrong with it."""
    from ganstyle.data.images import load_rgb

    name = Path(path).name
    try:
        with Image.open(path) as probe:
            width, height = probe.size
    except Exception as error:  # Pillow raises many types for files that are not images
        raise PageError(
            f"{name} is not an image Pillow can read ({type(error).__name__}); upload JPEG, PNG, WebP or TIFF files."
        ) from error
    if width * height > max_pixels:
        raise PageError(
            f"{name} is {width}x{height} = {width * height / 1e6:.0f} MP, above this page's limit of "
            f"{max_pixels / 1e6:.0f} MP. Resize it first, or run `ganstyle stylize` on it (it tiles any size)."
        )
    try:
        return load_rgb(path)
    except Exception as error:
        raise PageError(f"{name} cannot be decoded: it is truncated or damaged ({error}).") from error


def longest_side(image: Image.Image, side: int) -> Image.Image:
    scale = side / max(image.size)
    if scale >= 1:
        return image
    size = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
    return image.resize(size, Image.Resampling.LANCZOS)


def example_photos(folder: Path) -> list[Path]:
    """A few of the embedded photos as files, for the page's examples."""
    from skimage import data

    paths = []
    for name in EXAMPLE_PHOTOS:
        path = folder / f"{name}.png"
        if not path.exists():
            Image.fromarray(getattr(data, name)()).save(path)
        paths.append(path)
    return paths


class Translator:
    """What the page's button runs: checks, then the model exactly as ``ganstyle stylize`` applies it."""

    def __init__(
        self, checkpoints: Sequence[ServedCheckpoint], output_dir: Path, device: str | None = None
    ) -> None:
        self.by_label = {entry.label: entry for entry in checkpoints}
        self.cache = ModelCache()
        self.output_dir = output_dir
        self.device = device
        self.counter = 0
        self.lock = threading.Lock()

    def options(self, label: str | None) -> dict[str, Any]:
        """Which controls the chosen model takes: directions, style images, dropout."""
        entry = self.by_label.get(label or "")
        if entry is None:
            return {"directions": [], "styles": False, "dropout": False, "report": None}
        model = self.cache.get(entry.path)
        from ganstyle.inference.loading import count_dropout, usable_directions

        directions = usable_directions(model)
        takes_styles = "style_images" in model.inference_conditioning
        dropout_layers = 0
        if not takes_styles:  # a style model's generator needs its styles before it can be built
            dropout_layers = count_dropout(model.inference_generator(directions[0] if directions else None))
        return {
            "directions": directions,
            "styles": takes_styles,
            "dropout": dropout_layers > 0,
            "report": str(entry.report) if entry.report else None,
        }

    def __call__(
        self,
        files: Sequence[str] | None,
        label: str | None,
        direction: str | None = None,
        styles: Sequence[str] | None = None,
        alpha: float = 1.0,
        preserve_color: bool = False,
        dropout: bool = False,
        size_mode: str = "original",
        side: int = 1024,
    ) -> tuple[list[tuple[str, str]], str | None, str]:
        from ganstyle.inference.loading import CheckpointError, model_stylizer

        entry = self.by_label.get(label or "")
        if entry is None:
            return [], None, "Pick a model first."
        if not files:
            return [], None, "Upload one or more images (or pick an example)."
        if len(files) > MAX_FILES:
            return [], None, f"{len(files)} files: this page takes at most {MAX_FILES} per request."
        problems, images, names = [], [], []
        for file in files:
            try:
                image = read_upload(Path(file))
            except PageError as error:
                problems.append(str(error))
                continue
            images.append(longest_side(image, int(side)) if size_mode == "longest side" else image)
            names.append(Path(file).stem)
        if not images:
            return [], None, " ".join(problems)
        try:
            model = self.cache.get(entry.path)
            conditioning = {}
            if "style_images" in model.inference_conditioning:
                if not styles:
                    return (
                        [],
                        None,
                        f"{entry.model} transfers the style of images you give it: add a style image.",
                    )
                style_images = []
                for style in styles:
                    try:
                        style_images.append(read_upload(Path(style)))
                    except PageError as error:
                        return [], None, f"Style image: {error}"
                conditioning = {
                    "style_images": style_images,
                    "alpha": float(alpha),
                    "preserve_color": bool(preserve_color),
                }
            use_direction = direction if direction and model.inference_directions else None  # one-way: none
            stylizer = model_stylizer(
                model,
                entry.path.name,
                direction=use_direction,
                device=self.device,
                dropout=bool(dropout),
                **conditioning,
            )
            results = stylizer.stylize_images(images)
        except (PageError, CheckpointError, ValueError) as error:
            return [], None, str(error)
        pairs, written = [], []
        with self.lock:
            self.counter += 1
            folder = self.output_dir / f"request{self.counter:05d}"
        folder.mkdir(parents=True)
        for name, before, after in zip(names, images, results):
            before_path, after_path = folder / f"{name}_before.png", folder / f"{name}.png"
            before.save(before_path)
            after.save(after_path)
            pairs += [(str(before_path), f"{name}: before"), (str(after_path), f"{name}: after")]
            written.append(after_path)
        download = written[0] if len(written) == 1 else zip_files(written, folder / "translated.zip")
        status = f"{len(written)} image(s) translated with {stylizer!r}."
        if problems:
            status += " Skipped: " + " ".join(problems)
        return pairs, str(download), status


def zip_files(paths: Sequence[Path], target: Path) -> Path:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for path in paths:
            archive.write(path, path.name)
    target.write_bytes(buffer.getvalue())
    return target


def build_app(
    checkpoints: Sequence[str | Path] | Sequence[ServedCheckpoint],
    device: str | None = None,
    output_dir: str | Path | None = None,
):
    """The Gradio Blocks of the page for ``checkpoints`` (run folders, .ckpt files, or found entries)."""
    # Gradio reports usage to its authors unless told not to: a local page sends nothing anywhere.
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    import gradio as gr

    entries = [item for item in checkpoints if isinstance(item, ServedCheckpoint)]
    entries += find_checkpoints([item for item in checkpoints if not isinstance(item, ServedCheckpoint)])
    output = Path(output_dir) if output_dir else Path(tempfile.mkdtemp(prefix="ganstyle-serve-"))
    output.mkdir(parents=True, exist_ok=True)
    translator = Translator(entries, output, device)
    labels = list(translator.by_label)
    examples = example_photos(output)

    def on_model(label: str | None):
        try:
            options = translator.options(label)
        except PageError as error:
            return gr.update(), gr.update(), gr.update(), gr.update(), gr.update(), None, str(error)
        directions = options["directions"]
        return (
            gr.update(value=directions[0] if directions else DIRECTIONS[0], visible=len(directions) > 1),
            gr.update(visible=options["styles"]),
            gr.update(visible=options["styles"]),
            gr.update(visible=options["styles"]),
            gr.update(visible=options["dropout"]),
            options["report"],
            "",
        )

    with gr.Blocks(title="ganstyle") as app:
        gr.Markdown(
            "# ganstyle\nApply a trained model to your photos: pick the model, add images, press Translate. "
            f"Images up to {MAX_UPLOAD_MB} MB and {MAX_PIXELS // 1_000_000} MP; large photos run in tiles "
            "exactly as `ganstyle stylize` does."
        )
        with gr.Row():
            with gr.Column():
                model = gr.Dropdown(labels, value=labels[0] if labels else None, label="model (newest first)")
                direction = gr.Radio(list(DIRECTIONS), value=DIRECTIONS[0], label="direction", visible=False)
                styles = gr.File(file_count="multiple", label="style image(s)", visible=False)
                alpha = gr.Slider(
                    0.0, 1.0, value=1.0, step=0.05, label="style strength (alpha)", visible=False
                )
                preserve = gr.Checkbox(False, label="keep the photo's colours", visible=False)
                dropout = gr.Checkbox(False, label="dropout on (pix2pix's sampling)", visible=False)
                size_mode = gr.Radio(["original", "longest side"], value="original", label="output size")
                side = gr.Number(1024, precision=0, minimum=16, label="longest side (px)")
                files = gr.File(file_count="multiple", label="images", elem_id="images")
                gr.Examples([[[str(path)]] for path in examples], inputs=[files], label="embedded photos")
                run = gr.Button("Translate", variant="primary")
            with gr.Column():
                gallery = gr.Gallery(label="before / after", columns=2)
                download = gr.File(label="download (PNG, or a zip for several)")
                status = gr.Markdown()
                report = gr.File(label="the run's report (report.html)")
        model.change(on_model, [model], [direction, styles, alpha, preserve, dropout, report, status])
        app.load(on_model, [model], [direction, styles, alpha, preserve, dropout, report, status])
        run.click(
            translator,
            [files, model, direction, styles, alpha, preserve, dropout, size_mode, side],
            [gallery, download, status],
            api_name="translate",
        )
    app.queue(default_concurrency_limit=1, max_size=64)
    return app
