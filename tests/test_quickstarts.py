"""The quick starts with ground truth must learn their rendering, not a tint.

Each test runs a model's default quick start (`python train.py model=<name>`, nothing changed but
the logger and the output folder) and reads the last validation row of its metrics.csv.

- CycleGAN (unpaired, the ink-grade rendering): G(A) at least 3 dB closer to the true rendering
  than the untranslated photo (val/psnr_B against val/psnr_B_identity) and an SSIM at least 0.05
  above the photo's (val/ssim_B against val/ssim_B_identity). The grade alone, drawn perfectly
  without a single outline, would pass; a tint, a blur or a copy of the photo would not.
- CUT (the same data) does not reach that bar in 800 steps, nor does the CUT authors' code at the
  same sizes on the same data (docs/quickstart.md): its ResNet generator's outputs are still blurry.
  Its test asserts what it reaches, as the reference does: within 1.5 dB of the photo's PSNR and an
  SSIM of at least 0.38 (its runs: 12.70-14.35 dB against 13.69 over seeds and thread counts, SSIM
  0.41-0.47), so a collapse of its colours (7 dB) or of its structure fails.
- pix2pix (paired, the cel rendering): 3 dB above the photo and an SSIM of at least 0.55; the right
  tint alone reaches +0.6 dB and SSIM 0.50 on these crops, so the outlines are what it must draw.

Minutes each on 2 CPU cores: `pytest -m slow tests/test_quickstarts.py`.
"""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
from helpers import run_train

MARGIN_DB = 3.0
SSIM_MARGIN = 0.05  # unpaired quick starts: above the untranslated photo's SSIM
MIN_SSIM = 0.55  # pix2pix: its cel rendering's bar
CUT_MIN_MARGIN_DB, CUT_MIN_SSIM = -1.5, 0.38  # what CUT and the reference code reach (module docstring)
MAX_IDENTITY_PSNR_DB = 16.0  # the domains stay this far apart: a rendering made easier would show here


def final_validation(run_dir: Path) -> dict[str, float]:
    """The last row of `run_dir/metrics.csv` that holds val/psnr_B, as floats."""
    with (run_dir / "metrics.csv").open(newline="") as handle:
        rows = [row for row in csv.DictReader(handle) if row.get("val/psnr_B")]
    assert rows, f"no validation row in {run_dir / 'metrics.csv'}"
    keys = ("val/psnr_B", "val/psnr_B_identity", "val/ssim_B", "val/ssim_B_identity")
    return {key: float(rows[-1][key]) for key in keys}


@pytest.mark.slow
@pytest.mark.parametrize("model", ["cyclegan", "pix2pix", "cut"])
def test_quick_start_reaches_its_bar(model, tmp_path):
    run_dir = tmp_path / "run"
    result = run_train(
        f"model={model}",
        "logger=csv",
        f"hydra.run.dir={run_dir}",
        cwd=tmp_path,
        cache=tmp_path / "cache",
        timeout=3600,  # one intra-op thread (see run_train); a busy machine took 25 minutes
    )
    assert result.returncode == 0, result.stderr[-3000:]
    final = final_validation(run_dir)
    assert final["val/psnr_B_identity"] <= MAX_IDENTITY_PSNR_DB, final
    margin = final["val/psnr_B"] - final["val/psnr_B_identity"]
    if model == "cut":
        assert margin >= CUT_MIN_MARGIN_DB and final["val/ssim_B"] >= CUT_MIN_SSIM, final
        return
    assert margin >= MARGIN_DB, final
    if model == "pix2pix":
        assert final["val/ssim_B"] >= MIN_SSIM, final
    else:
        assert final["val/ssim_B"] - final["val/ssim_B_identity"] >= SSIM_MARGIN, final
