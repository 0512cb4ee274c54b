"""Entry-point discovery: built-ins as first-party plugins, third parties' plugins, controls and faults.

Third-party distributions here are real metadata on disk (a ``.dist-info``
folder with METADATA and entry_points.txt beside the plugin's module) in a
folder put on ``sys.path``; tests/test_real_install.py installs real packages
with pip.
"""

from __future__ import annotations

import importlib
import sys
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from textwrap import dedent
from typing import Any

import pytest
import tomllib

import ember
from ember.callbacks import BUILTINS
from ember.core import discovery
from ember.core.discovery import survey
from ember.core.pluginmanager import PluginManager
from ember.errors import MisconfigurationError, PluginError, PluginWarning
from ember.testing import TinyModel

ROOT = Path(__file__).resolve().parents[2]

Install = Callable[..., None]


pytestmark = pytest.mark.usefixtures("plugin_discovery_fresh")  # tests/conftest.py


@pytest.fixture
def install(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Install]:
    """Put a distribution's metadata and modules in a folder on sys.path, as an installer would."""
    site = tmp_path / "site"
    site.mkdir()
    monkeypatch.syspath_prepend(str(site))
    modules: list[str] = []

    def install(dist: str, entry_points: dict[str, str], modules_source: dict[str, str], requires: str = "") -> None:
        for module, source in modules_source.items():
            (site / f"{module}.py").write_text(dedent(source))
            modules.append(module)
        info = site / f"{dist.replace('-', '_')}-1.0.dist-info"
        info.mkdir()
        metadata = f"Metadata-Version: 2.1\nName: {dist}\nVersion: 1.0\n"
        metadata += "".join(f"Requires-Dist: {line}\n" for line in requires.splitlines() if line)
        (info / "METADATA").write_text(metadata + "\nA test plugin.\n")
        entries = "".join(f"{name} = {value}\n" for name, value in entry_points.items())
        (info / "entry_points.txt").write_text(f"[console_scripts]\nx = y:z\n\n[ember.plugins]\n{entries}")
        importlib.invalidate_caches()

    yield install
    for module in modules:
        sys.modules.pop(module, None)


COUNTER = """
import ember

class Counter(ember.Callback):
    made = 0

    def __init__(self):
        Counter.made += 1
        self.batches = 0

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        self.batches += 1
"""

HOOKS = """
import ember

calls = []

@ember.hookimpl
def on_fit_start(trainer):
    calls.append("on_fit_start")
"""


def report(name: str) -> discovery.PluginReport:
    return next(r for r in survey() if r.name == name)


def names(trainer: Any) -> list[str]:
    return [name for name, _ in trainer.plugin_manager.list_name_plugin()]


# ---------------------------------------------------------------------------- built-ins
def pyproject_entry_points() -> dict[str, str]:
    document = tomllib.loads((ROOT / "pyproject.toml").read_text())
    return document["project"]["entry-points"]["ember.plugins"]


def test_every_builtin_is_read_from_embers_own_entry_points() -> None:
    builtins = {r.name: r for r in survey() if r.source == "builtin"}
    assert set(builtins) == set(pyproject_entry_points())
    assert {r.distribution for r in builtins.values()} == {"ember"}
    assert {r.version for r in builtins.values()} == {ember.__version__}


def test_every_concrete_builtin_callback_and_logger_has_an_entry_point() -> None:
    declared = set(pyproject_entry_points().values())
    bases = {"BaseFinetuning", "BasePredictionWriter", "ProgressBar"}  # meant to be subclassed, not loaded
    for name, module in BUILTINS.items():
        if name not in bases:
            assert f"ember.plugins.{module}:{name}" in declared
    assert {"ember.loggers.csv_logger:CSVLogger", "ember.loggers.tensorboard:TensorBoardLogger"} <= declared


def test_every_builtin_entry_point_resolves() -> None:
    failed = {r.name: r.reason for r in survey() if r.source == "builtin" and r.status == "failed"}
    assert failed == {}


