"""The data layer: loading and checking images, transforms, the four data modules."""

from __future__ import annotations

import io
import json
from pathlib import Path

import lightning as L
import numpy as np
import pytest
import torch
from PIL import Image

import ganstyle  # noqa: F401  (installs the torchvision import fix before lightning loads)
from ganstyle.data import (
    ContentStyleDataModule,
    DatasetError,
    DatasetWarning,
    EmbeddedDataModule,
    ImageTransform,
    PairedDataModule,
    UnpairedDataModule,
    UnpairedImageDataset,
    denormalize,
    list_images,
    load_rgb,
    materialize_embedded_dataset,
    render_style,
    tensor_to_pil,
    to_tensor,
    validate_image_folder,
)
from ganstyle.data import embedded as embedded_module

SIZE, LOAD, CROP = 40, 36, 32  # tiny images keep the whole file fast


def noise(seed: int, size: tuple[int, int] = (SIZE, SIZE)) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)


def write(path: Path, pixels: np.ndarray | Image.Image) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    image = pixels if isinstance(pixels, Image.Image) else Image.fromarray(pixels)
    image.save(path)
    return path


def make_unpaired(root: Path, n_a: int = 3, n_b: int = 5, n_test: int = 2, targets: bool = False) -> Path:
    for folder, count, offset in (
        ("trainA", n_a, 0),
        ("trainB", n_b, 100),
        ("testA", n_test, 200),
        ("testB", n_test, 300),
    ):
        for i in range(count):
            pixels = noise(offset + i)
            write(root / folder / f"img{i}.png", pixels)
            if targets and folder == "testA":
                write(root / "testA2B" / f"img{i}.png", 255 - pixels)  # ground truth = the inverted image
    return root


def unpaired_module(root: Path, **kwargs) -> UnpairedDataModule:
    return UnpairedDataModule(str(root), **{"load_size": LOAD, "crop_size": CROP, **kwargs})


# --------------------------------------------------------------------------------------- unpaired


def test_unpaired_batches_hold_a_and_b_in_minus_one_to_one_with_paths(tmp_path):
    dm = unpaired_module(make_unpaired(tmp_path), batch_size=2)
    dm.setup("fit")
    batch = next(iter(dm.train_dataloader()))
    assert set(batch) == {"A", "B", "A_path", "B_path"}
    for key in ("A", "B"):
        assert batch[key].shape == (2, 3, CROP, CROP) and batch[key].dtype == torch.float32
        assert batch[key].min() >= -1 and batch[key].max() <= 1
    assert all(Path(p).parent.name == "trainA" for p in batch["A_path"])
    assert all(Path(p).parent.name == "trainB" for p in batch["B_path"])
    assert dm.hparams.crop_size == CROP and dm.hparams.root == str(tmp_path)


def test_unpaired_epoch_is_max_of_domain_sizes_and_cycles_through_a(tmp_path):
    dm = unpaired_module(make_unpaired(tmp_path, n_a=3, n_b=5))
    dm.setup("fit")
    dataset = dm.train_dataset
    assert len(dataset) == 5
    assert [Path(dataset[i]["A_path"]).name for i in range(5)] == [
        "img0.png",
        "img1.png",
        "img2.png",
        "img0.png",
        "img1.png",
    ]


def test_serial_batches_pair_a_i_with_b_i_modulo_b(tmp_path):
    dm = unpaired_module(make_unpaired(tmp_path, n_a=5, n_b=2), serial_batches=True)
    dm.setup("fit")
    assert [Path(dm.train_dataset[i]["B_path"]).name for i in range(5)] == ["img0.png", "img1.png"] * 2 + [
        "img0.png"
    ]


def test_random_b_pick_and_crops_follow_the_data_seed(tmp_path):
    root = make_unpaired(tmp_path, n_a=2, n_b=5)

    def draws(seed):
        dm = unpaired_module(root, seed=seed)
        dm.setup("fit")
        return [(s["B_path"], s["A"].sum().item()) for s in (dm.train_dataset[i] for i in range(5))]

    assert draws(0) == draws(0)
    assert draws(0) != draws(1)


def test_validation_b_target_is_pixel_aligned_with_a(tmp_path):
    dm = unpaired_module(make_unpaired(tmp_path, targets=True), batch_size=2)
    dm.setup("fit")
    batch = next(iter(dm.val_dataloader()))
    assert set(batch) == {"A", "B", "A_path", "B_path", "B_target"}
    # The target is the inverted image, so an aligned crop is exactly -A (up to bicubic rounding).
    torch.testing.assert_close(batch["B_target"], -batch["A"], atol=2.5 / 127.5, rtol=0)


