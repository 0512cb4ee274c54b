"""``ember hooks --order [HOOK]``: the resolved call order here, with the reason for each position, without torch."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from ember.cli import main
from ember.core import discovery


@pytest.fixture(autouse=True)
def project(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    monkeypatch.setenv("EMBER_DISABLE_PLUGIN_AUTOLOAD", "1")
    monkeypatch.chdir(tmp_path)
    discovery.clear_cache()
    return tmp_path


def test_order_of_one_hook_lists_each_plugin_with_its_reason(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["hooks", "--order", "on_train_end"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "on_train_end"
    assert lines[1].split() == ["1.", "progress_bar", "ember", lines[1].split()[3], "registered", "1st"]
    assert lines[2].split()[:2] == ["2.", "model_checkpoint"] and lines[2].endswith("trylast, registered 3rd")


def test_reverse_end_hooks_from_pyproject_shows_in_the_order(project: Path, capsys) -> None:
    (project / "pyproject.toml").write_text('[tool.ember]\nend_hooks = "reverse"\n')
    main(["hooks", "--order", "on_train_end"])
    assert "end hooks reversed" in capsys.readouterr().out


def test_a_misspelt_hook_is_a_usage_error_with_a_suggestion(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["hooks", "--order", "on_trian_end"]) == 2
    assert "did you mean 'on_train_end'?" in capsys.readouterr().err


def test_order_of_every_hook_does_not_import_torch() -> None:
    code = "import sys; from ember.cli import main; main(['hooks', '--order']); print('torch' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.splitlines()[-1] == "False"
    assert "on_train_epoch_end\n  1.  model_checkpoint" in result.stdout


def test_a_missing_required_plugin_is_reported_not_raised(project: Path, capsys) -> None:
    (project / "pyproject.toml").write_text('[tool.ember]\nrequired_plugins = ["ember-zzz"]\n')
    assert main(["hooks", "--order"]) == 1
    assert "ember-zzz is required" in capsys.readouterr().err
