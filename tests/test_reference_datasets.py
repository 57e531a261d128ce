"""`ganstyle datasets list | fetch`: the papers' datasets in one command that cannot half-fail.

Every download comes from an HTTP server the test starts on 127.0.0.1, serving small archives shaped
exactly like the real ones (the CycleGAN zip's top folder with trainA/ trainB/ testA/ testB/, the
pix2pix tarball's train/ val/ test/ of side-by-side pairs). The server can drop the connection half-way,
answer 404, or serve a corrupt archive; every fetch ends whole or leaves nothing but a resumable
partial file.
"""

from __future__ import annotations

import io
import tarfile
import threading
import zipfile
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest
import yaml
from PIL import Image

from ganstyle.cli import main as cli_main
from ganstyle.reference import catalogue
from ganstyle.reference.catalogue import CatalogueError
from ganstyle.reference.fetching import DownloadError, download, fetch_dataset

UNPAIRED_COUNTS = {"trainA": 4, "trainB": 5, "testA": 2, "testB": 3}
PAIRED_COUNTS = {"train": 4, "val": 2, "test": 2}


def jpeg(seed: int, size: tuple[int, int] = (40, 36)) -> bytes:
    pixels = np.random.default_rng(seed).integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="JPEG")
    return buffer.getvalue()


def unpaired_zip(top: str = "horse2zebra", counts: dict[str, int] = UNPAIRED_COUNTS) -> bytes:
    """Like CycleGAN's horse2zebra.zip: one top folder holding the four split folders of JPEGs."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for split, count in counts.items():
            for index in range(count):
                archive.writestr(f"{top}/{split}/n{split}_{index}.jpg", jpeg(hash(split) % 1000 + index))
    return buffer.getvalue()


def paired_tarball(top: str = "facades", counts: dict[str, int] = PAIRED_COUNTS) -> bytes:
    """Like pix2pix's facades.tar.gz: train/ val/ test/ of A|B images side by side."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        for split, count in counts.items():
            for index in range(count):
                data = jpeg(index, (48, 24))
                info = tarfile.TarInfo(f"{top}/{split}/{index + 1}.jpg")
                info.size = len(data)
                archive.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


class ArchiveServer:
    """Serves ``files`` on 127.0.0.1 with HTTP Range support; ``drop_after[path] = n`` sends the first
    response's headers for the whole file, then n bytes, then closes; ``missing`` paths answer 404."""

    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}
        self.drop_after: dict[str, int] = {}
        self.missing: set[str] = set()
        self.requests: list[tuple[str, str | None]] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:  # quiet
                pass

            def do_GET(self) -> None:
                server.requests.append((self.path, self.headers.get("Range")))
                if self.path in server.missing or self.path not in server.files:
                    self.send_error(404)
                    return
                data = server.files[self.path]
                start = 0
                if self.headers.get("Range"):
                    start = int(self.headers["Range"].removeprefix("bytes=").rstrip("-"))
                    if start >= len(data):
                        self.send_response(416)
                        self.end_headers()
                        return
                    self.send_response(206)
                    self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
                else:
                    self.send_response(200)
                body = data[start:]
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                cut = server.drop_after.pop(self.path, None)
                self.wfile.write(body if cut is None else body[:cut])
                if cut is not None:
                    self.close_connection = True

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}{path}"


@pytest.fixture
def server() -> Iterator[ArchiveServer]:
    running = ArchiveServer()
    running.thread.start()
    yield running
    running.httpd.shutdown()
    running.httpd.server_close()


@pytest.fixture
def local_catalogue(tmp_path, server, monkeypatch) -> Path:
    """A user catalogue (GANSTYLE_CATALOGUE) that points horse2zebra and facades at the test server,
    with the small archives' counts; datasets go to tmp_path/datasets (GANSTYLE_DATASETS)."""
    server.files["/horse2zebra.zip"] = unpaired_zip()
    server.files["/facades.tar.gz"] = paired_tarball()
    path = tmp_path / "catalogue.yaml"
    path.write_text(
        yaml.safe_dump(
            {
                "datasets": {
                    "horse2zebra": {"urls": [server.url("/horse2zebra.zip")], "counts": UNPAIRED_COUNTS},
                    "facades": {"urls": [server.url("/facades.tar.gz")], "counts": PAIRED_COUNTS},
                }
            }
        )
    )
    monkeypatch.setenv("GANSTYLE_CATALOGUE", str(path))
    monkeypatch.setenv("GANSTYLE_DATASETS", str(tmp_path / "datasets"))
    return path


