"""ModelParallelStrategy with real processes on CPU (gloo): tensor parallel x FSDP on a 2 x 2 mesh."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from sharded_program import largest_difference, trained, weights  # noqa: E402

pytestmark = pytest.mark.slow


def test_tensor_parallel_with_fsdp_on_4_ranks_matches_one_process(tmp_path: Path) -> None:
    one_process = trained(tmp_path / "one_process")
    grid = trained(tmp_path / "grid", strategy="model_parallel", devices=4, batch_size=4)
    assert largest_difference(weights(grid), weights(one_process)) <= 1e-6
    assert largest_difference(weights(grid, 3), weights(grid, 0)) == 0
    assert json.loads((grid / "result_3.json").read_text())["world"] == 4