def test_every_builtin_callback_registers_cleanly_with_the_hooks_it_lists() -> None:
    scratch = PluginManager()
    for r in survey():
        if r.source == "builtin" and r.kind == "callback":
            assert discovery.class_hooks(r.value, r.name, None, scratch) == r.hooks, r.name


def test_only_the_defaults_are_active_and_the_rest_available() -> None:
    statuses = {r.name: r.status for r in survey() if r.source == "builtin" and r.status != "failed"}
    assert {n for n, s in statuses.items() if s == "active"} <= {"model_checkpoint", "progress_bar", "model_summary"}
    assert statuses.get("early_stopping", "available") == "available"
    assert statuses["csv_logger"] == "available"


def test_builtin_reports_list_the_hooks_each_class_overrides() -> None:
    timer = report("timer")
    assert timer.kind == "callback"
    assert "on_train_batch_end" in timer.hooks and "on_exception" not in timer.hooks
    assert report("csv_logger").hooks == ()


def test_a_default_trainer_registers_the_defaults_by_entry_point_name(tmp_path: Path) -> None:
    trainer = ember.Trainer(logger=False, default_root_dir=tmp_path)
    assert {"model_checkpoint", "progress_bar", "model_summary"} <= set(names(trainer))
    assert trainer.plugin_manager.origin("progress_bar") == f"ember {ember.__version__}"


@pytest.mark.parametrize(
    ("flag", "name"),
    [
        ("enable_checkpointing", "model_checkpoint"),
        ("enable_progress_bar", "progress_bar"),
        ("enable_model_summary", "model_summary"),
    ],
)
def test_each_flag_turns_its_default_off(tmp_path: Path, flag: str, name: str) -> None:
    trainer = ember.Trainer(logger=False, default_root_dir=tmp_path, **{flag: False})
    assert name not in names(trainer)


def test_disable_plugins_blocks_a_default_by_name(tmp_path: Path) -> None:
    trainer = ember.Trainer(logger=False, default_root_dir=tmp_path, disable_plugins=["progress_bar"])
    assert "progress_bar" not in names(trainer) and "model_checkpoint" in names(trainer)


def test_the_users_instance_replaces_the_default(tmp_path: Path) -> None:
    from ember.callbacks import ModelCheckpoint

    mine = ModelCheckpoint(dirpath=tmp_path)
    trainer = ember.Trainer(logger=False, default_root_dir=tmp_path, callbacks=[mine])
    assert [c for c in trainer.callbacks if isinstance(c, ModelCheckpoint)] == [mine]


def test_a_flag_off_with_a_matching_callback_is_a_misconfiguration(tmp_path: Path) -> None:
    from ember.callbacks import ModelCheckpoint

    with pytest.raises(MisconfigurationError, match="enable_checkpointing=False.*ModelCheckpoint"):
        ember.Trainer(enable_checkpointing=False, callbacks=[ModelCheckpoint()], default_root_dir=tmp_path)


def test_fast_dev_run_leaves_the_summary_out(tmp_path: Path) -> None:
    assert "model_summary" not in names(ember.Trainer(fast_dev_run=True, default_root_dir=tmp_path))


