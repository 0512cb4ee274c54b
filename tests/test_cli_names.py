"""``ember plugins`` finds plugins by entry-point or class name, lists object references, and suggests near names."""

from __future__ import annotations

import json

import pytest

import ember
from ember.cli import main
from ember.errors import PluginError

pytestmark = pytest.mark.usefixtures("plugin_discovery_fresh")  # tests/conftest.py


def test_list_json_gives_each_entry_points_object_reference(capsys: pytest.CaptureFixture[str]) -> None:
    main(["plugins", "list", "--json"])
    entries = {entry["name"]: entry for entry in json.loads(capsys.readouterr().out)}
    assert entries["model_checkpoint"]["object"] == "ember.plugins.model_checkpoint:ModelCheckpoint"
    assert entries["timer"]["object"] == "ember.plugins.timer:Timer"


@pytest.mark.parametrize("name", ["model_checkpoint", "ModelCheckpoint", "modelcheckpoint"])
def test_show_accepts_the_entry_point_or_the_class_name(name: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["plugins", "show", name]) == 0
    assert "entry point:   model_checkpoint = ember.plugins.model_checkpoint:ModelCheckpoint" in capsys.readouterr().out


def test_show_suggests_a_near_name(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["plugins", "show", "ModelCheckpont"]) == 2
    assert "no plugin named 'ModelCheckpont' (did you mean 'ModelCheckpoint'?)" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("typo", "meant"),
    [
        ("on_train_epoch_endd", "on_train_epoch_end"),
        ("on_validaton_end", "on_validation_end"),
        ("on_train_batch_strat", "on_train_batch_start"),
        ("on_fit_strat", "on_fit_start"),
    ],
)
def test_a_typod_hook_name_suggests_the_closest_hook(trainer_factory, typo: str, meant: str) -> None:
    class Plugin:
        pass

    setattr(Plugin, typo, ember.hookimpl(lambda self, trainer: None))
    with pytest.raises(PluginError, match=f"unknown hook {typo!r}; did you mean {meant!r}"):
        trainer_factory(callbacks=[Plugin()])
