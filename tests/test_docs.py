"""Every ```python block in docs/*.md and README.md runs: each page's blocks in order, in a fresh folder."""

from __future__ import annotations

import re
import sys
import types
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PAGES = sorted((ROOT / "docs").glob("*.md")) + [ROOT / "README.md"]
BLOCK = re.compile(r"^```python\n(.*?)^```", re.S | re.M)


def python_blocks(page: Path) -> list[str]:
    return BLOCK.findall(page.read_text())


@pytest.mark.parametrize("page", [p for p in PAGES if python_blocks(p)], ids=lambda p: p.name)
def test_page_examples_run(page: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    module = types.ModuleType(f"docs_{page.stem}")  # a real module, so examples may register themselves as plugins
    monkeypatch.setitem(sys.modules, module.__name__, module)
    for number, block in enumerate(python_blocks(page), 1):
        code = compile(block, f"{page.name} (block {number})", "exec")
        exec(code, module.__dict__)  # noqa: S102 - the examples are ours


def test_every_feature_page_is_listed_in_the_index() -> None:
    index = (ROOT / "docs" / "index.md").read_text()
    for page in PAGES:
        if page.parent.name == "docs" and page.name != "index.md":
            assert page.stem in index, f"docs/index.md does not link {page.name}"
