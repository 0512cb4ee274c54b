"""The hook catalogue: hookspecs.py is the one place hooks are declared; Callback mirrors it."""

from __future__ import annotations

import inspect
import subprocess
import sys

import ember
from ember import hookspecs
from ember.core.pluginmanager import HOOK_NAMES, spec_argnames
from ember.hookspecs import TWO_WAY_HOOKS

LIGHTNING_HOOKS = {
    "setup",
    "teardown",
    "on_fit_start",
    "on_fit_end",
    "on_sanity_check_start",
    "on_sanity_check_end",
    "on_exception",
    "state_dict",
    "load_state_dict",
    "on_save_checkpoint",
    "on_load_checkpoint",
    "on_before_backward",
    "on_after_backward",
    "on_before_optimizer_step",
    "on_before_zero_grad",
} | {
    f"on_{stage}_{event}"
    for stage in ("train", "validation", "test", "predict")
    for event in ("batch_start", "batch_end", "epoch_start", "epoch_end", "start", "end")
}


def test_every_lightning_callback_hook_is_a_hookspec() -> None:
    assert HOOK_NAMES == LIGHTNING_HOOKS


def test_callback_has_one_method_per_hookspec_with_the_same_arguments() -> None:
    for name in HOOK_NAMES:
        method = getattr(ember.Callback, name)
        parameters = list(inspect.signature(method).parameters)[1:]  # without self
        assert tuple(parameters) == spec_argnames(name), name
    extra = {n for n, v in vars(ember.Callback).items() if callable(v) and not n.startswith("_")} - HOOK_NAMES
    assert extra == set(), f"Callback methods that are not hooks: {extra}"


def test_hook_arguments_use_lightning_names() -> None:
    assert spec_argnames("on_train_batch_end") == ("trainer", "pl_module", "outputs", "batch", "batch_idx")
    assert spec_argnames("on_validation_batch_start") == (
        "trainer",
        "pl_module",
        "batch",
        "batch_idx",
        "dataloader_idx",
    )
    assert spec_argnames("on_before_optimizer_step") == ("trainer", "pl_module", "optimizer")
    assert spec_argnames("load_state_dict") == ("state_dict",)


def test_every_hookspec_documents_when_it_fires_and_each_argument() -> None:
    for name in HOOK_NAMES:
        doc = inspect.getdoc(getattr(hookspecs, name))
        assert doc and doc.splitlines()[0].endswith("."), name
        for argument in spec_argnames(name):
            if name != "load_state_dict":
                assert f":param {argument}:" in doc, (name, argument)


def test_ember_hooks_prints_every_hookspec_with_its_arguments() -> None:
    result = subprocess.run([sys.executable, "-m", "ember", "hooks"], capture_output=True, text=True, check=True)
    lines = result.stdout.splitlines()
    assert len(lines) == len(HOOK_NAMES) + len(TWO_WAY_HOOKS)
    for name in HOOK_NAMES:
        assert any(line.startswith(f"{name}({', '.join(spec_argnames(name))})") for line in lines), name


def test_import_ember_does_not_import_torch() -> None:
    code = "import sys, ember; ember.Callback; ember.hookimpl; print('torch' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "False"
