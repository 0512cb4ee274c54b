"""What a checkpoint holds, how it is written and read, and the errors for files and entries ember cannot trust."""

from __future__ import annotations

import os
import pathlib
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import torch

import ember
from ember.callbacks import Checkpoint
from ember.errors import CheckpointError, EmberWarning, MisconfigurationError
from ember.loggers.base import Logger
from ember.testing import TinyDataModule, TinyModel


class Counter(ember.Callback):
    """Counts training batches; its state key tells instances with different ``what`` apart."""

    def __init__(self, what: str = "batches") -> None:
        self.what, self.count = what, 0

    @property
    def state_key(self) -> str:
        return self._generate_state_key(what=self.what)

    def on_train_batch_end(self, *args: Any) -> None:
        self.count += self.what == "batches"

    def state_dict(self) -> dict[str, Any]:
        return {"count": self.count} if self.count else {}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.count = state_dict["count"]


class Adds(ember.Callback):
    """Puts ``value`` into the checkpoint under ``key`` from on_save_checkpoint."""

    def __init__(self, key: str, value: Any) -> None:
        self.key, self.value = key, value

    def on_save_checkpoint(self, trainer: Any, pl_module: Any, checkpoint: dict[str, Any]) -> None:
        checkpoint[self.key] = self.value


class Holds(ember.Callback):
    """Returns ``value`` from state_dict."""

    def __init__(self, value: Any) -> None:
        self.value = value

    def state_dict(self) -> dict[str, Any]:
        return {"kept": self.value}


class StatefulData(TinyDataModule):
    def __init__(self, batch_size: int = 8, features: int = 32) -> None:
        super().__init__(batch_size, features)
        self.save_hyperparameters()
        self.epochs_served = 0

    def state_dict(self) -> dict[str, Any]:
        return {"epochs_served": 3}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.epochs_served = state_dict["epochs_served"]


class Remembering(Logger):
    """A logger whose state says how many metrics it got, and which reads that state back."""

    def __init__(self) -> None:
        self.logged, self.restored = 0, None

    @property
    def name(self) -> str:
        return "remembering"

    @property
    def version(self) -> int:
        return 0

    def log_metrics(self, metrics: Any, step: int | None = None) -> None:
        self.logged += 1

    def log_hyperparams(self, params: Any, *args: Any, **kwargs: Any) -> None:
        pass

    def state_dict(self) -> dict[str, Any]:
        return {"logged": self.logged}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.restored = state_dict["logged"]