def leftovers(root: Path) -> list[str]:
    return sorted(path.name for path in root.iterdir()) if root.exists() else []


# --- the catalogue ---------------------------------------------------------------------------------
def test_the_catalogue_has_every_dataset_of_the_reference_scripts():
    names = set(catalogue.datasets())
    cyclegan = {"apple2orange", "summer2winter_yosemite", "horse2zebra", "monet2photo", "cezanne2photo"}
    cyclegan |= {"ukiyoe2photo", "vangogh2photo", "cyclegan_maps", "cityscapes", "cyclegan_facades"}
    cyclegan |= {"iphone2dslr_flower", "ae_photos"}
    pix2pix = {"facades", "maps", "edges2shoes", "edges2handbags", "night2day"}
    assert cyclegan | pix2pix | {"grumpifycat"} <= names
    horse2zebra = catalogue.dataset("horse2zebra")
    assert horse2zebra.counts == {"trainA": 1067, "trainB": 1334, "testA": 120, "testB": 140}
    assert horse2zebra.urls[0].endswith("/cyclegan/datasets/horse2zebra.zip")
    assert catalogue.dataset("facades").urls[0].endswith("/pix2pix/datasets/facades.tar.gz")
    assert {entry["value"] for entry in horse2zebra.published["fid_B"]} == {77.2, 45.5, 73.4}
    assert all(entry["source"] for entry in horse2zebra.published["fid_B"])


def test_every_trainable_dataset_has_an_experiment_that_reads_its_folder(
    compose_config, tmp_path, monkeypatch
):
    monkeypatch.setenv("GANSTYLE_DATASETS", str(tmp_path / "datasets"))
    for name, entry in catalogue.datasets().items():
        if entry.kind == "photos":
            continue
        cfg = compose_config(f"experiment={entry.experiment}")
        assert cfg.dataset == name and cfg.data.root == str(tmp_path / "datasets" / entry.top), name
        assert cfg.model._target_.rsplit(".", 1)[1].lower() == {"cyclegan": "cyclegan", "cut": "cut"}.get(
            entry.model, "pix2pix"
        )


def test_the_published_generators_are_all_listed():
    names = set(catalogue.models())
    cyclegan = {"apple2orange", "orange2apple", "summer2winter_yosemite", "winter2summer_yosemite"}
    cyclegan |= {"horse2zebra", "zebra2horse", "monet2photo", "style_monet", "style_cezanne", "style_ukiyoe"}
    cyclegan |= {"style_vangogh", "sat2map", "map2sat", "cityscapes_photo2label", "cityscapes_label2photo"}
    cyclegan |= {"facades_photo2label", "facades_label2photo", "iphone2dslr_flower"}
    assert len(cyclegan) == 18 and cyclegan <= names
    assert {"horse2zebra_cut", "horse2zebra_fastcut", "pix2pix_edges2shoes"} <= names
    assert (
        catalogue.published_model("pix2pix_edges2shoes").urls[0].endswith("/models-pytorch/edges2shoes.pth")
    )


def test_an_unknown_name_suggests_the_nearest():
    with pytest.raises(CatalogueError, match="Did you mean horse2zebra"):
        catalogue.dataset("hourse2zebra")


def test_a_user_catalogue_adds_a_dataset_and_puts_a_mirror_first(tmp_path, monkeypatch):
    path = tmp_path / "mine.yaml"
    path.write_text(
        yaml.safe_dump(
            {
                "datasets": {
                    "horse2zebra": {"mirrors": ["https://mirror.example/h2z.zip"]},
                    "my_paintings": {"kind": "unpaired", "archive": "zip", "urls": ["https://example/p.zip"]},
                }
            }
        )
    )
    monkeypatch.setenv("GANSTYLE_CATALOGUE", str(path))
    assert catalogue.dataset("horse2zebra").urls[0] == "https://mirror.example/h2z.zip"
    assert len(catalogue.dataset("horse2zebra").urls) == 3  # the mirror, then the reference's two
    assert catalogue.dataset("my_paintings").kind == "unpaired"