def test_requested_builtin_is_constructed_without_arguments(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from ember.callbacks import Timer

    monkeypatch.setenv("EMBER_PLUGINS", "timer")
    trainer = ember.Trainer(logger=False, default_root_dir=tmp_path)
    assert any(isinstance(c, Timer) for c in trainer.callbacks)


# -------------------------------------------------------------------------- third parties
def test_metadata_is_read_once_per_process(install: Install) -> None:
    first = discovery.installed()
    assert discovery.installed() is first
    install("ember-late", {"late": "late_plugin:Counter"}, {"late_plugin": COUNTER})
    discovery.clear_cache()
    assert "late" in {ep.name for ep in discovery.installed()}


def test_the_scan_finds_what_importlib_metadata_finds(install: Install) -> None:
    install(
        "ember-counter", {"counter": "counter_plugin:Counter", "other": "counter_plugin"}, {"counter_plugin": COUNTER}
    )
    from importlib.metadata import entry_points

    expected = {(ep.name, ep.value, ep.dist.name if ep.dist else None) for ep in entry_points(group="ember.plugins")}
    assert {(ep.name, ep.value, ep.distribution) for ep in discovery.installed()} == expected


def test_a_callback_class_is_listed_with_its_distribution_and_hooks(install: Install) -> None:
    install("ember-counter", {"counter": "counter_plugin:Counter"}, {"counter_plugin": COUNTER})
    entry = report("counter").to_json()
    assert entry == {
        "name": "counter",
        "distribution": "ember-counter",
        "version": "1.0",
        "source": "entrypoint",
        "status": "active",
        "reason": None,
        "object": "counter_plugin:Counter",
        "hooks": ["on_train_batch_end"],
    }


def test_each_trainer_gets_its_own_instance_after_the_users_callbacks(
    install: Install, trainer_factory: Any, hook_recorder: Any
) -> None:
    install("ember-counter", {"counter": "counter_plugin:Counter"}, {"counter_plugin": COUNTER})
    first, second = trainer_factory(callbacks=[hook_recorder]), trainer_factory()
    counter = sys.modules["counter_plugin"].Counter
    mine = [c for c in first.callbacks if isinstance(c, counter)]
    assert len(mine) == 1 and first.callbacks.index(hook_recorder) < first.callbacks.index(mine[0])
    assert mine[0] not in second.callbacks
    first.fit(TinyModel())
    assert mine[0].batches == 16
    assert first.plugin_manager.origin("counter") == "ember-counter 1.0"


def test_a_plugin_whose_class_the_user_passed_is_not_added_twice(install: Install, trainer_factory: Any) -> None:
    install("ember-counter", {"counter": "counter_plugin:Counter"}, {"counter_plugin": COUNTER})
    mine = importlib.import_module("counter_plugin").Counter()
    trainer = trainer_factory(callbacks=[mine])
    assert [c for c in trainer.callbacks if type(c).__name__ == "Counter"] == [mine]


def test_a_factory_is_called_per_trainer(install: Install, trainer_factory: Any) -> None:
    factory = COUNTER + "\ndef make():\n    return [Counter(), Counter()]\n"
    install("ember-pair", {"pair": "pair_plugin:make"}, {"pair_plugin": factory})
    first, second = trainer_factory(), trainer_factory()
    assert names(first)[-2:] == ["pair", "pair#2"]
    assert sys.modules["pair_plugin"].Counter.made == 4
    assert not set(map(id, first.callbacks)) & set(map(id, second.callbacks))
    assert report("pair").hooks == ("on_train_batch_end",)


def test_a_hookimpl_module_runs_its_hooks(install: Install, trainer_factory: Any) -> None:
    install("ember-hooks", {"hooks": "hooks_plugin"}, {"hooks_plugin": HOOKS})
    trainer_factory(max_epochs=1, limit_train_batches=1, limit_val_batches=0).fit(TinyModel())
    assert sys.modules["hooks_plugin"].calls == ["on_fit_start"]
    assert report("hooks").hooks == ("on_fit_start",)


# ------------------------------------------------------------------------------ controls
BOOBY_TRAP = "raise RuntimeError('imported although blocked')\n"


@pytest.mark.parametrize("how", ["trainer", "environment", "pyproject"])
def test_a_blocked_plugin_is_never_imported(install: Install, trainer_factory: Any, how: str, monkeypatch: Any) -> None:
    install("ember-trap", {"trap": "trap_plugin:Thing"}, {"trap_plugin": BOOBY_TRAP})
    if how == "environment":
        monkeypatch.setenv("EMBER_DISABLE_PLUGINS", "other,trap")
    if how == "pyproject":
        Path("pyproject.toml").write_text('[tool.ember]\ndisable_plugins = ["trap"]\n')
    kwargs = {"disable_plugins": ["trap"]} if how == "trainer" else {}
    trainer_factory(**kwargs)
    assert "trap_plugin" not in sys.modules
    if how != "trainer":
        assert report("trap").status == "blocked"
        assert "trap_plugin" not in sys.modules


def test_autoload_off_leaves_third_parties_out_unless_named(
    install: Install, trainer_factory: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    install("ember-counter", {"counter": "counter_plugin:Counter"}, {"counter_plugin": COUNTER})
    install("ember-trap", {"trap": "trap_plugin:Thing"}, {"trap_plugin": BOOBY_TRAP})
    monkeypatch.setenv("EMBER_DISABLE_PLUGIN_AUTOLOAD", "1")
    assert "counter" not in names(trainer_factory())
    assert report("counter").status == "disabled"
    monkeypatch.setenv("EMBER_PLUGINS", "counter")
    assert "counter" in names(trainer_factory())
    assert "trap_plugin" not in sys.modules


def test_an_incompatible_plugin_is_not_loaded(install: Install, trainer_factory: Any) -> None:
    install("ember-old", {"old": "old_plugin:Thing"}, {"old_plugin": BOOBY_TRAP}, requires="ember<0.1\nnumpy")
    with pytest.warns(PluginWarning, match=r"'old' \(ember-old 1.0\) was left out \(incompatible\): .*ember<0.1"):
        trainer_factory()
    assert report("old").status == "incompatible" and "old_plugin" not in sys.modules


def test_a_compatible_pin_and_other_requirements_load(install: Install, trainer_factory: Any) -> None:
    requires = 'ember>=0.1\nember[extra]<0.1; extra == "old"\ntorch>=2'
    install("ember-fine", {"fine": "fine_plugin:Counter"}, {"fine_plugin": COUNTER}, requires=requires)
    assert "fine" in names(trainer_factory())


# -------------------------------------------------------------------------------- faults
FAULTS = {
    "import": (
        {"bad": "bad_plugin:Thing"},
        {"bad_plugin": "import no_such_module\n"},
        "cannot import .*no_such_module",
    ),
    "constructor": (
        {"bad": "bad_plugin:Bad"},
        {
            "bad_plugin": "import ember\nclass Bad(ember.Callback):\n    def __init__(self):\n        raise OSError('no disk')\n"
        },
        "constructor raised OSError: no disk",
    ),
    "factory": (
        {"bad": "bad_plugin:make"},
        {"bad_plugin": "def make():\n    return 1 / 0\n"},
        "factory raised ZeroDivision",
    ),
    "arguments": (
        {"bad": "bad_plugin:Bad"},
        {"bad_plugin": "import ember\nclass Bad(ember.Callback):\n    def __init__(self, size):\n        pass\n"},
        r"Bad\(\) requires size",
    ),
    "unknown hook": (
        {"bad": "bad_plugin"},
        {"bad_plugin": "import ember\n@ember.hookimpl\ndef on_train_epoch_ends(trainer):\n    pass\n"},
        "unknown hook 'on_train_epoch_ends'; did you mean",
    ),
    "argument name": (
        {"bad": "bad_plugin"},
        {"bad_plugin": "import ember\n@ember.hookimpl\ndef on_fit_start(trainer, model):\n    pass\n"},
        "hook 'on_fit_start' takes argument.*'model'",
    ),
    "shared instance": (
        {"bad": "bad_plugin:THE_ONE"},
        {"bad_plugin": "import ember\nTHE_ONE = ember.Callback()\n"},
        "every Trainer would share",
    ),
}


@pytest.mark.parametrize("fault", list(FAULTS))
def test_a_faulty_plugin_is_left_out_with_a_warning_naming_it(
    install: Install, trainer_factory: Any, fault: str
) -> None:
    entry_points, modules, reason = FAULTS[fault]
    install("ember-bad", entry_points, modules)
    with pytest.warns(PluginWarning, match=rf"plugin 'bad' \(ember-bad 1.0\) was left out \(failed\): .*{reason}"):
        trainer = trainer_factory()
    assert "bad" not in names(trainer)
    listed = "active" if fault == "constructor" else "failed"  # listing calls factories but constructs no class
    assert report("bad").status == listed


def test_a_fault_is_warned_about_once_per_process(install: Install, trainer_factory: Any) -> None:
    install("ember-bad", *FAULTS["import"][:2])
    with pytest.warns(PluginWarning):
        trainer_factory()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        trainer_factory()


@pytest.mark.parametrize("how", ["argument", "environment"])
def test_strict_mode_makes_a_fault_an_error(install: Install, trainer_factory: Any, how: str, monkeypatch: Any) -> None:
    install("ember-bad", *FAULTS["import"][:2])
    if how == "environment":
        monkeypatch.setenv("EMBER_STRICT_PLUGINS", "1")
    kwargs = {"strict_plugins": True} if how == "argument" else {}
    with pytest.raises(PluginError, match=r"'bad' \(ember-bad 1.0\).*no_such_module") as raised:
        trainer_factory(**kwargs)
    assert isinstance(raised.value.__cause__, ModuleNotFoundError)


def test_the_traceback_is_kept_for_the_report(install: Install) -> None:
    install("ember-bad", *FAULTS["import"][:2])
    assert "Traceback" in report("bad").traceback and "import no_such_module" in report("bad").traceback


def test_a_requested_name_nobody_provides_is_reported(trainer_factory: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EMBER_PLUGINS", "ghost")
    with pytest.warns(PluginWarning, match="EMBER_PLUGINS names 'ghost', but no installed distribution"):
        trainer_factory()
    assert report("ghost").status == "failed"


def test_a_name_taken_by_an_earlier_distribution_is_reported(install: Install, trainer_factory: Any) -> None:
    install("ember-first", {"dup": "first_plugin:Counter"}, {"first_plugin": COUNTER})
    install("ember-second", {"dup": "second_plugin:Counter"}, {"second_plugin": COUNTER})
    with pytest.warns(PluginWarning, match=r"'dup' \(ember-second 1.0\) was left out .*taken by ember-first 1.0"):
        trainer_factory()


def test_an_exception_inside_a_hook_names_the_plugin(
    install: Install, trainer_factory: Any, hook_recorder: Any
) -> None:
    source = "import ember\nclass Boom(ember.Callback):\n    def on_train_epoch_start(self, trainer, pl_module):\n        raise KeyError('boom')\n"
    install("ember-boom", {"boom": "boom_plugin:Boom"}, {"boom_plugin": source})
    with pytest.raises(KeyError, match="boom") as raised:
        trainer_factory(callbacks=[hook_recorder]).fit(TinyModel())
    assert "hook 'on_train_epoch_start' of plugin 'boom' (from ember-boom 1.0)" in "\n".join(raised.value.__notes__)
    assert hook_recorder.names("on_exception") == ["on_exception"]


# ---------------------------------------------------------------------- state_key collisions
STATEFUL = """
import ember

class Stateful(ember.Callback):
    def state_dict(self):
        return {}
"""


class Stateful(ember.Callback):
    """A user's callback whose state_key ("Stateful") an installed plugin's class also has."""

    def state_dict(self):
        return {}


def test_installed_plugins_sharing_a_state_key_are_listed_as_colliding(install: Install) -> None:
    install("ember-one", {"one": "one_plugin:Stateful"}, {"one_plugin": STATEFUL})
    install("ember-two", {"two": "two_plugin:Stateful"}, {"two_plugin": STATEFUL})
    reports = {r.name: r for r in survey()}
    assert reports["one"].status == reports["two"].status == "failed"
    assert "state_key 'Stateful' collides with plugin 'two' (ember-two 1.0)" in (reports["one"].reason or "")


def test_a_state_key_collision_with_a_users_callback_names_the_plugin_and_how_to_disable_it(
    install: Install, tmp_path: Path
) -> None:
    install("ember-one", {"one": "one_plugin:Stateful"}, {"one_plugin": STATEFUL})
    with pytest.raises(MisconfigurationError, match="plugin 'one' from ember-one 1.0: disable it with") as raised:
        ember.Trainer(callbacks=[Stateful()], logger=False, default_root_dir=tmp_path)
    assert "Trainer(disable_plugins=['one'])" in str(raised.value)
