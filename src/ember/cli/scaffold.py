"""``ember plugins new NAME``: a plugin package that installs and passes its test as generated."""

from __future__ import annotations

import re
import sys
from pathlib import Path
from string import Template

from ember.cli.common import OK, USAGE

_PYPROJECT = Template("""\
[build-system]
requires = ["setuptools>=61"]
build-backend = "setuptools.build_meta"

[project]
name = "ember-$name"
version = "0.1.0"
description = "$title: an ember plugin"
requires-python = ">=3.10"
dependencies = ["ember>=$ember"]

[project.entry-points."ember.plugins"]
$entry = "$package.plugin:$cls"

[tool.setuptools.packages.find]
where = ["src"]
""")

_INIT = Template('''\
"""ember-$name: $title, an ember plugin.

Installed, it is loaded by every ember Trainer (entry point ``$entry`` in
the group ``ember.plugins``); ``ember plugins show $entry`` describes it.
"""

from $package.plugin import $cls

__all__ = ["$cls"]
''')

_PLUGIN = Template('''\
"""$cls: counts the training batches of a run and reports them at the end."""

from __future__ import annotations

from typing import Any

import ember


class $cls(ember.Callback):
    """Counts training batches; the count is kept in checkpoints."""

    def __init__(self) -> None:
        self.batches = 0

    def on_train_batch_end(self, trainer: Any, pl_module: Any, outputs: Any, batch: Any, batch_idx: int) -> None:
        self.batches += 1

    def on_train_end(self, trainer: Any, pl_module: Any) -> None:
        print(f"$entry: {self.batches} training batches")

    def state_dict(self) -> dict[str, Any]:
        return {"batches": self.batches}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.batches = state_dict["batches"]
''')

_TEST = Template('''\
"""Tests for $cls, with the fixtures of ember.testing (a pytest plugin installed with ember)."""

import pytest

from $package import $cls


def test_counts_training_batches(trainer_factory, tiny_model):
    counter = $cls()
    trainer_factory(callbacks=[counter], max_epochs=2, limit_train_batches=3).fit(tiny_model)
    assert counter.batches == 6


@pytest.mark.ember_plugins("$entry")  # ember.testing keeps other installed plugins out of tests
def test_is_loaded_by_every_trainer_once_installed(trainer_factory):
    trainer = trainer_factory()
    assert [type(c) for c in trainer.callbacks].count($cls) == 1


def test_hooks_run_in_order(trainer_factory, tiny_model, hook_recorder):
    trainer_factory(callbacks=[$cls(), hook_recorder], max_epochs=1, limit_train_batches=2).fit(tiny_model)
    hook_recorder.assert_sequence(["on_train_batch_end", "on_train_batch_end"], hooks=["on_train_batch_end"])
''')

_README = Template("""\
# ember-$name

$title: an ember plugin. Once installed, every ember Trainer loads it.

```console
pip install -e . && python -m pytest
ember plugins show $entry
```
""")


def new(name: str, directory: str) -> int:
    if not re.fullmatch(r"[A-Za-z][A-Za-z0-9_-]*", name):
        print(f"ember: plugin name {name!r}: use letters, digits, '-' and '_', starting with a letter", file=sys.stderr)
        return USAGE
    from ember.version import __version__

    entry = name.lower().replace("-", "_")
    words = [w for w in entry.split("_") if w]
    fields = {
        "name": name.lower(),
        "entry": entry,
        "package": f"ember_{entry}",
        "cls": "".join(w.capitalize() for w in words),
        "title": " ".join(words).capitalize(),
        "ember": ".".join(__version__.split(".")[:2]),
    }
    root = Path(directory) / f"ember-{fields['name']}"
    if root.exists():
        print(f"ember: {root} exists already; choose another name or --directory", file=sys.stderr)
        return USAGE
    files = {
        "pyproject.toml": _PYPROJECT,
        "README.md": _README,
        f"src/{fields['package']}/__init__.py": _INIT,
        f"src/{fields['package']}/plugin.py": _PLUGIN,
        "tests/test_plugin.py": _TEST,
    }
    for relative, template in files.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(template.substitute(fields), encoding="utf-8")
        print(f"created {path}")
    print(f"\nnext: pip install -e {root} && python -m pytest {root}")
    return OK
