"""Plugins extend the ``ember`` command: subcommands and config sections through CommandLineHooks.

The plugins here are real distribution metadata on disk (a ``.dist-info`` folder with an
``ember.cli`` entry point beside the module) on PYTHONPATH of a real ``ember`` subprocess.
"""

from __future__ import annotations

from pathlib import Path
from textwrap import dedent
from typing import Any

import pytest

GREETER = """
import ember


@ember.hookimpl
def ember_add_commands(commands):
    greet = commands.add_parser("greet", help="say hello")
    greet.add_argument("--name", default="world")
    greet.set_defaults(run=lambda arguments: print(f"hello {arguments.name}") or 3)


@ember.hookimpl
def ember_add_arguments(parser, subcommand):
    parser.add_argument("--greeter.level", type=int, default=1, help="how loud")
"""


def distribution(site: Path, dist: str, entry_points: dict[str, str], modules: dict[str, str]) -> None:
    info = site / f"{dist.replace('-', '_')}-1.0.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 1.0\n")
    lines = "".join(f"{name} = {value}\n" for name, value in entry_points.items())
    (info / "entry_points.txt").write_text(f"[ember.cli]\n{lines}")
    for module, source in modules.items():
        (site / f"{module}.py").write_text(dedent(source))


@pytest.fixture
def site(tmp_path: Path) -> dict[str, str]:
    folder = tmp_path / "site"
    distribution(folder, "ember-greeter", {"greeter": "ember_greeter"}, {"ember_greeter": GREETER})
    return {"PYTHONPATH": str(folder)}


def test_a_plugin_command_appears_in_help_with_the_plugins_name(ember: Any, site: dict[str, str]) -> None:
    out = ember("--help", env=site).stdout
    assert "say hello (plugin greeter, ember-greeter 1.0)" in out
    assert "provided by (plugin greeter, ember-greeter 1.0)" in ember("greet", "--help", env=site).stdout
    assert "how loud (plugin greeter, ember-greeter 1.0)" in ember("fit", "--help", env=site).stdout


def test_a_plugin_command_runs_and_its_return_value_is_the_exit_code(ember: Any, site: dict[str, str]) -> None:
    result = ember("greet", "--name", "ember", env=site)
    assert (result.returncode, result.stdout) == (3, "hello ember\n")


def test_a_plugin_config_section_is_typed_and_printed(ember: Any, site: dict[str, str], tmp_path: Path) -> None:
    args = ["fit", "--model", "ember.testing.models.TinyModel", "--greeter.level", "3", "--print_config"]
    result = ember(*args, env=site, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "greeter:\n  level: 3  # --greeter.level" in result.stdout
    wrong = ember(*args[:-3], "--greeter.level", "loud", env=site, cwd=tmp_path)
    assert wrong.returncode == 2 and "greeter.level (--greeter.level) expects int, got 'loud'" in wrong.stderr


def test_a_command_plugin_that_fails_to_load_is_reported_and_the_rest_works(ember: Any, tmp_path: Path) -> None:
    folder = tmp_path / "broken"
    distribution(
        folder, "ember-broken", {"broken": "ember_broken"}, {"ember_broken": "import not_installed_anywhere\n"}
    )
    distribution(folder, "ember-greeter", {"greeter": "ember_greeter"}, {"ember_greeter": GREETER})
    result = ember("greet", env={"PYTHONPATH": str(folder)})
    assert result.returncode == 3 and result.stdout == "hello world\n"
    assert (
        "ember: command plugin broken (ember-broken 1.0) failed: cannot load ember_broken: "
        "ModuleNotFoundError: No module named 'not_installed_anywhere'" in result.stderr
    )
    assert ember("hooks", env={"PYTHONPATH": str(folder)}).returncode == 0
