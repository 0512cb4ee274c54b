"""fsspec URLs for checkpoint folders, ckpt_path, default_root_dir and logger folders (memory and local filesystems)."""

from __future__ import annotations

import os
from pathlib import Path

import fsspec
import pytest
import torch

import ember
from ember.callbacks import ModelCheckpoint
from ember.errors import EmberWarning
from ember.loggers import CSVLogger
from ember.testing import TinyModel, make_trainer


@pytest.fixture
def memory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """A fresh folder of fsspec's in-memory filesystem, with the test in its own local folder."""
    monkeypatch.chdir(tmp_path)
    fs = fsspec.filesystem("memory")
    root = f"/{tmp_path.name}"
    yield fs, f"memory://{tmp_path.name}"
    if fs.exists(root):
        fs.rm(root, recursive=True)


def names(fs, folder: str) -> list[str]:
    return sorted(os.path.basename(entry) for entry in fs.ls(folder, detail=False))


def test_model_checkpoint_saves_into_a_memory_url_and_keeps_only_the_top_k(memory, tmp_path: Path) -> None:
    fs, root = memory
    checkpoint = ModelCheckpoint(dirpath=f"{root}/ckpts", monitor="val_loss", save_top_k=1, save_last=True)
    trainer = make_trainer(tmp_path, max_epochs=3, limit_train_batches=2, callbacks=[checkpoint])
    trainer.fit(TinyModel())
    best = Path(checkpoint.best_model_path).name
    assert names(fs, f"{root}/ckpts") == sorted([best, "last.ckpt"])
    assert checkpoint.best_model_path == f"{root}/ckpts/{best}"
    assert not (tmp_path / "memory:").exists()  # not a local folder named after the protocol


def test_fit_resumes_from_a_memory_url(memory, tmp_path: Path) -> None:
    fs, root = memory
    trainer = make_trainer(tmp_path, max_epochs=1, limit_train_batches=2)
    trainer.fit(TinyModel())
    trainer.save_checkpoint(f"{root}/run.ckpt")
    resumed = make_trainer(tmp_path, max_epochs=2, limit_train_batches=2)
    resumed.fit(TinyModel(), ckpt_path=f"{root}/run.ckpt")
    assert fs.isfile(f"{root}/run.ckpt")
    assert (resumed.global_step, resumed.current_epoch) == (4, 2)
    assert TinyModel.load_from_checkpoint(f"{root}/run.ckpt").hparams.lr == 0.05


def test_ckpt_path_last_finds_the_last_checkpoint_in_a_memory_folder(memory, tmp_path: Path) -> None:
    _, root = memory
    trainer = make_trainer(
        tmp_path, max_epochs=1, limit_train_batches=2, callbacks=[ModelCheckpoint(f"{root}/c", save_last=True)]
    )
    trainer.fit(TinyModel())
    resumed = make_trainer(
        tmp_path, max_epochs=2, limit_train_batches=2, callbacks=[ModelCheckpoint(f"{root}/c", save_last=True)]
    )
    with pytest.warns(EmberWarning, match="exists and is not empty"):
        resumed.fit(TinyModel(), ckpt_path="last")
    assert resumed.ckpt_path == f"{root}/c/last.ckpt"
    assert resumed.global_step == 4


def test_default_root_dir_url_holds_the_default_logger_and_checkpoints(memory, tmp_path: Path) -> None:
    fs, root = memory
    trainer = ember.Trainer(
        default_root_dir=root,
        max_epochs=1,
        limit_train_batches=2,
        enable_progress_bar=False,
        enable_model_summary=False,
    )
    trainer.fit(TinyModel())
    version = f"{root}/ember_logs/version_0"
    assert names(fs, version) == ["checkpoints", "hparams.yaml", "metrics.csv"]
    assert names(fs, f"{version}/checkpoints") == ["epoch=0-step=2.ckpt"]
    with fs.open(f"{version}/metrics.csv", "r") as handle:
        assert "val_loss" in handle.readline()


def test_a_second_logger_run_in_a_memory_folder_gets_the_next_version(memory, tmp_path: Path) -> None:
    fs, root = memory
    for _ in range(2):
        logger = CSVLogger(save_dir=root)
        make_trainer(tmp_path, max_epochs=1, limit_train_batches=1, logger=logger).fit(TinyModel())
    assert logger.version == 1
    assert names(fs, f"{root}/ember_logs") == ["version_0", "version_1"]


def test_a_file_url_is_the_local_path_it_names(tmp_path: Path) -> None:
    checkpoint = ModelCheckpoint(dirpath=f"file://{tmp_path}/ckpts")
    trainer = make_trainer(tmp_path, max_epochs=1, limit_train_batches=2, callbacks=[checkpoint])
    trainer.fit(TinyModel())
    assert sorted(p.name for p in (tmp_path / "ckpts").iterdir()) == ["epoch=0-step=2.ckpt"]
    trainer.save_checkpoint(f"file://{tmp_path}/again.ckpt")
    assert torch.load(tmp_path / "again.ckpt", weights_only=True)["global_step"] == 2


def test_a_save_over_a_memory_object_replaces_it_and_leaves_no_temporary(memory, tmp_path: Path) -> None:
    fs, root = memory
    trainer = make_trainer(tmp_path, max_epochs=1, limit_train_batches=2)
    trainer.fit(TinyModel())
    for _ in range(2):
        trainer.save_checkpoint(f"{root}/same.ckpt")
    assert names(fs, root) == ["same.ckpt"]


def test_a_url_whose_filesystem_is_not_installed_is_a_clear_error(tmp_path: Path) -> None:
    trainer = make_trainer(tmp_path, max_epochs=1, limit_train_batches=1)
    trainer.fit(TinyModel())
    with pytest.raises(ValueError, match="no filesystem for protocol 'nosuchfs'"):
        trainer.save_checkpoint("nosuchfs://bucket/run.ckpt")
