"""`ganstyle serve`: the page gives the pixels `ganstyle stylize` writes, refuses bad uploads with a
message and keeps serving, and works in a real browser.

The server runs on a loopback port; requests go through `gradio_client`, the ecosystem's client, with
bounded timeouts. The browser test drives Debian's Chromium through Playwright (no browser download)
and skips, saying why, where no Chromium is installed.
"""

from __future__ import annotations

import os
import shutil
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

gradio = pytest.importorskip("gradio", reason="the web extra is not installed: pip install 'ganstyle[web]'")
from gradio_client import Client, handle_file  # noqa: E402

from ganstyle.cli import main as cli_main  # noqa: E402
from ganstyle.models.base import build, build_model  # noqa: E402
from ganstyle.reference.importing import import_reference  # noqa: E402
from ganstyle.web import build_app, find_checkpoints  # noqa: E402

SCREENSHOT_DIR_ENV = "GANSTYLE_SCREENSHOT_DIR"  # where the browser test keeps its screenshot
SMALL_GENERATORS = {
    "cyclegan": {
        "_target_": "ganstyle.networks.define_generator", "netG": "resnet_1blocks", "in_channels": 3,
        "out_channels": 3, "ngf": 8, "norm": "instance",
    },
    "cut": {
        "_target_": "ganstyle.networks.ResnetGenerator", "n_blocks": 1, "in_channels": 3, "out_channels": 3,
        "ngf": 8, "norm": "instance", "antialias": True, "antialias_up": True,
    },
    "pix2pix": {
        "_target_": "ganstyle.networks.define_generator", "netG": "unet_32", "in_channels": 3,
        "out_channels": 3, "ngf": 8, "norm": "batch", "use_dropout": True,
    },
}  # fmt: skip


def reference_file(model: str, path: Path, seed: int) -> Path:
    torch.manual_seed(seed)
    torch.save(build(SMALL_GENERATORS[model]).state_dict(), path)
    return path


def adain_checkpoint(compose_config, path: Path) -> Path:
    """A small AdaIN (random VGG, as its quick start) saved the way training saves a model."""

    from ganstyle.inference.loading import MODEL_CLASS_KEY

    cfg = compose_config("model=adain", "data.load_size=36", "data.crop_size=32")
    torch.manual_seed(0)
    model = build_model(cfg.model)
    torch.save(
        {"state_dict": model.state_dict(), "hyper_parameters": dict(model.hparams), "epoch": 0,
         MODEL_CLASS_KEY: "ganstyle.models.adain.AdaIN"},
        path,
    )  # fmt: skip
    return path


def photo(name: str, size: tuple[int, int], folder: Path, seed: int = 0) -> Path:
    pixels = np.random.default_rng(seed).integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
    path = folder / name
    Image.fromarray(pixels).save(path)
    return path


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextmanager
def serving(checkpoints: list[Path], results: Path) -> Iterator[tuple[Client, int]]:
    """The page over ``checkpoints`` on a free loopback port, and a client for it; closed on exit."""
    app = build_app(checkpoints, device="cpu", output_dir=results)
    port = free_port()
    app.launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True, share=False)
    try:
        yield Client(f"http://127.0.0.1:{port}/", verbose=False, httpx_kwargs={"timeout": 120}), port
    finally:
        app.close()


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """A server over one checkpoint of each kind, its client, and the checkpoints' labels."""
    root = tmp_path_factory.mktemp("served")
    checkpoints = root / "checkpoints"
    checkpoints.mkdir()
    import_reference(
        reference_file("cyclegan", root / "G_A.pth", 1), "cyclegan", checkpoints / "cyclegan.ckpt",
        weights_ba=reference_file("cyclegan", root / "G_B.pth", 2),
    )  # fmt: skip
    import_reference(reference_file("cut", root / "G.pth", 3), "cut", checkpoints / "cut.ckpt")
    import_reference(reference_file("pix2pix", root / "P.pth", 4), "pix2pix", checkpoints / "pix2pix.ckpt")
    yield root, checkpoints


@pytest.fixture(scope="module")
def server(served):
    root, checkpoints = served
    labels = {entry.path.stem: entry.label for entry in find_checkpoints([checkpoints])}
    with serving([checkpoints], root / "results") as (client, port):
        yield client, labels, port


