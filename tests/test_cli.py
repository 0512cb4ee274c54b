"""The ``ember`` command: plugins list/show/new, hooks, --version, exit codes, and no torch while listing."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import ember
from ember.cli import main
from ember.core import discovery
from ember.core.pluginmanager import HOOK_NAMES
from ember.hookspecs import TWO_WAY_HOOKS

KEYS = {"name", "distribution", "version", "source", "status", "reason", "object", "hooks"}


pytestmark = pytest.mark.usefixtures("plugin_discovery_fresh")  # tests/conftest.py


def listed(capsys: pytest.CaptureFixture[str]) -> tuple[int, list[dict[str, object]]]:
    code = main(["plugins", "list", "--json"])
    return code, json.loads(capsys.readouterr().out)


def test_list_json_has_one_object_per_plugin_with_the_documented_keys(capsys: pytest.CaptureFixture[str]) -> None:
    _, entries = listed(capsys)
    assert entries and all(set(entry) == KEYS for entry in entries)
    assert {entry["status"] for entry in entries} <= set(discovery.STATUSES)
    builtins = {entry["name"]: entry for entry in entries if entry["source"] == "builtin"}
    assert builtins["model_checkpoint"]["distribution"] == "ember"
    assert builtins["model_checkpoint"]["version"] == ember.__version__
    assert "on_train_batch_end" in builtins["model_checkpoint"]["hooks"]


def test_list_exits_zero_when_every_plugin_loads(capsys: pytest.CaptureFixture[str]) -> None:
    code, entries = listed(capsys)
    assert [e["name"] for e in entries if e["status"] in ("failed", "incompatible")] == []
    assert code == 0


def test_list_exits_one_when_a_plugin_fails(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("EMBER_PLUGINS", "ghost")
    code, entries = listed(capsys)
    assert code == 1
    ghost = next(e for e in entries if e["name"] == "ghost")
    assert ghost["status"] == "failed" and "no installed distribution" in ghost["reason"]


def test_a_blocked_builtin_is_listed_as_blocked_with_the_reason(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("EMBER_DISABLE_PLUGINS", "progress_bar")
    _, entries = listed(capsys)
    bar = next(e for e in entries if e["name"] == "progress_bar")
    assert (bar["status"], bar["reason"], bar["hooks"]) == ("blocked", "blocked by EMBER_DISABLE_PLUGINS", [])


def test_list_prints_a_table_with_a_summary(capsys: pytest.CaptureFixture[str]) -> None:
    main(["plugins", "list"])
    out = capsys.readouterr().out
    assert out.splitlines()[0].split() == ["NAME", "STATUS", "SOURCE", "DISTRIBUTION", "HOOKS", "REASON"]
    assert any(line.split()[:3] == ["progress_bar", "active", "builtin"] for line in out.splitlines())
    assert "`ember plugins show NAME`" in out


def test_show_describes_a_plugin(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["plugins", "show", "timer"]) == 0
    out = capsys.readouterr().out
    assert "entry point:   timer = ember.plugins.timer:Timer [ember.plugins]" in out
    assert "distribution:  ember" in out and "(builtin)" in out
    assert "parameters:" in out and "duration" in out
    assert "state_key:" in out and "hooks:" in out and "on_train_batch_end" in out
    from ember.callbacks import Timer

    assert Timer.__doc__.strip().splitlines()[0] in out


def test_show_of_an_unknown_name_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["plugins", "show", "nope"]) == 2
    assert "no plugin named 'nope'" in capsys.readouterr().err


@pytest.mark.parametrize("argv", [[], ["plugins"], ["bogus"], ["plugins", "list", "--nope"], ["plugins", "new"]])
def test_usage_errors_exit_two(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    assert main(argv) == 2


def test_a_bad_environment_value_is_a_usage_error(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("EMBER_STRICT_PLUGINS", "perhaps")
    assert main(["plugins", "list"]) == 2
    assert "EMBER_STRICT_PLUGINS='perhaps'" in capsys.readouterr().err


def test_hooks_lists_every_hookspec_with_arguments_and_summary(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["hooks"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == len(HOOK_NAMES) + len(TWO_WAY_HOOKS)
    assert lines[0].startswith("setup(trainer, pl_module, stage)")
    assert all(len(line.split("  ")) > 1 for line in lines)


def test_version_prints_embers_version(capsys: pytest.CaptureFixture[str]) -> None:
    main(["--version"])
    assert capsys.readouterr().out.splitlines()[0] == f"ember {ember.__version__}"


def test_new_scaffolds_a_plugin_package(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["plugins", "new", "batch-counter", "--directory", str(tmp_path)]) == 0
    root = tmp_path / "ember-batch-counter"
    files = {str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()}
    assert files == {
        "pyproject.toml",
        "README.md",
        "src/ember_batch_counter/__init__.py",
        "src/ember_batch_counter/plugin.py",
        "tests/test_plugin.py",
    }
    pyproject = (root / "pyproject.toml").read_text()
    assert 'batch_counter = "ember_batch_counter.plugin:BatchCounter"' in pyproject
    assert '[project.entry-points."ember.plugins"]' in pyproject
    compile((root / "src/ember_batch_counter/plugin.py").read_text(), "plugin.py", "exec")
    assert main(["plugins", "new", "batch-counter", "--directory", str(tmp_path)]) == 2


@pytest.mark.parametrize("name", ["9lives", "has space", "dots.bad"])
def test_new_refuses_a_name_that_is_no_package_name(name: str, tmp_path: Path) -> None:
    assert main(["plugins", "new", name, "--directory", str(tmp_path)]) == 2
    assert list(tmp_path.iterdir()) == []


def run_python(code: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("EMBER_")}
    return subprocess.run([sys.executable, *args, "-c", code], capture_output=True, text=True, env=env, timeout=120)


def test_listing_builtins_and_their_hooks_never_imports_torch() -> None:
    code = (
        "import sys, ember\n"
        "ember.Callback, ember.hookimpl\n"
        "assert 'torch' not in sys.modules, 'import ember'\n"
        "from ember.cli import main\n"
        "main(['plugins', 'list', '--json'])\n"
        "main(['plugins', 'show', 'model_checkpoint'])\n"
        "main(['hooks'])\n"
        "main(['--version'])\n"
        "main(['--help'])\n"
        "heavy = sorted(m for m in ('torch', 'tqdm', 'rich', 'tensorboard', 'psutil', 'jsonargparse') if m in sys.modules)\n"
        "print('HEAVY', heavy, file=sys.stderr)\n"
    )
    result = run_python(code)
    assert "HEAVY []" in result.stderr, result.stderr[-3000:]


def test_python_dash_m_ember_is_the_same_command(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "ember", "plugins", "list", "--json"], capture_output=True, text=True, cwd=tmp_path
    )
    assert {entry["name"] for entry in json.loads(result.stdout)} >= {"model_checkpoint", "progress_bar"}
