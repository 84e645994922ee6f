"""python -m recommender.evaluate, run as other tools run it: the rows it prints and its last line."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def synthetic_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, Path]:
    """One small run (4 synthetic users): its stdout and the plot it wrote."""
    plot = tmp_path_factory.mktemp("evaluate") / "synthetic.png"
    out = subprocess.run(
        [sys.executable, "-m", "recommender.evaluate", "--dataset", "synthetic", "--users", "4", "--plot", str(plot)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    return out.stdout, plot


def test_evaluate_synthetic_ends_with_the_auc_line_tools_read(synthetic_run: tuple[str, Path]) -> None:
    stdout, plot = synthetic_run
    last = stdout.strip().splitlines()[-1]
    assert re.fullmatch(r"auc=\d\.\d{4}", last), last
    assert 0.5 < float(last.removeprefix("auc=")) <= 1.0  # planted tastes: better than chance
    assert plot.stat().st_size > 0


def test_evaluate_synthetic_has_an_ease_row_and_prints_its_ridge(synthetic_run: tuple[str, Path]) -> None:
    stdout, _ = synthetic_run
    assert re.search(r"^\| EASE +\| +[01]\.\d{4} \|$", stdout, re.M), stdout
    assert re.search(r"^EASE: lambda=\d+ chosen on validation", stdout, re.M), stdout


def test_evaluate_synthetic_reads_its_last_line_off_the_systems_fused_row(synthetic_run: tuple[str, Path]) -> None:
    stdout, _ = synthetic_run
    row = re.search(r"^\| per-user W&D \+ kNN \+ EASE fusion +\| +([01]\.\d{4}) \|$", stdout, re.M)
    assert row, stdout
    assert stdout.strip().splitlines()[-1] == f"auc={row.group(1)}"
