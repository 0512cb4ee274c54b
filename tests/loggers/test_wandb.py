"""WandbLogger in offline mode, read back from the run file W&B writes."""

from __future__ import annotations

import json
import struct
import sys
import time
from pathlib import Path

import pytest

from ember.callbacks import ModelCheckpoint
from ember.loggers import WandbLogger

wandb = pytest.importorskip("wandb")
from wandb.proto import wandb_internal_pb2  # noqa: E402

BLOCK, HEADER = 32768, 7  # W&B's run file: LevelDB's log format after a 7-byte ":W&B" header


def records(path: Path) -> list[wandb_internal_pb2.Record]:
    """Every record of an offline run file, in order."""
    data = path.read_bytes()
    assert data[:4] == b":W&B"
    found, pending, position = [], b"", HEADER
    while position + HEADER <= len(data):
        left = BLOCK - position % BLOCK
        _, length, kind = struct.unpack("<IHB", data[position : position + HEADER])
        if left < HEADER or (length == 0 and kind == 0):
            position += left
            continue
        payload = data[position + HEADER : position + HEADER + length]
        position += HEADER + length
        pending = payload if kind in (1, 2) else pending + payload
        if kind in (1, 4):  # a whole record, or the last piece of one
            record = wandb_internal_pb2.Record()
            record.ParseFromString(pending)
            found.append(record)
    return found


def history(run_file: Path) -> list[dict]:
    rows = []
    for record in records(run_file):
        if record.WhichOneof("record_type") == "history":
            row = {"/".join(item.nested_key) or item.key: json.loads(item.value_json) for item in record.history.item}
            rows.append({key: value for key, value in row.items() if not key.startswith("_")})
    return rows


def config(run_file: Path) -> dict:
    values = {}
    for record in records(run_file):
        kind = record.WhichOneof("record_type")
        updates = record.run.config.update if kind == "run" else record.config.update if kind == "config" else []
        for item in updates:
            values[item.key or "/".join(item.nested_key)] = json.loads(item.value_json)
    return {key: value for key, value in values.items() if not key.startswith("_")}


@pytest.fixture
def offline(tmp_path, monkeypatch) -> Path:
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_DIR", str(tmp_path))
    monkeypatch.setenv("WANDB_SILENT", "true")
    monkeypatch.delenv("WANDB_PROJECT", raising=False)
    yield tmp_path
    wandb.finish()  # the logger leaves the run open after fit, as Lightning's does


def run_file(save_dir: Path, run_id: str) -> Path:
    """The finished run's file, once W&B's service process has written its last (exit) record."""
    wandb.finish()
    (found,) = save_dir.glob(f"wandb/offline-run-*-{run_id}/run-{run_id}.wandb")
    deadline = time.monotonic() + 30
    while not any(record.HasField("exit") for record in records(found)) and time.monotonic() < deadline:
        time.sleep(0.1)
    return found


def test_metrics_are_logged_against_trainer_global_step_and_hyperparameters_are_the_config(
    trainer_factory, counting_model, offline
) -> None:
    class Remembered(counting_model):  # type: ignore[misc, valid-type]
        def __init__(self, width: int = 3, activation: type = object) -> None:
            super().__init__()
            self.save_hyperparameters()

    logger = WandbLogger(project="counting", save_dir=offline)
    trainer = trainer_factory(logger=logger, max_epochs=1, log_every_n_steps=2, num_sanity_val_steps=0)
    trainer.fit(Remembered())
    assert (logger.name, logger.version) == ("counting", logger.experiment.id)
    rows = history(run_file(offline, logger.version))
    assert rows == [
        {"a_step": 5.0, "epoch": 0, "trainer/global_step": 1},
        {"a_step": 13.0, "epoch": 0, "trainer/global_step": 3},
        {"val": 2003.0, "epoch": 0, "trainer/global_step": 3},
        {"a_epoch": 7.0, "b": 70.0, "epoch": 0, "trainer/global_step": 3},
    ]
    assert config(run_file(offline, logger.version)) == {"width": 3, "activation": "object"}


def test_log_model_all_records_every_checkpoint_as_a_model_artifact(
    trainer_factory, counting_model, offline, tmp_path
) -> None:
    logger = WandbLogger(save_dir=offline, log_model="all", checkpoint_name="counting-model")
    checkpoint = ModelCheckpoint(tmp_path / "ckpt", monitor="val", mode="max", save_top_k=-1)
    trainer_factory(logger=logger, callbacks=[checkpoint], max_epochs=2, num_sanity_val_steps=0).fit(counting_model())
    artifacts = [
        record.artifact for record in records(run_file(offline, logger.version)) if record.HasField("artifact")
    ]
    assert [(artifact.name, artifact.type) for artifact in artifacts] == [("counting-model", "model")] * 2
    assert [entry.path for artifact in artifacts for entry in artifact.manifest.contents] == ["model.ckpt"] * 2
    assert [json.loads(artifact.metadata)["original_filename"] for artifact in artifacts] == [
        "epoch=0-step=4.ckpt",
        "epoch=1-step=8.ckpt",
    ]
    assert json.loads(artifacts[0].metadata)["score"] == 2003.0


def test_media_and_tables_go_into_the_history(offline) -> None:
    import numpy as np

    logger = WandbLogger(save_dir=offline)
    logger.log_image("samples", [np.zeros((4, 4, 3), dtype=np.uint8)], step=5, caption=["black"])
    logger.log_table("scores", columns=["name", "score"], data=[["a", 1.0]], step=5)
    path = run_file(offline, logger.version)
    (images, table) = history(path)
    assert images["trainer/global_step"] == 5 and images["samples/_type"] == "images/separated"
    assert images["samples/captions"] == ["black"]
    assert (path.parent / "files" / images["samples/filenames"][0]).is_file()
    assert (table["scores/_type"], table["scores/nrows"], table["scores/ncols"]) == ("table-file", 1, 2)


def test_media_options_need_one_entry_per_item(offline) -> None:
    with pytest.raises(ValueError, match="caption has 2 entries for 1 items"):
        WandbLogger(save_dir=offline).log_image("samples", ["a.png"], caption=["x", "y"])


def test_without_wandb_installed_the_error_names_the_extra(monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "wandb", None)
    with pytest.raises(ModuleNotFoundError, match=r'pip install "ember\[wandb\]"'):
        WandbLogger()
