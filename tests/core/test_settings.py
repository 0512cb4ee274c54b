"""Plugin controls: environment variables, [tool.ember] in the nearest pyproject.toml, Trainer arguments."""

from __future__ import annotations

from pathlib import Path

import pytest

from ember.core.settings import find_pyproject, load_settings, plugin_settings
from ember.errors import MisconfigurationError


def write_pyproject(folder: Path, text: str) -> Path:
    path = folder / "pyproject.toml"
    path.write_text(text)
    return path


def test_defaults_autoload_everything_and_block_nothing(tmp_path: Path) -> None:
    settings = load_settings(environ={}, start=tmp_path)
    assert settings.autoload and not settings.strict
    assert settings.requested == () and dict(settings.blocked) == {}


def test_autoload_switch_and_requested_names_come_from_the_environment(tmp_path: Path) -> None:
    env = {"EMBER_DISABLE_PLUGIN_AUTOLOAD": "1", "EMBER_PLUGINS": " alpha, beta ,,"}
    settings = load_settings(environ=env, start=tmp_path)
    assert not settings.autoload
    assert settings.requested == ("alpha", "beta")


@pytest.mark.parametrize(("value", "expected"), [("1", True), ("true", True), ("On", True), ("0", False), ("", False)])
def test_strict_switch_accepts_the_usual_spellings(tmp_path: Path, value: str, expected: bool) -> None:
    assert load_settings(environ={"EMBER_STRICT_PLUGINS": value}, start=tmp_path).strict is expected


def test_trainer_argument_overrides_the_strict_variable(tmp_path: Path) -> None:
    env = {"EMBER_STRICT_PLUGINS": "1"}
    assert load_settings(strict=False, environ=env, start=tmp_path).strict is False
    assert load_settings(strict=True, environ={}, start=tmp_path).strict is True


def test_an_unreadable_switch_value_names_the_variable(tmp_path: Path) -> None:
    with pytest.raises(MisconfigurationError, match="EMBER_DISABLE_PLUGIN_AUTOLOAD='maybe'"):
        load_settings(environ={"EMBER_DISABLE_PLUGIN_AUTOLOAD": "maybe"}, start=tmp_path)


def test_each_way_of_blocking_is_recorded_with_where_it_came_from(tmp_path: Path) -> None:
    path = write_pyproject(tmp_path, '[tool.ember]\ndisable_plugins = ["from_file"]\n')
    settings = load_settings(
        disable_plugins=["from_trainer"], environ={"EMBER_DISABLE_PLUGINS": "from_env"}, start=tmp_path
    )
    assert settings.blocked_by("from_trainer") == "Trainer(disable_plugins=...)"
    assert settings.blocked_by("from_env") == "EMBER_DISABLE_PLUGINS"
    assert settings.blocked_by("from_file") == f"[tool.ember] disable_plugins in {path}"
    assert settings.blocked_by("other") is None


def test_disable_plugins_takes_a_single_name_too(tmp_path: Path) -> None:
    assert set(load_settings(disable_plugins="progress_bar", environ={}, start=tmp_path).blocked) == {"progress_bar"}


def test_disable_plugins_of_the_wrong_type_is_a_misconfiguration(tmp_path: Path) -> None:
    with pytest.raises(MisconfigurationError, match=r"Trainer\(disable_plugins=\[3\]\)"):
        load_settings(disable_plugins=[3], environ={}, start=tmp_path)


def test_disable_plugins_in_pyproject_must_be_a_list_of_names(tmp_path: Path) -> None:
    write_pyproject(tmp_path, '[tool.ember]\ndisable_plugins = "progress_bar"\n')
    with pytest.raises(MisconfigurationError, match="expected a list of plugin names"):
        load_settings(environ={}, start=tmp_path)


def test_the_nearest_pyproject_wins(tmp_path: Path) -> None:
    write_pyproject(tmp_path, '[tool.ember]\ndisable_plugins = ["outer"]\n')
    inner = tmp_path / "project" / "src"
    inner.mkdir(parents=True)
    nearest = write_pyproject(tmp_path / "project", '[tool.ember]\ndisable_plugins = ["inner"]\n')
    assert find_pyproject(inner) == nearest
    assert set(load_settings(environ={}, start=inner).blocked) == {"inner"}