def test_b_target_shares_the_random_crop_and_flip_of_a(tmp_path):
    root = make_unpaired(tmp_path, targets=True)
    paths = list_images(root / "testA")
    transform = ImageTransform("resize_and_crop", LOAD, CROP, flip=True, train=True)
    dataset = UnpairedImageDataset(paths, paths, transform, targets=list_images(root / "testA2B"))
    for i in range(len(dataset)):
        sample = dataset[i]
        torch.testing.assert_close(sample["B_target"], -sample["A"], atol=2.5 / 127.5, rtol=0)


def test_validation_has_no_b_target_without_testA2B_and_uses_first_val_max_images(tmp_path):
    dm = unpaired_module(make_unpaired(tmp_path, n_test=4), val_max_images=3)
    dm.setup("validate")
    assert len(dm.val_dataset) == 3
    assert "B_target" not in dm.val_dataset[0]
    assert dm.train_dataset is None  # validate does not scan the training folders


def test_missing_testA2B_file_is_reported_by_name(tmp_path):
    root = make_unpaired(tmp_path, targets=True)
    (root / "testA2B" / "img1.png").unlink()
    with pytest.raises(DatasetError, match=r"img1\.png: no file of that name"):
        unpaired_module(root).setup("fit")


def test_eval_transform_is_deterministic_and_train_transform_is_random(tmp_path):
    image = Image.fromarray(noise(0))
    evaluation = ImageTransform("resize_and_crop", LOAD, CROP, flip=True, train=False)
    assert torch.equal(evaluation(image), evaluation(image))
    train = ImageTransform("resize_and_crop", LOAD, CROP, flip=True, train=True)
    generator = torch.Generator().manual_seed(0)
    outputs = {train(image, generator).sum().item() for _ in range(10)}
    assert len(outputs) > 1


# ------------------------------------------------------------------------------- folder problems


def test_missing_root_names_it_and_the_expected_layout(tmp_path):
    with pytest.raises(DatasetError) as error:
        unpaired_module(tmp_path / "horse2zebra").setup("fit")
    message = str(error.value)
    assert str(tmp_path / "horse2zebra") in message and "does not exist" in message
    assert "trainA/, trainB/, testA/ and testB/" in message and "data.root=" in message


def test_root_one_level_too_high_points_at_the_nested_dataset(tmp_path):
    make_unpaired(tmp_path / "horse2zebra")
    with pytest.raises(DatasetError, match=r"trainA/ is one level down, in .*horse2zebra: set data.root"):
        unpaired_module(tmp_path).setup("fit")


def test_missing_domain_folder_names_it(tmp_path):
    root = make_unpaired(tmp_path)
    for path in list_images(root / "trainB"):
        path.unlink()
    (root / "trainB").rmdir()
    with pytest.raises(
        DatasetError, match=r"trainB \(domain B training images\) folder .*trainB does not exist"
    ):
        unpaired_module(root).setup("fit")


def test_empty_folder_says_no_images_and_points_at_subfolders(tmp_path):
    root = make_unpaired(tmp_path)
    for path in list_images(root / "trainA"):
        path.unlink()
    write(root / "trainA" / "horses" / "x.png", noise(0))
    with pytest.raises(DatasetError) as error:
        unpaired_module(root).setup("fit")
    message = str(error.value)
    assert f"{root / 'trainA'} contains no image files" in message and "horses" in message
    assert "\n" not in message  # one paragraph


def _corrupt(path: Path) -> None:
    path.write_bytes(b"this is not an image" * 10)


def _zero_bytes(path: Path) -> None:
    path.write_bytes(b"")