def translate(client: Client, files: list[Path], label: str, **options):
    arguments = {
        "direction": "AtoB", "styles": None, "alpha": 1.0, "preserve_color": False, "dropout": False,
        "size_mode": "original", "side": 1024, **options,
    }  # fmt: skip
    return client.predict(
        [handle_file(str(path)) for path in files],
        label,
        arguments["direction"],
        [handle_file(str(path)) for path in arguments["styles"]] if arguments["styles"] else None,
        arguments["alpha"],
        arguments["preserve_color"],
        arguments["dropout"],
        arguments["size_mode"],
        arguments["side"],
        api_name="/translate",
    )


def stylize_cli(checkpoint: Path, image: Path, out: Path, *flags: str) -> np.ndarray:
    assert cli_main(["stylize", str(checkpoint), str(image), "--output", str(out), *flags]) == 0
    return np.asarray(Image.open(out / f"{image.stem}.png"))


@pytest.mark.parametrize(
    ("checkpoint", "direction"),
    [("cyclegan", "AtoB"), ("cyclegan", "BtoA"), ("cut", None), ("pix2pix", None)],
)
def test_the_page_gives_the_pixels_ganstyle_stylize_writes(server, served, tmp_path, checkpoint, direction):
    client, labels, _ = server
    _, checkpoints = served
    image = photo("photo.png", (70, 45), tmp_path)
    pairs, download, status = translate(client, [image], labels[checkpoint], direction=direction or "AtoB")
    assert "1 image(s) translated" in status, status
    flags = ["--direction", direction] if direction else []
    expected = stylize_cli(checkpoints / f"{checkpoint}.ckpt", image, tmp_path / "cli", *flags)
    got = np.asarray(Image.open(download))
    assert got.shape == (45, 70, 3) and np.array_equal(got, expected)
    assert [caption for _, caption in ((item["image"], item["caption"]) for item in pairs)] == [
        "photo: before",
        "photo: after",
    ]


def test_adain_with_two_styles_gives_the_pixels_of_ganstyle_stylize(compose_config, tmp_path):
    checkpoint = adain_checkpoint(compose_config, tmp_path / "adain.ckpt")
    with serving([checkpoint], tmp_path / "results") as (client, _):
        label = find_checkpoints([checkpoint])[0].label
        image = photo("content.png", (48, 40), tmp_path)
        styles = [photo("style_a.png", (40, 40), tmp_path, 1), photo("style_b.png", (36, 44), tmp_path, 2)]
        _, download, status = translate(client, [image], label, styles=styles, alpha=0.8)
        assert "translated" in status, status
        expected = stylize_cli(
            checkpoint, image, tmp_path / "cli", "--style", *map(str, styles), "--alpha", "0.8"
        )
        assert np.array_equal(np.asarray(Image.open(download)), expected)
        _, _, status = translate(client, [image], label)
        assert "add a style image" in status


def test_several_images_come_back_as_a_zip_and_a_longest_side_is_honoured(server, tmp_path):
    import zipfile

    client, labels, _ = server
    files = [photo("a.png", (80, 40), tmp_path, 1), photo("b.png", (30, 60), tmp_path, 2)]
    pairs, download, status = translate(client, files, labels["cut"], size_mode="longest side", side=40)
    assert "2 image(s) translated" in status and len(pairs) == 4
    with zipfile.ZipFile(download) as archive:
        assert sorted(archive.namelist()) == ["a.png", "b.png"]
        assert Image.open(archive.open("a.png")).size == (40, 20)


def test_bad_uploads_get_a_message_and_the_server_keeps_serving(server, served, tmp_path):
    client, labels, _ = server
    text = tmp_path / "notes.txt"
    text.write_text("not an image")
    good = photo("good.jpg", (40, 32), tmp_path)
    truncated = tmp_path / "cut.jpg"
    truncated.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    huge = tmp_path / "huge.png"
    Image.new("1", (12000, 9000)).save(huge)  # 108 MP, a few KB on disk
    _, download, status = translate(client, [text], labels["cut"])
    assert download is None and "notes.txt is not an image" in status
    _, _, status = translate(client, [truncated], labels["cut"])
    assert "cut.jpg cannot be decoded" in status
    _, _, status = translate(client, [huge], labels["cut"])
    assert "huge.png is 12000x9000 = 108 MP, above this page's limit" in status
    pairs, _, status = translate(client, [text, good], labels["cut"])  # the good one is still translated
    assert len(pairs) == 2 and "Skipped: notes.txt is not an image" in status