def test_datasets_list_shows_kind_model_experiment_and_presence(local_catalogue, tmp_path, capsys):
    assert cli_main(["datasets", "fetch", "horse2zebra"]) == 0
    capsys.readouterr()
    assert cli_main(["datasets", "list"]) == 0
    lines = {line.split("│")[1].strip(): line for line in capsys.readouterr().out.splitlines() if "│" in line}
    assert "unpaired" in lines["horse2zebra"] and "cyclegan" in lines["horse2zebra"]
    assert "yes" in lines["horse2zebra"] and "no" in lines["facades"] and "paired" in lines["facades"]
    assert "not downloadable" in lines["cityscapes"]


# --- fetching ----------------------------------------------------------------------------------------
def test_fetch_unpacks_a_whole_dataset_and_prints_the_training_command(local_catalogue, tmp_path, capsys):
    assert cli_main(["datasets", "fetch", "horse2zebra"]) == 0
    root = tmp_path / "datasets"
    for split, count in UNPAIRED_COUNTS.items():
        assert len(list((root / "horse2zebra" / split).glob("*.jpg"))) == count
    assert leftovers(root) == ["horse2zebra"]  # no archive, partial file or temporary folder
    out = capsys.readouterr().out
    assert "python train.py experiment=horse2zebra trainer=gpu" in out
    assert cli_main(["datasets", "fetch", "horse2zebra"]) == 0  # present: nothing to do
    assert "was already in" in capsys.readouterr().out


def test_fetch_of_a_pix2pix_tarball_unpacks_its_splits(local_catalogue, tmp_path):
    assert cli_main(["datasets", "fetch", "facades"]) == 0
    assert len(list((tmp_path / "datasets" / "facades" / "train").glob("*.jpg"))) == 4


def test_a_dropped_connection_leaves_a_partial_file_that_the_next_fetch_resumes(
    local_catalogue, server, tmp_path, capsys
):
    size = len(server.files["/horse2zebra.zip"])
    server.drop_after["/horse2zebra.zip"] = size // 2
    assert cli_main(["datasets", "fetch", "horse2zebra"]) == 1
    root = tmp_path / "datasets"
    assert leftovers(root) == ["horse2zebra.zip.part"]
    assert (root / "horse2zebra.zip.part").stat().st_size == size // 2
    message = " ".join(capsys.readouterr().err.split())
    assert "connection closed after" in message and "run the same command again to resume" in message
    assert cli_main(["datasets", "fetch", "horse2zebra"]) == 0
    assert server.requests[-1] == ("/horse2zebra.zip", f"bytes={size // 2}-")
    assert leftovers(root) == ["horse2zebra"]


def test_a_resumed_download_is_byte_identical(server, tmp_path):
    data = unpaired_zip() * 3
    server.files["/big.zip"] = data
    server.drop_after["/big.zip"] = len(data) // 3
    target = tmp_path / "big.zip"
    with pytest.raises(DownloadError):
        download([server.url("/big.zip")], target, "big")
    assert not target.exists() and target.with_name("big.zip.part").exists()
    download([server.url("/big.zip")], target, "big")
    assert target.read_bytes() == data and not target.with_name("big.zip.part").exists()


def test_a_failing_address_falls_back_to_the_next(server, tmp_path):
    server.files["/mirror/horse2zebra.zip"] = unpaired_zip()
    entry = catalogue.dataset("horse2zebra")
    entry = type(entry)(**{**entry.__dict__, "counts": UNPAIRED_COUNTS})
    urls = [server.url("/gone/horse2zebra.zip"), server.url("/mirror/horse2zebra.zip")]
    folder, present = fetch_dataset(entry, tmp_path / "datasets", urls=urls)
    assert folder.is_dir() and not present
    assert [path for path, _ in server.requests] == ["/gone/horse2zebra.zip", "/mirror/horse2zebra.zip"]