def _truncated_jpeg(path: Path) -> None:
    buffer = io.BytesIO()
    Image.fromarray(noise(7, (64, 64))).save(buffer, "JPEG")
    path.write_bytes(buffer.getvalue()[: len(buffer.getvalue()) // 2])


@pytest.mark.parametrize(
    ("damage", "reason"),
    [(_corrupt, "cannot be decoded"), (_zero_bytes, "empty file"), (_truncated_jpeg, "truncated")],
    ids=["corrupt", "zero-byte", "truncated-jpeg"],
)
def test_bad_file_stops_setup_with_a_message_naming_it(tmp_path, damage, reason):
    root = make_unpaired(tmp_path)
    damage(root / "trainB" / "bad.jpg")
    with pytest.raises(DatasetError) as error:
        unpaired_module(root).setup("fit")
    message = str(error.value)
    assert "1 of 6 image files" in message and "bad.jpg" in message and reason in message
    assert "data.skip_bad_images=true" in message


def test_skip_bad_images_skips_them_with_a_warning(tmp_path):
    root = make_unpaired(tmp_path)
    _corrupt(root / "trainB" / "bad.jpg")
    _zero_bytes(root / "trainB" / "empty.png")
    dm = unpaired_module(root, skip_bad_images=True)
    with pytest.warns(DatasetWarning, match=r"Skipping 2 of 7 .*bad\.jpg.*empty\.png"):
        dm.setup("fit")
    assert len(dm.train_dataset.paths_b) == 5


def test_skip_bad_images_still_fails_when_nothing_usable_is_left(tmp_path):
    _corrupt(tmp_path / "only.png")
    with pytest.raises(DatasetError, match="No usable image is left"):
        validate_image_folder(tmp_path, "style images", skip_bad=True)


def test_list_images_is_sorted_flat_and_skips_hidden_and_other_files(tmp_path):
    for name in ("b.PNG", "a.jpg", "._a.jpg", "notes.txt"):
        (tmp_path / name).write_bytes(b"x")
    write(tmp_path / "sub" / "c.png", noise(0))
    assert [p.name for p in list_images(tmp_path)] == ["a.jpg", "b.PNG"]


# ---------------------------------------------------------------------------- colour conversions


def test_grayscale_and_palette_images_load_as_rgb(tmp_path):
    grey = write(tmp_path / "grey.png", Image.fromarray(np.full((4, 4), 77, np.uint8), "L"))
    assert np.all(np.asarray(load_rgb(grey)) == 77) and load_rgb(grey).mode == "RGB"
    palette = Image.new("P", (4, 4))
    palette.putpalette([10, 20, 30] + [200, 100, 0] * 255)
    palette.putpixel((0, 0), 1)
    loaded = np.asarray(load_rgb(write(tmp_path / "palette.png", palette)))
    assert tuple(loaded[0, 0]) == (200, 100, 0) and tuple(loaded[1, 1]) == (10, 20, 30)


def test_rgba_is_composited_on_white(tmp_path):
    rgba = np.zeros((1, 3, 4), np.uint8)
    rgba[0, :, :3] = (0, 0, 255)
    rgba[0, :, 3] = (0, 255, 128)  # transparent, opaque, half
    loaded = np.asarray(load_rgb(write(tmp_path / "rgba.png", Image.fromarray(rgba, "RGBA"))))
    assert tuple(loaded[0, 0]) == (255, 255, 255)
    assert tuple(loaded[0, 1]) == (0, 0, 255)
    assert abs(int(loaded[0, 2, 0]) - 127) <= 1 and loaded[0, 2, 2] == 255


def test_16_bit_images_are_scaled_to_8_bit_not_clipped(tmp_path):
    values = np.array([[0, 257 * 100, 32896, 65535]], np.uint16)
    png = write(tmp_path / "deep.png", Image.fromarray(values))
    assert Image.open(png).mode == "I;16"
    assert np.asarray(load_rgb(png))[0, :, 0].tolist() == [0, 100, 128, 255]
    wide = write(tmp_path / "wide.tif", Image.fromarray(values.astype(np.int32), "I"))
    assert np.asarray(load_rgb(wide))[0, :, 1].tolist() == [0, 100, 128, 255]


def test_cmyk_images_load_as_rgb(tmp_path):
    cmyk = Image.new("CMYK", (2, 1))
    cmyk.putpixel((0, 0), (0, 0, 0, 0))  # no ink: white
    cmyk.putpixel((1, 0), (0, 255, 255, 0))  # magenta + yellow: red
    loaded = np.asarray(load_rgb(write(tmp_path / "cmyk.tif", cmyk)))
    assert tuple(loaded[0, 0]) == (255, 255, 255) and tuple(loaded[0, 1]) == (255, 0, 0)
    jpeg = np.asarray(load_rgb(write(tmp_path / "cmyk.jpg", cmyk.resize((16, 8), Image.Resampling.NEAREST))))
    assert (
        np.abs(jpeg[4, 2].astype(int) - 255).max() < 10
        and np.abs(jpeg[4, 13].astype(int) - (255, 0, 0)).max() < 40
    )


def test_mixed_mode_folder_gives_three_channel_batches(tmp_path):
    root = make_unpaired(tmp_path)
    write(root / "trainA" / "grey.png", Image.fromarray(np.full((SIZE, SIZE), 9, np.uint8)))
    write(root / "trainA" / "deep.png", Image.fromarray(np.full((SIZE, SIZE), 40000, np.uint16)))
    write(root / "trainA" / "alpha.png", Image.fromarray(np.full((SIZE, SIZE, 4), 90, np.uint8), "RGBA"))
    dm = unpaired_module(root, batch_size=6, serial_batches=True)
    dm.setup("fit")
    assert next(iter(dm.train_dataloader()))["A"].shape == (6, 3, CROP, CROP)


# ------------------------------------------------------------------------------------ transforms


def test_crop_larger_than_load_size_is_rejected_at_construction(tmp_path):
    with pytest.raises(ValueError, match=r"crop_size=300 is larger than data.load_size=286"):
        UnpairedDataModule(str(tmp_path), load_size=286, crop_size=300)
    with pytest.raises(ValueError, match="positive integer"):
        UnpairedDataModule(str(tmp_path), crop_size=0)
    with pytest.raises(ValueError, match="Unknown preprocess mode 'resize'"):
        UnpairedDataModule(str(tmp_path), preprocess="resize")


@pytest.mark.parametrize(
    ("preprocess", "expected"),
    [
        ("resize_and_crop", (CROP, CROP)),
        ("scale_width_and_crop", (CROP, CROP)),
        ("crop", (CROP, CROP)),
        ("scale_shorter_side_and_crop", (CROP, CROP)),
        ("scale_width", (LOAD, 54)),  # width to 36, height 60 * 36 / 40
        ("none", (40, 60)),
    ],
)
def test_preprocess_modes_give_the_reference_sizes(preprocess, expected):
    image = Image.fromarray(noise(0, (40, 60)))
    for train in (True, False):
        tensor = ImageTransform(preprocess, LOAD, CROP, flip=True, train=train)(image)
        assert (tensor.shape[2], tensor.shape[1]) == expected


def test_preprocess_none_rounds_sizes_to_a_multiple_of_four():
    tensor = ImageTransform("none")(Image.fromarray(noise(0, (41, 30))))
    assert tensor.shape[1:] == (32, 40)


def test_image_smaller_than_crop_is_a_bad_file_with_preprocess_crop_but_fine_when_resizing(tmp_path):
    root = make_unpaired(tmp_path)
    write(root / "trainA" / "tiny.png", noise(1, (20, 50)))
    with pytest.raises(DatasetError, match=r"tiny\.png: 20x50 px is smaller than the required 32x32"):
        unpaired_module(root, preprocess="crop").setup("fit")
    dm = unpaired_module(root)  # resize_and_crop scales every image to load_size first
    dm.setup("fit")
    assert dm.train_dataset[3]["A"].shape == (3, CROP, CROP)


def test_uncropped_images_of_different_sizes_cannot_share_a_batch(tmp_path):
    root = make_unpaired(tmp_path)
    write(root / "trainA" / "wide.png", noise(1, (80, 40)))
    with pytest.raises(DatasetError, match="data.batch_size=1"):
        unpaired_module(root, preprocess="none", batch_size=2).setup("fit")


def test_denormalize_and_tensor_to_pil_invert_to_tensor():
    image = Image.fromarray(noise(3))
    tensor = to_tensor(image)
    assert tensor.min() >= -1 and tensor.max() <= 1
    assert denormalize(torch.tensor([-1.0, 0.0, 1.0])).tolist() == [0.0, 0.5, 1.0]
    assert np.array_equal(np.asarray(tensor_to_pil(tensor)), np.asarray(image))


# ---------------------------------------------------------------------------------------- paired


def make_side_by_side(root: Path, splits=("train", "test"), count: int = 3, width: int = 2 * SIZE) -> Path:
    for split in splits:
        for i in range(count):
            left = noise(i, (width // 2, SIZE))
            write(
                root / split / f"{i}.png", np.concatenate([left, 255 - left[:, : width - width // 2]], axis=1)
            )
    return root


def test_paired_side_by_side_splits_at_half_width_with_a_shared_crop(tmp_path):
    dm = PairedDataModule(str(make_side_by_side(tmp_path)), load_size=LOAD, crop_size=CROP, batch_size=3)
    dm.setup("fit")
    assert dm.layout == "aligned"
    batch = next(iter(dm.train_dataloader()))
    assert batch["A"].shape == batch["B"].shape == (3, 3, CROP, CROP)
    assert batch["A_path"] == batch["B_path"]
    torch.testing.assert_close(batch["B"], -batch["A"], atol=2.5 / 127.5, rtol=0)


def test_paired_direction_b_to_a_swaps_input_and_target(tmp_path):
    root = make_side_by_side(tmp_path)
    samples = {}
    for direction in ("AtoB", "BtoA"):
        dm = PairedDataModule(str(root), direction=direction, load_size=LOAD, crop_size=CROP)
        dm.setup("validate")  # deterministic transform: the same crop for both runs
        samples[direction] = dm.val_dataset[0]
    assert torch.equal(samples["AtoB"]["A"], samples["BtoA"]["B"])
    assert torch.equal(samples["AtoB"]["B"], samples["BtoA"]["A"])


def test_paired_two_folders_match_files_by_name(tmp_path):
    for split in ("train", "test"):
        for i in range(3):
            pixels = noise(i)
            write(tmp_path / f"{split}A" / f"{i}.bmp", pixels)
            write(tmp_path / f"{split}B" / f"{i}.png", 255 - pixels)  # same stem, other format
    dm = PairedDataModule(
        str(tmp_path), load_size=LOAD, crop_size=CROP, preprocess="resize_and_crop", batch_size=3
    )
    dm.setup("fit")
    assert dm.layout == "folders"
    batch = next(iter(dm.val_dataloader()))
    assert [Path(a).stem for a in batch["A_path"]] == [Path(b).stem for b in batch["B_path"]]
    torch.testing.assert_close(batch["B"], -batch["A"], atol=2.5 / 127.5, rtol=0)


def test_paired_mismatched_names_are_listed(tmp_path):
    for i in range(3):
        write(tmp_path / "trainA" / f"{i}.png", noise(i))
        write(tmp_path / "trainB" / f"{i + 1}.png", noise(i))
    with pytest.raises(DatasetError, match=r"1 names are only in trainA \(0\) and 1 only in trainB \(3\)"):
        PairedDataModule(str(tmp_path), load_size=LOAD, crop_size=CROP).setup("fit")


def test_paired_size_mismatch_is_an_error(tmp_path):
    write(tmp_path / "trainA" / "x.png", noise(0))
    write(tmp_path / "trainB" / "x.png", noise(0, (SIZE, SIZE + 2)))
    with pytest.raises(DatasetError, match=r"x.png 40x40 vs x.png 40x42"):
        PairedDataModule(str(tmp_path), load_size=LOAD, crop_size=CROP).setup("fit")


def test_paired_odd_width_side_by_side_image_is_an_error_naming_it(tmp_path):
    root = make_side_by_side(tmp_path)
    write(root / "train" / "odd.png", noise(0, (81, SIZE)))
    with pytest.raises(DatasetError, match=r"odd\.png: width 81 px is odd"):
        PairedDataModule(str(root), load_size=LOAD, crop_size=CROP).setup("fit")


def test_paired_root_with_neither_layout_explains_both(tmp_path):
    (tmp_path / "images").mkdir()
    with pytest.raises(DatasetError, match=r"neither train/ nor trainA/\+trainB/.*side by side"):
        PairedDataModule(str(tmp_path)).setup("fit")


# --------------------------------------------------------------------------------- content/style


def test_content_style_batches_and_a_deterministic_held_out_split(tmp_path):
    for i in range(10):
        write(tmp_path / "photos" / f"{i}.png", noise(i, (48, 40)))
    write(tmp_path / "styles" / "wave.png", noise(50, (60, 50)))
    write(tmp_path / "styles" / "scream.png", noise(51, (50, 60)))
    style_file = write(tmp_path / "starry.jpg", noise(52, (70, 50)))
    dm = ContentStyleDataModule(
        str(tmp_path / "photos"), [str(style_file), str(tmp_path / "styles")], crop_size=CROP, batch_size=4
    )
    dm.setup("fit")
    assert dm.num_styles == 3 and dm.style_image_weights == [1.0, 0.5, 0.5]
    assert len(dm.train_dataset) == 9 and len(dm.val_dataset) == 1
    assert not set(dm.train_dataset.content_paths) & set(dm.val_dataset.content_paths)
    batch = next(iter(dm.train_dataloader()))
    assert batch["content"].shape == batch["style"].shape == (4, 3, CROP, CROP)
    assert batch["style_index"].dtype == torch.int64 and batch["style_index"].shape == (4,)
    assert set(batch) == {"content", "style", "style_index", "content_path", "style_path"}
    assert dm.style_image(0).shape == (1, 3, 36, 50)  # shorter side to load_size = 32 + 32 // 8


def test_content_style_weights_select_the_sampled_styles(tmp_path):
    write(tmp_path / "photos" / "train" / "0.png", noise(0))
    write(tmp_path / "photos" / "test" / "0.png", noise(1))
    styles = [str(write(tmp_path / f"s{i}.png", noise(10 + i))) for i in range(2)]
    dm = ContentStyleDataModule(str(tmp_path / "photos"), styles, crop_size=CROP, style_weights=[0.0, 1.0])
    dm.setup("fit")
    assert {dm.train_dataset[0]["style_index"] for _ in range(20)} == {1}
    assert Path(dm.val_dataset[0]["content_path"]).parent.name == "test"


def test_content_style_missing_style_file_is_named(tmp_path):
    write(tmp_path / "photos" / "0.png", noise(0))
    missing = tmp_path / "starry_night.jpg"
    dm = ContentStyleDataModule(str(tmp_path / "photos"), str(missing), crop_size=CROP)
    with pytest.raises(DatasetError, match=rf"The style image {missing} does not exist"):
        dm.setup("fit")


# -------------------------------------------------------------------------------------- embedded

SMALL = {"image_size": 48, "n_train": 12, "n_test": 3}


@pytest.fixture(scope="module")
def embedded_root(tmp_path_factory) -> Path:
    return materialize_embedded_dataset(tmp_path_factory.mktemp("embedded") / "data")


def _files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_embedded_dataset_builds_byte_identical_twice_in_the_cycle_gan_layout(embedded_root, tmp_path):
    again = materialize_embedded_dataset(tmp_path / "again")
    assert _files(embedded_root) == _files(again)
    counts = json.loads((embedded_root / "manifest.json").read_text())["counts"]
    assert counts == {"trainA": 320, "trainB": 320, "testA": 16, "testB": 16, "testA2B": 16}
    assert Image.open(next((embedded_root / "trainA").iterdir())).size == (96, 96)


def test_embedded_dataset_is_reused_from_cache_and_rebuilt_when_parameters_change(tmp_path, monkeypatch):
    root = materialize_embedded_dataset(tmp_path / "data", **SMALL)
    stamp = (root / "manifest.json").stat().st_mtime_ns

    def fail(*args):
        raise AssertionError("rebuilt a complete dataset")

    with monkeypatch.context() as patch:
        patch.setattr(embedded_module, "_build", fail)
        assert materialize_embedded_dataset(tmp_path / "data", **SMALL) == root
    assert (root / "manifest.json").stat().st_mtime_ns == stamp
    materialize_embedded_dataset(tmp_path / "data", **{**SMALL, "n_train": 14})
    assert len(list_images(root / "trainA")) == 14


def test_embedded_build_interrupted_leaves_no_partial_dataset(tmp_path, monkeypatch):
    calls = []

    def render_then_crash(image):
        calls.append(1)
        if len(calls) > 5:
            raise KeyboardInterrupt
        return image

    monkeypatch.setattr(embedded_module, "render_style", render_then_crash)
    with pytest.raises(KeyboardInterrupt):
        materialize_embedded_dataset(tmp_path / "data", **SMALL)
    assert list(tmp_path.iterdir()) == []


def test_embedded_refuses_to_overwrite_a_foreign_folder(tmp_path):
    (tmp_path / "mine.txt").write_text("keep me")
    with pytest.raises(DatasetError, match="is not overwritten"):
        materialize_embedded_dataset(tmp_path, **SMALL)
    assert (tmp_path / "mine.txt").read_text() == "keep me"


def test_embedded_testA2B_is_render_style_of_testA(embedded_root):
    for path in list_images(embedded_root / "testA"):
        truth = np.asarray(Image.open(embedded_root / "testA2B" / path.name))
        assert np.array_equal(truth, render_style(np.asarray(Image.open(path))))


def test_embedded_domains_are_unpaired_no_train_b_is_a_rendering_of_a_train_a(embedded_root):
    def stack(paths):
        return np.stack([np.asarray(p, dtype=np.float32).ravel() for p in paths])

    rendered_a = stack(render_style(np.asarray(Image.open(p))) for p in list_images(embedded_root / "trainA"))
    train_b = stack(Image.open(p) for p in list_images(embedded_root / "trainB"))
    squared = (train_b**2).sum(1)[:, None] + (rendered_a**2).sum(1)[None] - 2 * train_b @ rendered_a.T
    rms = np.sqrt(np.maximum(squared, 0) / train_b.shape[1])
    assert rms.min() > 5  # an exact rendering would be 0; the nearest real pair differs a lot more
    # And by construction: no B window repeats an A window (same photo, similar zoom and place).
    windows = json.loads((embedded_root / "manifest.json").read_text())["windows"]
    train_a = np.array(windows["trainA"])
    assert not any(embedded_module._near(np.array(window), train_a) for window in windows["trainB"])


def test_render_style_is_a_visible_deterministic_change():
    photo = np.asarray(Image.fromarray(embedded_module.PHOTOS["astronaut"]()).resize((96, 96)))
    styled = render_style(photo)
    assert styled.shape == photo.shape and styled.dtype == np.uint8
    assert np.array_equal(styled, render_style(photo))
    assert np.abs(styled.astype(int) - photo).mean() > 10
    assert styled[..., 2].mean() < photo[..., 2].mean()  # the warm tint takes out blue


def test_render_ink_grade_is_the_documented_grade_with_ink_on_edges():
    photo = np.asarray(Image.fromarray(embedded_module.PHOTOS["astronaut"]()).resize((96, 96)))
    rendered = embedded_module.render_ink_grade(photo)
    assert rendered.dtype == np.uint8 and np.array_equal(rendered, embedded_module.render_ink_grade(photo))
    rgb = photo / 255.0
    graded = rgb ** np.array([0.4, 0.8, 2.8])  # the docstring's R^0.4, G^0.8, B^2.8
    ink = embedded_module._edge_ink(photo.astype(np.float32) / 255.0)
    expected = np.rint(np.clip(graded * (1 - 0.6 * ink)[..., None], 0, 1) * 255)
    assert np.abs(rendered.astype(int) - expected).max() <= 1  # float32 against float64 rounding
    assert (ink > 0.5).mean() > 0.02 and (ink == 0).mean() > 0.5  # outlines, on edges only


def test_render_ink_grade_keeps_the_photo_away_from_the_outlines():
    # Near-invertible: where there is no ink, inverting the per-channel powers gives the photo back.
    photo = np.asarray(Image.fromarray(embedded_module.PHOTOS["coffee"]()).resize((96, 96)))
    rendered = embedded_module.render_ink_grade(photo) / 255.0
    recovered = rendered ** (1 / np.array([0.4, 0.8, 2.8]))
    no_ink = embedded_module._edge_ink(photo.astype(np.float32) / 255.0) == 0
    bright = (photo / 255.0).min(axis=-1) > 0.2  # B^2.8 leaves dark blues few levels
    error = np.abs(recovered - photo / 255.0)[no_ink & bright]
    assert error.mean() < 0.01


def test_the_renderings_are_named_and_cached_in_separate_folders(tmp_path):
    assert embedded_module.renderer("cel") is embedded_module.render_style
    with pytest.raises(ValueError, match="data.rendering takes one of cel, ink_grade"):
        embedded_module.renderer("watercolour")
    cel = embedded_module.default_cache_dir(96, 200, 16, 0)
    ink = embedded_module.default_cache_dir(96, 200, 16, 0, "ink_grade")
    assert (
        cel.name == "embedded-v1-96px-200x16-seed0" and ink.name == "embedded_ink_grade-v1-96px-200x16-seed0"
    )
    root = materialize_embedded_dataset(tmp_path / "ink", **SMALL, rendering="ink_grade")
    assert json.loads((root / "manifest.json").read_text())["params"]["rendering"] == "ink_grade"
    for path in list_images(root / "testA"):
        truth = np.asarray(Image.open(root / "testA2B" / path.name))
        assert np.array_equal(truth, embedded_module.render_ink_grade(np.asarray(Image.open(path))))


def test_the_unpaired_quick_starts_train_on_the_ink_grade_and_pix2pix_on_the_cel_rendering(compose_config):
    for model in ("cyclegan", "cut"):
        data = compose_config(f"model={model}").data
        assert data.rendering == "ink_grade" and "embedded_ink_grade-" in data.cache_dir
    assert "rendering" not in compose_config("model=pix2pix").data  # pix2pix's pairs: render_style


def test_embedded_data_module_builds_on_setup_and_validates_against_targets(tmp_path):
    dm = EmbeddedDataModule(
        cache_dir=str(tmp_path / "data"), **SMALL, load_size=36, crop_size=32, batch_size=2
    )
    assert dm.hparams.n_train == 12 and dm.hparams.cache_dir == str(tmp_path / "data")
    dm.prepare_data()
    dm.setup("fit")
    assert len(dm.train_dataset) == 12
    batch = next(iter(dm.val_dataloader()))
    assert batch["A"].shape == batch["B_target"].shape == (2, 3, 32, 32)


# ------------------------------------------------------------------------- resumable data order


def epoch_batches(loader, epoch: int) -> list[tuple[list[str], list[str], torch.Tensor]]:
    """The batches of ``epoch``, as Lightning's fit loop draws them: set_epoch, then iterate."""
    loader.sampler.set_epoch(epoch)
    return [(batch["A_path"], batch["B_path"], batch["A"]) for batch in loader]


def assert_same_batches(mine, theirs) -> None:
    assert [(a, b) for a, b, _ in mine] == [(a, b) for a, b, _ in theirs]
    assert all(torch.equal(x, y) for (_, _, x), (_, _, y) in zip(mine, theirs, strict=True))


def test_epoch_k_after_a_resume_has_the_order_and_crops_of_an_uninterrupted_epoch_k(tmp_path):
    root = make_unpaired(tmp_path, n_a=6, n_b=4)
    uninterrupted = unpaired_module(root, batch_size=2, seed=3)
    uninterrupted.setup("fit")
    loader = uninterrupted.train_dataloader()
    epochs = [epoch_batches(loader, epoch) for epoch in range(3)]
    resumed = unpaired_module(root, batch_size=2, seed=3)  # a new process: fresh module, loader, sampler
    resumed.setup("fit")
    assert_same_batches(epoch_batches(resumed.train_dataloader(), 2), epochs[2])


def test_each_epoch_draws_its_own_order_crops_and_b_picks(tmp_path):
    dm = unpaired_module(make_unpaired(tmp_path, n_a=8, n_b=8))
    dm.setup("fit")
    loader = dm.train_dataloader()
    orders = [
        [path for a_paths, _, _ in epoch_batches(loader, epoch) for path in a_paths] for epoch in range(3)
    ]
    assert all(sorted(order) == sorted(orders[0]) for order in orders)  # each a permutation of trainA
    assert orders[0] != orders[1] != orders[2] != orders[0]
    samples = []
    for epoch in range(2):
        dm.train_dataset.set_epoch(epoch)
        samples.append([dm.train_dataset[i] for i in range(8)])
    assert [s["B_path"] for s in samples[0]] != [s["B_path"] for s in samples[1]]
    assert any(not torch.equal(x["A"], y["A"]) for x, y in zip(*samples))


def test_order_and_crops_follow_the_data_seed(tmp_path):
    root = make_unpaired(tmp_path, n_a=8, n_b=8)

    def first_epoch(seed):
        dm = unpaired_module(root, seed=seed)
        dm.setup("fit")
        return epoch_batches(dm.train_dataloader(), 0)

    assert_same_batches(first_epoch(0), first_epoch(0))
    assert [a for a, _, _ in first_epoch(0)] != [a for a, _, _ in first_epoch(1)]


def test_serial_batches_keep_the_file_order_every_epoch(tmp_path):
    dm = unpaired_module(make_unpaired(tmp_path, n_a=5, n_b=3), batch_size=2, serial_batches=True)
    dm.setup("fit")
    loader = dm.train_dataloader()
    for epoch in range(3):
        batches = epoch_batches(loader, epoch)
        assert [Path(p).name for a_paths, _, _ in batches for p in a_paths] == [
            f"img{i}.png" for i in range(5)
        ]
        assert [Path(p).name for _, b_paths, _ in batches for p in b_paths] == [
            f"img{i % 3}.png" for i in range(5)
        ]


def test_persistent_workers_see_the_epoch_and_draw_what_the_main_process_draws(tmp_path):
    root = make_unpaired(tmp_path, n_a=6, n_b=6)
    with_workers = unpaired_module(root, batch_size=2, num_workers=2)
    in_process = unpaired_module(root, batch_size=2)
    for dm in (with_workers, in_process):
        dm.setup("fit")
    loader = with_workers.train_dataloader()
    assert loader.persistent_workers
    for epoch in range(2):  # the workers started in epoch 0 must pick up epoch 1
        assert_same_batches(epoch_batches(loader, epoch), epoch_batches(in_process.train_dataloader(), epoch))


class RecordBatches(L.LightningModule):
    """Records which images each training step saw; learns nothing."""

    def __init__(self) -> None:
        super().__init__()
        self.weight = torch.nn.Parameter(torch.zeros(()))
        self.seen: dict[int, list[tuple[str, float]]] = {}

    def training_step(self, batch, batch_idx):
        self.seen.setdefault(self.current_epoch, []).extend(
            (path, image.sum().item()) for path, image in zip(batch["A_path"], batch["A"])
        )
        return self.weight * 0

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.0)


def fit(datamodule, root_dir: Path, max_epochs: int, ckpt_path: Path | None = None) -> RecordBatches:
    model = RecordBatches()
    trainer = L.Trainer(
        accelerator="cpu",
        max_epochs=max_epochs,
        limit_val_batches=0,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        default_root_dir=root_dir,
    )
    trainer.fit(model, datamodule=datamodule, ckpt_path=ckpt_path)
    trainer.save_checkpoint(root_dir / "last.ckpt")
    return model


def test_lightning_resume_continues_the_data_order_of_an_uninterrupted_run(tmp_path):
    root = make_unpaired(tmp_path / "data", n_a=6, n_b=6)
    uninterrupted = fit(unpaired_module(root, batch_size=2), tmp_path / "straight", max_epochs=3)
    fit(unpaired_module(root, batch_size=2), tmp_path / "first", max_epochs=2)
    resumed = fit(
        unpaired_module(root, batch_size=2),
        tmp_path / "resumed",
        3,
        ckpt_path=tmp_path / "first" / "last.ckpt",
    )
    assert set(resumed.seen) == {2}
    assert resumed.seen[2] == uninterrupted.seen[2]
    assert uninterrupted.seen[0] != uninterrupted.seen[1] != uninterrupted.seen[2]


def test_under_ddp_lightning_shards_the_epoch_order_and_passes_the_epoch_to_the_augmentation(tmp_path):
    from lightning.fabric.utilities.distributed import DistributedSamplerWrapper
    from lightning.pytorch.trainer.connectors.data_connector import _get_distributed_sampler

    dm = unpaired_module(make_unpaired(tmp_path, n_a=6, n_b=6))
    dm.setup("fit")
    loader = dm.train_dataloader()
    for epoch in (0, 3):
        shards = []
        for rank in range(2):  # what Lightning gives each of two processes
            sampler = _get_distributed_sampler(
                loader, shuffle=True, overfit_batches=0, num_replicas=2, rank=rank
            )
            assert isinstance(sampler, DistributedSamplerWrapper)
            sampler.set_epoch(epoch)
            shards.append(list(sampler))
        assert sorted(shards[0] + shards[1]) == list(range(6))
        assert loader.sampler.epoch == dm.train_dataset.random.epoch == epoch