def test_invalid_toml_is_reported_with_its_path(tmp_path: Path) -> None:
    path = write_pyproject(tmp_path, "[tool.ember\n")
    with pytest.raises(MisconfigurationError, match=f"{path} is not valid TOML"):
        load_settings(environ={}, start=tmp_path)


def test_a_plugin_reads_its_own_table(tmp_path: Path) -> None:
    write_pyproject(tmp_path, '[tool.ember.my_plugin]\nevery_n = 5\nlabel = "hi"\n')
    assert plugin_settings("my_plugin", start=tmp_path) == {"every_n": 5, "label": "hi"}
    assert plugin_settings("someone_else", start=tmp_path) == {}


def test_plugin_settings_default_to_the_working_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write_pyproject(tmp_path, "[tool.ember.my_plugin]\nevery_n = 2\n")
    monkeypatch.chdir(tmp_path)
    assert plugin_settings("my_plugin") == {"every_n": 2}


def test_allow_plugins_switches_third_parties_to_deny_by_default(tmp_path: Path) -> None:
    write_pyproject(tmp_path, '[tool.ember]\nallow_plugins = ["ember-foo", "bar"]\n')
    settings = load_settings(environ={}, start=tmp_path)
    assert settings.allows("foo", "ember_foo") and settings.allows("bar", "ember-other")
    assert not settings.allows("baz", "ember-baz")


def test_without_an_allow_list_every_plugin_is_allowed(tmp_path: Path) -> None:
    assert load_settings(environ={}, start=tmp_path).allows("anything", "ember-anything")


def test_the_environment_allow_list_replaces_the_pyprojects(tmp_path: Path) -> None:
    write_pyproject(tmp_path, '[tool.ember]\nallow_plugins = ["foo"]\n')
    settings = load_settings(environ={"EMBER_ALLOW_PLUGINS": "bar"}, start=tmp_path)
    assert settings.allows("bar", "x") and not settings.allows("foo", "x")
    assert settings.allowed_by == "EMBER_ALLOW_PLUGINS"


def test_required_plugins_come_from_pyproject_and_environment(tmp_path: Path) -> None:
    write_pyproject(tmp_path, '[tool.ember]\nrequired_plugins = ["ember-foo>=1.2"]\n')
    settings = load_settings(environ={"EMBER_REQUIRED_PLUGINS": "ember-bar; ember-baz<2"}, start=tmp_path)
    assert settings.required == ("ember-foo>=1.2", "ember-bar", "ember-baz<2")


def test_a_missing_required_plugin_is_an_error_before_any_model_code(tmp_path: Path, monkeypatch) -> None:
    import ember
    from ember.errors import PluginError

    monkeypatch.chdir(tmp_path)
    write_pyproject(tmp_path, '[tool.ember]\nrequired_plugins = ["ember-not-installed>=1.2"]\n')
    with pytest.raises(PluginError, match="ember-not-installed>=1.2 is required"):
        ember.Trainer(logger=False)


def test_an_unknown_tool_ember_key_is_warned_about_with_the_closest_known_key(tmp_path: Path) -> None:
    from ember.errors import EmberWarning

    write_pyproject(tmp_path, '[tool.ember]\ndisable_plugin = ["x"]\n\n[tool.ember.mine]\nevery = 3\n')
    with pytest.warns(EmberWarning, match="disable_plugin .* did you mean 'disable_plugins'"):
        load_settings(environ={}, start=tmp_path)


def test_end_hooks_accepts_forward_or_reverse(tmp_path: Path) -> None:
    assert load_settings(environ={"EMBER_END_HOOKS": "reverse"}, start=tmp_path).reverse_end_hooks
    with pytest.raises(MisconfigurationError, match="accepted are 'forward'"):
        load_settings(environ={"EMBER_END_HOOKS": "backwards"}, start=tmp_path)
