"""MLFlowLogger against a real local MLflow store, read back with MlflowClient."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from ember.callbacks import ModelCheckpoint
from ember.loggers import MLFlowLogger

mlflow = pytest.importorskip("mlflow")
from mlflow.tracking import MlflowClient  # noqa: E402


@pytest.fixture
def store(tmp_path, monkeypatch) -> str:
    """A file store in tmp_path (MLflow 3 asks for an opt-in; it is the quickest real store to create)."""
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")
    return f"file:{tmp_path / 'mlruns'}"


@pytest.fixture
def remembered(counting_model):
    class Remembered(counting_model):  # type: ignore[misc, valid-type]
        def __init__(self, width: int = 3, optimizer: dict | None = None) -> None:
            super().__init__()
            self.save_hyperparameters()

    return Remembered


def test_metrics_and_hyperparameters_reach_the_run(trainer_factory, remembered, store) -> None:
    logger = MLFlowLogger("counting", run_name="first", tracking_uri=store)
    trainer = trainer_factory(logger=logger, max_epochs=1, log_every_n_steps=2, num_sanity_val_steps=0)
    trainer.fit(remembered(optimizer={"name": "sgd", "lr": 0.0}))
    client = MlflowClient(tracking_uri=store)
    run = client.get_run(logger.run_id)
    assert run.info.status == "FINISHED" and run.info.run_name == "first"
    assert client.get_experiment(run.info.experiment_id).name == "counting"
    assert run.data.params == {"width": "3", "optimizer/name": "sgd", "optimizer/lr": "0.0"}
    history = client.get_metric_history(logger.run_id, "a_step")
    assert [(metric.step, metric.value) for metric in history] == [(1, 5.0), (3, 13.0)]
    assert run.data.metrics["val"] == 2003.0 and run.data.metrics["a_epoch"] == 7.0


def test_name_and_version_are_the_experiment_and_run_ids(trainer_factory, counting_model, store, tmp_path) -> None:
    logger = MLFlowLogger(tracking_uri=store)
    trainer = trainer_factory(logger=logger, max_epochs=1, limit_val_batches=0)
    trainer.fit(counting_model())
    assert (logger.name, logger.version) == (logger.experiment_id, logger.run_id)
    assert logger.save_dir == str(tmp_path / "mlruns")
    assert trainer.log_dir == str(tmp_path / "mlruns" / logger.experiment_id / logger.run_id)


@pytest.mark.parametrize("log_model", [True, "all"])
def test_log_model_uploads_the_checkpoints_with_their_score(
    trainer_factory, counting_model, store, tmp_path, log_model
) -> None:
    uploaded_during_fit = []

    class Watching(counting_model):  # type: ignore[misc, valid-type]
        def on_train_epoch_start(self) -> None:
            uploaded_during_fit.append(len(client.list_artifacts(logger.run_id, "model")))

    client = MlflowClient(tracking_uri=store)
    logger = MLFlowLogger(tracking_uri=store, log_model=log_model, checkpoint_path_prefix="model")
    checkpoint = ModelCheckpoint(tmp_path / "ckpt", monitor="val", mode="max", save_top_k=2)
    trainer_factory(logger=logger, callbacks=[checkpoint], max_epochs=3, num_sanity_val_steps=0).fit(Watching())
    folders = sorted(entry.path for entry in client.list_artifacts(logger.run_id, "model"))
    assert folders == [f"model/{Path(path).stem}" for path in sorted(checkpoint.best_k_models)]
    best = f"model/{Path(checkpoint.best_model_path).stem}"
    assert {entry.path for entry in client.list_artifacts(logger.run_id, best)} == {
        f"{best}/{Path(checkpoint.best_model_path).name}",
        f"{best}/metadata.yaml",
        f"{best}/aliases.txt",
    }
    local = client.download_artifacts(logger.run_id, f"{best}/metadata.yaml", str(tmp_path))
    assert "monitor: val" in Path(local).read_text()
    assert uploaded_during_fit == ([0, 1, 2] if log_model == "all" else [0, 0, 0])


def test_a_failed_run_is_marked_failed(trainer_factory, counting_model, store) -> None:
    class Breaks(counting_model):  # type: ignore[misc, valid-type]
        def training_step(self, batch, batch_idx):
            if batch_idx == 2:
                raise RuntimeError("broken batch")
            return super().training_step(batch, batch_idx)

    logger = MLFlowLogger(tracking_uri=store)
    with pytest.raises(RuntimeError, match="broken batch"):
        trainer_factory(logger=logger, max_epochs=1, log_every_n_steps=1).fit(Breaks())
    assert MlflowClient(tracking_uri=store).get_run(logger.run_id).info.status == "FAILED"


def test_without_mlflow_installed_the_error_names_the_extra(monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "mlflow", None)
    with pytest.raises(ModuleNotFoundError, match=r'pip install "ember\[mlflow\]"'):
        MLFlowLogger()


@pytest.mark.slow
def test_without_a_tracking_uri_a_sqlite_store_in_save_dir_holds_the_run(
    trainer_factory, counting_model, tmp_path, monkeypatch
) -> None:
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    logger = MLFlowLogger(save_dir=tmp_path / "runs", log_model=True)
    checkpoint = ModelCheckpoint(tmp_path / "ckpt")
    trainer_factory(logger=logger, callbacks=[checkpoint], max_epochs=1, log_every_n_steps=2).fit(counting_model())
    client = MlflowClient(tracking_uri=f"sqlite:///{tmp_path / 'runs' / 'mlflow.db'}")
    assert [metric.value for metric in client.get_metric_history(logger.run_id, "a_step")] == [5.0, 13.0]
    stem = Path(checkpoint.best_model_path).stem
    assert [entry.path for entry in client.list_artifacts(logger.run_id)] == [stem]
    assert (tmp_path / "runs" / "artifacts").is_dir()
