"""The end-of-training translations keep every test image: file names follow the sources, and two
sources with one stem never overwrite each other."""

from __future__ import annotations

from pathlib import Path

from ganstyle.callbacks.translate import TranslateTestSet


def test_sources_sharing_a_stem_get_distinct_outputs_and_the_first_keeps_the_plain_name(tmp_path):
    callback = TranslateTestSet(dirpath=str(tmp_path))
    out_dir = tmp_path / "AtoB"
    first = callback.output_file(out_dir, "/data/testA/a.jpg")
    second = callback.output_file(out_dir, "/data/testA/a.png")
    other = callback.output_file(out_dir, "/data/testA/b.jpg")
    assert first == out_dir / "a.png"
    assert second == out_dir / "a.png.png"
    assert other == out_dir / "b.png"
    assert callback.output_file(out_dir, "/data/testA/a.jpg") == first  # the same source, the same file
    assert callback.output_file(tmp_path / "BtoA", "/data/testB/a.png") == Path(tmp_path / "BtoA" / "a.png")