def test_a_checkpoint_deleted_while_serving_is_a_message_and_others_still_work(served, tmp_path):
    _, checkpoints = served
    copy = tmp_path / "temporary.ckpt"
    shutil.copy(checkpoints / "cut.ckpt", copy)
    with serving([copy, checkpoints / "pix2pix.ckpt"], tmp_path / "results") as (client, _):
        labels = {
            entry.path.stem: entry.label for entry in find_checkpoints([copy, checkpoints / "pix2pix.ckpt"])
        }
        copy.unlink()
        image = photo("p.png", (40, 40), tmp_path)
        _, _, status = translate(client, [image], labels["temporary"])
        assert "is no longer there" in status
        _, _, status = translate(client, [image], labels["pix2pix"])
        assert "1 image(s) translated" in status


def test_only_the_imported_direction_is_offered(served, tmp_path):
    _, checkpoints = served
    one_way = import_reference(
        reference_file("cyclegan", tmp_path / "G.pth", 5), "cyclegan", tmp_path / "one.ckpt"
    )
    with serving([one_way], tmp_path / "results") as (client, _):
        label = find_checkpoints([one_way])[0].label
        _, _, status = translate(client, [photo("p.png", (40, 40), tmp_path)], label, direction="BtoA")
        assert "AtoB only" in status


def test_checkpoints_are_listed_newest_first_with_model_run_and_epoch(served, tmp_path):
    _, checkpoints = served
    entries = find_checkpoints([checkpoints])
    assert [entry.modified for entry in entries] == sorted(
        (entry.modified for entry in entries), reverse=True
    )
    assert {entry.model for entry in entries} == {"CycleGAN", "CUT", "Pix2Pix"}
    assert all("imported" in entry.label for entry in entries)


def test_serve_binds_to_this_machine_by_default_and_warns_for_another_host():
    from ganstyle.commands.serve import is_loopback

    assert is_loopback("127.0.0.1") and is_loopback("localhost") and is_loopback("::1")
    assert not is_loopback("0.0.0.0") and not is_loopback("192.0.2.1")


def test_serve_without_checkpoints_says_how_to_get_one(tmp_path, capsys):
    assert cli_main(["serve", str(tmp_path)]) == 1
    assert "no ganstyle checkpoint under" in capsys.readouterr().err


def chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.mark.skipif(
    chromium() is None, reason="no chromium binary found (Debian: apt-get install -y chromium)"
)
def test_a_real_browser_uploads_a_photo_and_sees_the_translation(server, tmp_path):
    playwright = pytest.importorskip(
        "playwright.sync_api", reason="playwright is not installed (ganstyle[dev])"
    )
    _, _, port = server
    from skimage import data

    image = tmp_path / "astronaut.png"
    Image.fromarray(data.astronaut()).resize((192, 192)).save(image)
    shots = Path(os.environ.get(SCREENSHOT_DIR_ENV) or tmp_path)
    shots.mkdir(parents=True, exist_ok=True)
    with playwright.sync_playwright() as driver:
        browser = driver.chromium.launch(
            executable_path=chromium(),
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
            ],
        )
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.goto(f"http://127.0.0.1:{port}/", timeout=60_000)
            page.get_by_text("Translate", exact=True).wait_for(timeout=60_000)
            page.wait_for_load_state("networkidle", timeout=60_000)  # the page's own start-up calls done
            uploaded = page.locator("#images").get_by_text(
                image.stem, exact=True
            )  # the page splits off ".png"
            for _ in range(3):  # an upload the page dropped while it was still wiring itself up is redone
                page.locator("#images input[type=file]").set_input_files(str(image))
                try:
                    uploaded.first.wait_for(timeout=20_000)
                    break
                except playwright.Error:
                    continue
            uploaded.first.wait_for(timeout=1_000)
            page.get_by_text("Translate", exact=True).click()
            page.get_by_text("1 image(s) translated").wait_for(timeout=120_000)
            page.get_by_text("astronaut: after").first.wait_for(timeout=60_000)
            page.screenshot(path=str(shots / "serve_page.png"), full_page=True)
        finally:
            browser.close()
    assert (shots / "serve_page.png").stat().st_size > 10_000