def test_every_address_failing_names_each_and_the_ways_out(local_catalogue, server, tmp_path, capsys):
    server.missing.add("/horse2zebra.zip")
    unused = ThreadingHTTPServer(("127.0.0.1", 0), BaseHTTPRequestHandler)
    closed_port = unused.server_address[1]
    unused.server_close()  # nothing listens there now: connection refused, as with no network
    code = cli_main(
        ["datasets", "fetch", "horse2zebra", "--url", server.url("/horse2zebra.zip"), "--url",
         f"http://127.0.0.1:{closed_port}/horse2zebra.zip"]
    )  # fmt: skip
    assert code == 1
    message = " ".join(capsys.readouterr().err.split())
    assert "from any of its 2 address(es)" in message and "HTTP 404" in message and "no connection" in message
    assert "--archive FILE" in message and "Traceback" not in message
    assert leftovers(tmp_path / "datasets") == []


@pytest.mark.parametrize("damage", ["truncated", "corrupt", "wrong counts"])
def test_a_bad_archive_is_refused_and_leaves_nothing(local_catalogue, server, tmp_path, capsys, damage):
    data = server.files["/horse2zebra.zip"]
    if damage == "truncated":
        data = data[: len(data) // 2]
    elif damage == "corrupt":
        middle = len(data) // 2
        data = data[:middle] + bytes(b ^ 0xFF for b in data[middle : middle + 64]) + data[middle + 64 :]
    else:
        data = unpaired_zip(counts={**UNPAIRED_COUNTS, "testB": 1})
    server.files["/horse2zebra.zip"] = data
    assert cli_main(["datasets", "fetch", "horse2zebra"]) == 1
    message = " ".join(capsys.readouterr().err.split())
    expected = (
        "testB/ holds 1 images where the reference has 3"
        if damage == "wrong counts"
        else "truncated or corrupt"
    )
    assert expected in message, message
    assert leftovers(tmp_path / "datasets") == []


def test_an_archive_copied_by_hand_is_unpacked_and_kept(local_catalogue, tmp_path):
    copied = tmp_path / "h2z.zip"
    copied.write_bytes(unpaired_zip())
    assert cli_main(["datasets", "fetch", "horse2zebra", "--archive", str(copied)]) == 0
    assert (tmp_path / "datasets" / "horse2zebra" / "testB").is_dir() and copied.is_file()


def test_a_target_folder_with_other_content_is_refused_untouched(local_catalogue, tmp_path, capsys):
    mine = tmp_path / "datasets" / "horse2zebra"
    mine.mkdir(parents=True)
    (mine / "notes.txt").write_text("mine")
    assert cli_main(["datasets", "fetch", "horse2zebra"]) == 1
    assert "exists but is not the whole horse2zebra dataset" in capsys.readouterr().err
    assert [path.name for path in mine.iterdir()] == ["notes.txt"]


def test_no_space_left_is_said_before_downloading(local_catalogue, tmp_path, capsys, monkeypatch):
    import shutil
    from collections import namedtuple

    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr(shutil, "disk_usage", lambda path: usage(10**9, 10**9 - 1000, 1000))
    assert cli_main(["datasets", "fetch", "horse2zebra"]) == 1
    assert "not enough free disk space" in capsys.readouterr().err
    assert not (tmp_path / "datasets" / "horse2zebra").exists()


def test_an_unknown_dataset_and_one_without_address_get_one_paragraph(local_catalogue, capsys):
    assert cli_main(["datasets", "fetch", "hourse2zebra"]) == 1
    assert "Did you mean horse2zebra?" in capsys.readouterr().err
    assert cli_main(["datasets", "fetch", "cityscapes"]) == 1
    assert "no download address" in capsys.readouterr().err


def test_a_dataset_experiment_without_its_data_stops_with_the_fetch_command(
    compose_config, tmp_path, monkeypatch
):
    from ganstyle.config import ConfigError
    from ganstyle.run.config_checks import validate_config

    monkeypatch.setenv("GANSTYLE_DATASETS", str(tmp_path / "datasets"))
    with pytest.raises(ConfigError) as error:
        validate_config(compose_config("experiment=horse2zebra"))
    message = str(error.value)
    assert "experiment=horse2zebra trains on the horse2zebra dataset" in message
    assert f"ganstyle datasets fetch horse2zebra --root {tmp_path / 'datasets'}" in message