class Evil:
    """Unpickling this would create the file ``marker``: a stand-in for a checkpoint that runs code."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> Any:
        return (pathlib.Path.touch, (pathlib.Path(self.marker),))


def fitted(tmp_path: Path, trainer_factory: Any, **flags: Any) -> tuple[ember.Trainer, Path]:
    """A TinyModel fitted for one epoch and its checkpoint file."""
    trainer = trainer_factory(max_epochs=1, **flags)
    trainer.fit(TinyModel())
    path = tmp_path / "model.ckpt"
    trainer.save_checkpoint(path)
    return trainer, path


# ------------------------------------------------------------------ contents
def test_a_checkpoint_holds_lightnings_keys_and_embers(tmp_path, trainer_factory) -> None:
    model = TinyModel(lr=0.1)
    datamodule = StatefulData(batch_size=16)
    counters = [Counter("batches"), Counter("unused")]
    logger = Remembering()
    trainer = trainer_factory(max_epochs=2, callbacks=counters, logger=logger, log_every_n_steps=1)
    trainer.fit(model, datamodule=datamodule)
    trainer.save_checkpoint(tmp_path / "all.ckpt")

    saved = torch.load(tmp_path / "all.ckpt", weights_only=True)
    assert (saved["epoch"], saved["global_step"]) == (2, 8)
    assert saved["ember_version"] == ember.__version__
    assert all(torch.equal(saved["state_dict"][k], v) for k, v in model.state_dict().items())
    assert saved["optimizer_states"][0]["param_groups"][0]["lr"] == 0.1
    assert saved["lr_schedulers"] == []
    assert saved["precision"] == {}
    assert saved["hyper_parameters"] == {"features": 32, "lr": 0.1, "batch_size": 8}
    assert saved["datamodule_hyper_parameters"] == {"batch_size": 16, "features": 32}
    assert saved["StatefulData"] == {"epochs_served": 3}
    assert saved["callbacks"] == {counters[0].state_key: {"count": 8}}  # the empty state is left out
    assert saved["loggers"] == {"Remembering": {"logged": logger.logged}}
    assert saved["loops"]["fit_loop"]["epoch"] == 2
    assert set(saved["loops"]["fit_loop"]["rng"]) >= {"torch", "python"}


def test_weights_only_keeps_the_model_and_leaves_out_the_training_state(tmp_path, trainer_factory) -> None:
    trainer = trainer_factory(max_epochs=1, callbacks=[Counter(), Adds("extra", 1)])
    trainer.fit(TinyModel())
    trainer.save_checkpoint(tmp_path / "weights.ckpt", weights_only=True)
    saved = torch.load(tmp_path / "weights.ckpt", weights_only=True)
    assert {"state_dict", "hyper_parameters", "epoch", "global_step", "loops"} <= set(saved)
    assert not {"callbacks", "optimizer_states", "lr_schedulers", "precision", "loggers", "extra"} & set(saved)


def test_on_save_checkpoint_entries_of_callbacks_and_the_module_are_saved(tmp_path, trainer_factory) -> None:
    class Noting(TinyModel):
        def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
            checkpoint["module_note"] = {"seen": checkpoint["callback_note"]}

    trainer = trainer_factory(max_epochs=1, callbacks=[Adds("callback_note", [1, 2])])
    trainer.fit(Noting())
    trainer.save_checkpoint(tmp_path / "notes.ckpt")
    saved = torch.load(tmp_path / "notes.ckpt", weights_only=True)
    assert saved["callback_note"] == [1, 2]
    assert saved["module_note"] == {"seen": [1, 2]}


def test_save_checkpoint_needs_a_model(tmp_path) -> None:
    with pytest.raises(MisconfigurationError, match="needs a model"):
        ember.Trainer(logger=False, enable_checkpointing=False).save_checkpoint(tmp_path / "x.ckpt")


# ---------------------------------------------------------- save-time check
def test_a_callback_state_weights_only_loading_cannot_read_is_an_error_at_save(tmp_path, trainer_factory) -> None:
    trainer = trainer_factory(max_epochs=1, callbacks=[Holds(pathlib.Path("somewhere"))])
    trainer.fit(TinyModel())
    with pytest.raises(CheckpointError) as caught:
        trainer.save_checkpoint(tmp_path / "bad.ckpt")
    message = str(caught.value)
    assert "callback Holds (state_key 'Holds')" in message
    assert "checkpoint['callbacks']['Holds']['kept']" in message
    assert "PosixPath" in message or "WindowsPath" in message
    assert not (tmp_path / "bad.ckpt").exists()


def test_an_on_save_checkpoint_entry_is_attributed_to_its_callback(tmp_path, trainer_factory) -> None:
    trainer = trainer_factory(max_epochs=1, callbacks=[Adds("ok", 1), Adds("when", range(3))])
    trainer.fit(TinyModel())
    with pytest.raises(CheckpointError, match=r"on_save_checkpoint of callback Adds .*checkpoint\['when'\]"):
        trainer.save_checkpoint(tmp_path / "bad.ckpt")


def test_a_module_on_save_checkpoint_entry_is_attributed_to_the_module(tmp_path, trainer_factory) -> None:
    class Careless(TinyModel):
        def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
            checkpoint["extras"] = {"ids": frozenset({1})}

    trainer = trainer_factory(max_epochs=1)
    trainer.fit(Careless())
    with pytest.raises(CheckpointError, match=r"model's on_save_checkpoint \(.*Careless\).*\['extras'\]\['ids'\]"):
        trainer.save_checkpoint(tmp_path / "bad.ckpt")


def test_a_hyperparameter_that_cannot_be_read_back_is_an_error_that_suggests_ignore(tmp_path, trainer_factory):
    class WithPath(TinyModel):
        def __init__(self) -> None:
            super().__init__()
            self.hparams["where"] = pathlib.Path("data")

    trainer = trainer_factory(max_epochs=1)
    trainer.fit(WithPath())
    with pytest.raises(CheckpointError, match=r"hyperparameters.*ignore=.*\['hyper_parameters'\]\['where'\]"):
        trainer.save_checkpoint(tmp_path / "bad.ckpt")


def test_a_type_registered_as_a_safe_global_may_be_saved(tmp_path, trainer_factory) -> None:
    trainer = trainer_factory(max_epochs=1, callbacks=[Holds(pathlib.PosixPath("kept"))])
    trainer.fit(TinyModel())
    with torch.serialization.safe_globals([pathlib.PosixPath]):
        trainer.save_checkpoint(tmp_path / "ok.ckpt")
        assert torch.load(tmp_path / "ok.ckpt", weights_only=True)["callbacks"]["Holds"]["kept"].name == "kept"


# ------------------------------------------------------------------- writing
def test_saving_replaces_the_previous_file_and_leaves_no_temporary_file(tmp_path, trainer_factory) -> None:
    trainer, path = fitted(tmp_path, trainer_factory)
    trainer.save_checkpoint(path, weights_only=True)
    assert "optimizer_states" not in torch.load(path, weights_only=True)
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_saving_creates_missing_folders(tmp_path, trainer_factory) -> None:
    trainer, _ = fitted(tmp_path, trainer_factory)
    trainer.save_checkpoint(tmp_path / "a" / "b" / "deep.ckpt")
    assert (tmp_path / "a" / "b" / "deep.ckpt").is_file()


def test_a_temporary_file_left_by_a_killed_save_is_removed_by_the_next_save(tmp_path, trainer_factory) -> None:
    trainer, path = fitted(tmp_path, trainer_factory)
    finished = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    stale = tmp_path / f".model.ckpt.tmp-{socket.gethostname()}-{int(finished.stdout)}"
    stale.write_bytes(b"PK\x03\x04 half a checkpoint")
    trainer.save_checkpoint(path)
    assert not stale.exists()
    assert torch.load(path, weights_only=True)["global_step"] == 8


# ------------------------------------------------------------------- reading
def bad_files(tmp_path: Path, good: Path) -> dict[str, tuple[Path, str]]:
    data = good.read_bytes()
    (tmp_path / "empty.ckpt").write_bytes(b"")
    (tmp_path / "truncated.ckpt").write_bytes(data[: len(data) // 2])
    (tmp_path / "notes.txt").write_text("not a checkpoint\n")
    torch.save({"weights": torch.zeros(2)}, tmp_path / "foreign.ckpt")
    (tmp_path / "folder.ckpt").mkdir()
    return {
        "missing": (tmp_path / "missing.ckpt", "does not exist"),
        "folder": (tmp_path / "folder.ckpt", "is a folder"),
        "empty": (tmp_path / "empty.ckpt", "is empty"),
        "truncated": (tmp_path / "truncated.ckpt", "truncated or corrupt"),
        "not torch": (tmp_path / "notes.txt", "not a file written by torch.save"),
        "not ember": (tmp_path / "foreign.ckpt", "not an ember checkpoint: no 'state_dict' entry .*weights"),
    }


@pytest.mark.parametrize("kind", ["missing", "folder", "empty", "truncated", "not torch", "not ember"])
@pytest.mark.parametrize("entry", ["fit", "validate", "test", "predict"])
def test_a_bad_ckpt_path_is_one_clear_error_naming_the_file(tmp_path, trainer_factory, kind, entry) -> None:
    _, good = fitted(tmp_path, trainer_factory)
    path, problem = bad_files(tmp_path, good)[kind]
    trainer = trainer_factory(max_epochs=2)
    with pytest.raises(CheckpointError, match=rf"checkpoint '{path}' .*{problem}"):
        getattr(trainer, entry)(TinyModel(), ckpt_path=path)


def test_a_checkpoint_that_would_run_code_is_refused_and_never_executed(tmp_path, trainer_factory) -> None:
    _, good = fitted(tmp_path, trainer_factory)
    marker = tmp_path / "code-ran"
    poisoned = torch.load(good, weights_only=True)
    poisoned["callbacks"] = {"Payload": {"object": Evil(marker)}}
    torch.save(poisoned, tmp_path / "poisoned.ckpt")

    with pytest.raises(CheckpointError, match=r"refuses \(Unsupported global: GLOBAL getattr .*weights_only=False$"):
        trainer_factory(max_epochs=2).fit(TinyModel(), ckpt_path=tmp_path / "poisoned.ckpt")
    with pytest.raises(CheckpointError, match="can run code when loaded"):
        TinyModel.load_from_checkpoint(tmp_path / "poisoned.ckpt")
    with pytest.raises(CheckpointError, match="can run code when loaded"):
        TinyDataModule.load_from_checkpoint(tmp_path / "poisoned.ckpt")
    assert not marker.exists()


def test_weights_only_false_is_the_explicit_opt_in_for_trusted_files(tmp_path, trainer_factory) -> None:
    _, good = fitted(tmp_path, trainer_factory)
    trusted = torch.load(good, weights_only=True)
    trusted["hyper_parameters"]["note"] = pathlib.Path("from a trusted run")
    torch.save(trusted, tmp_path / "trusted.ckpt")
    with pytest.raises(CheckpointError, match="refuses"):
        trainer_factory().validate(TinyModel(), ckpt_path=tmp_path / "trusted.ckpt")
    results = trainer_factory().validate(TinyModel(), ckpt_path=tmp_path / "trusted.ckpt", weights_only=False)
    assert "val_loss" in results[0]
    model = TinyModel.load_from_checkpoint(tmp_path / "trusted.ckpt", weights_only=False)
    assert model.hparams.lr == 0.05


def test_a_checkpoint_from_a_newer_major_version_warns(tmp_path, trainer_factory) -> None:
    _, good = fitted(tmp_path, trainer_factory)
    future = torch.load(good, weights_only=True)
    future["ember_version"] = "99.0.0"
    torch.save(future, tmp_path / "future.ckpt")
    with pytest.warns(EmberWarning, match=r"written by ember 99\.0\.0, a newer major version"):
        trainer_factory().validate(TinyModel(), ckpt_path=tmp_path / "future.ckpt")


def test_mismatched_model_keys_are_listed_and_strict_false_loads_what_matches(tmp_path, trainer_factory) -> None:
    class Wider(TinyModel):
        def __init__(self, **kwargs: Any) -> None:
            super().__init__(**kwargs)
            self.extra = torch.nn.Linear(2, 2)

    _, path = fitted(tmp_path, trainer_factory)
    with pytest.raises(CheckpointError, match=r"missing keys \['extra.weight', 'extra.bias'\], unexpected keys \[\]"):
        trainer_factory().validate(Wider(), ckpt_path=path)
    with pytest.raises(CheckpointError, match="pass strict=False"):
        Wider.load_from_checkpoint(path)
    model = Wider.load_from_checkpoint(path, strict=False)
    assert torch.equal(model.layer.weight, torch.load(path, weights_only=True)["state_dict"]["layer.weight"])


def test_a_weights_only_checkpoint_evaluates_but_cannot_resume_fit(tmp_path, trainer_factory) -> None:
    trainer, _ = fitted(tmp_path, trainer_factory)
    trainer.save_checkpoint(tmp_path / "weights.ckpt", weights_only=True)
    assert trainer_factory().test(TinyModel(), ckpt_path=tmp_path / "weights.ckpt")[0]["test_loss"] >= 0
    with pytest.raises(CheckpointError, match="saved with weights_only=True and cannot resume"):
        trainer_factory(max_epochs=3).fit(TinyModel(), ckpt_path=tmp_path / "weights.ckpt")


# --------------------------------------------------------- load_from_checkpoint
def test_module_load_from_checkpoint_restores_hyperparameters_and_weights(tmp_path, trainer_factory) -> None:
    model = TinyModel(lr=0.2, batch_size=4)
    trainer = trainer_factory(max_epochs=1)
    trainer.fit(model)
    trainer.save_checkpoint(tmp_path / "m.ckpt")
    loaded = TinyModel.load_from_checkpoint(tmp_path / "m.ckpt")
    assert (loaded.hparams.lr, loaded.hparams.batch_size) == (0.2, 4)
    assert torch.equal(loaded.layer.weight, model.layer.weight)
    assert TinyModel.load_from_checkpoint(tmp_path / "m.ckpt", lr=0.3).hparams.lr == 0.3


@pytest.mark.parametrize(
    "map_location", ["cpu", torch.device("cpu"), {"cpu": "cpu"}, lambda storage, location: storage]
)
def test_load_from_checkpoint_takes_every_kind_of_map_location(tmp_path, trainer_factory, map_location) -> None:
    _, path = fitted(tmp_path, trainer_factory)
    loaded = TinyModel.load_from_checkpoint(path, map_location=map_location)
    assert loaded.layer.weight.device.type == "cpu"


def test_datamodule_load_from_checkpoint_restores_hyperparameters_and_state(tmp_path, trainer_factory) -> None:
    trainer = trainer_factory(max_epochs=1)
    trainer.fit(TinyModel(), datamodule=StatefulData(batch_size=4))
    trainer.save_checkpoint(tmp_path / "d.ckpt")
    loaded = StatefulData.load_from_checkpoint(tmp_path / "d.ckpt", map_location="cpu")
    assert (loaded.batch_size, loaded.epochs_served) == (4, 3)


# ----------------------------------------------------------- "last" and "best"
class Tracking(Checkpoint):
    """The two attributes ckpt_path="last"/"best" read, pointing at files a test wrote."""

    def __init__(self, best: str = "", last: str = "") -> None:
        self.best_model_path, self.last_model_path = best, last


def test_best_loads_the_checkpoint_callbacks_best_model(tmp_path, trainer_factory) -> None:
    _, path = fitted(tmp_path, trainer_factory)
    trainer = trainer_factory(callbacks=[Tracking(best=str(path))])
    trainer.validate(TinyModel(), ckpt_path="best")
    assert trainer.ckpt_path == str(path)


def test_best_without_a_checkpoint_callback_or_best_model_is_an_error(tmp_path, trainer_factory) -> None:
    with pytest.raises(MisconfigurationError, match='ckpt_path="best"\\) needs a ModelCheckpoint'):
        trainer_factory().validate(TinyModel(), ckpt_path="best")
    with pytest.raises(MisconfigurationError, match="has not saved a best model yet"):
        trainer_factory(callbacks=[Tracking()]).validate(TinyModel(), ckpt_path="best")


def test_last_loads_the_newest_last_checkpoint(tmp_path, trainer_factory) -> None:
    trainer, older = fitted(tmp_path, trainer_factory)
    newer = tmp_path / "newer.ckpt"
    trainer.save_checkpoint(newer)
    os.utime(older, ns=(1, 1))
    resumed = trainer_factory(max_epochs=2, callbacks=[Tracking(last=str(older)), Tracking(last=str(newer))])
    resumed.fit(TinyModel(), ckpt_path="last")
    assert resumed.ckpt_path == str(newer)


def test_last_with_no_last_checkpoint_warns_and_starts_from_scratch(tmp_path, trainer_factory) -> None:
    trainer = trainer_factory(max_epochs=1, callbacks=[Tracking(last=str(tmp_path / "gone.ckpt"))])
    with pytest.warns(EmberWarning, match='ckpt_path="last"\\) found no last checkpoint'):
        trainer.fit(TinyModel(), ckpt_path="last")
    assert trainer.ckpt_path is None
    assert trainer.global_step == 8


def test_loggers_get_their_state_back_when_a_run_resumes(tmp_path, trainer_factory) -> None:
    first = Remembering()
    trainer = trainer_factory(max_epochs=1, logger=first, log_every_n_steps=1)
    trainer.fit(TinyModel())
    trainer.save_checkpoint(tmp_path / "logged.ckpt")
    second = Remembering()
    trainer_factory(max_epochs=2, logger=second).fit(TinyModel(), ckpt_path=tmp_path / "logged.ckpt")
    assert second.restored == first.logged > 0


def test_a_model_with_strict_loading_false_resumes_from_a_checkpoint_that_only_partly_matches(
    tmp_path, trainer_factory
):
    class Lenient(TinyModel):
        strict_loading = False

        def __init__(self) -> None:
            super().__init__()
            self.head = torch.nn.Linear(2, 2)

    _, path = fitted(tmp_path, trainer_factory)
    model = Lenient()
    trainer_factory().validate(model, ckpt_path=path)
    assert torch.equal(model.layer.weight, torch.load(path, weights_only=True)["state_dict"]["layer.weight"])


def test_validate_without_a_model_after_fit_uses_the_best_checkpoint(tmp_path, caplog) -> None:
    from ember.callbacks import ModelCheckpoint
    from ember.testing import TinyModel, make_trainer

    checkpoint = ModelCheckpoint(monitor="val_loss", save_top_k=1)
    trainer = make_trainer(tmp_path, callbacks=[checkpoint], max_epochs=2)
    trainer.fit(TinyModel())
    trainer.validate(verbose=False)
    assert trainer.ckpt_path == checkpoint.best_model_path
    assert "using the best checkpoint of the previous fit" in caplog.text


# ------------------------------------------------------------- numpy scalars
class NumpyHyperparameters(TinyModel):
    """A learning rate and a hyperparameter that are numpy scalars, as they come out of a NumPy search grid."""

    def __init__(self, lr: Any = None, dropout: Any = None) -> None:
        super().__init__()
        import numpy as np

        self.save_hyperparameters({"lr": np.float64(0.02) if lr is None else lr, "dropout": np.float32(0.1)})

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.SGD(self.parameters(), lr=self.hparams.lr)


def test_a_checkpoint_with_numpy_scalars_saves_and_loads_with_weights_only(tmp_path, trainer_factory) -> None:
    trainer = trainer_factory(max_epochs=1, limit_train_batches=2)
    trainer.fit(NumpyHyperparameters())
    path = tmp_path / "numpy.ckpt"
    trainer.save_checkpoint(path)
    checkpoint = torch.load(path, weights_only=True)
    assert checkpoint["hyper_parameters"]["lr"] == 0.02
    assert checkpoint["optimizer_states"][0]["param_groups"][0]["lr"] == 0.02
    loaded = NumpyHyperparameters.load_from_checkpoint(path)
    assert loaded.hparams.lr == 0.02
    resumed = trainer_factory(max_epochs=2, limit_train_batches=2)
    resumed.fit(NumpyHyperparameters(), ckpt_path=path)
    assert resumed.global_step == 4


def test_numpy_scalars_are_stored_as_the_python_numbers_they_equal(tmp_path, trainer_factory) -> None:
    import numpy as np

    trainer = trainer_factory(max_epochs=1, limit_train_batches=1, callbacks=[Holds(np.int64(3))])
    trainer.fit(NumpyHyperparameters())
    path = tmp_path / "numpy.ckpt"
    trainer.save_checkpoint(path)
    checkpoint = torch.load(path, weights_only=True)
    assert type(checkpoint["hyper_parameters"]["dropout"]) is float
    assert [type(value) for value in checkpoint["callbacks"].values()] == [dict]
    (state,) = checkpoint["callbacks"].values()
    assert type(state["kept"]) is int and state["kept"] == 3
