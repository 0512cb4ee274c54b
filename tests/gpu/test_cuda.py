"""CUDA checks: device placement, 16-mixed with its gradient scaler, bf16-mixed, NCCL, FSDP. Skipped without a GPU.

Run on a GPU machine with ``bash tests/gpu/check.sh`` (the prepared device check).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import ember
from ember.testing import TinyModel

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")


class RecordsDtypes(TinyModel):
    def __init__(self) -> None:
        super().__init__()
        self.seen: list[tuple[str, torch.dtype]] = []

    def training_step(self, batch, batch_idx):
        x, y = batch
        out = self(x)
        self.seen.append((x.device.type, out.dtype))
        return torch.nn.functional.mse_loss(out.float(), y)


@pytest.mark.parametrize(
    ("precision", "dtype"), [("32-true", torch.float32), ("bf16-mixed", torch.bfloat16), ("16-mixed", torch.float16)]
)
def test_training_on_cuda_in_each_precision(trainer_factory, precision, dtype) -> None:
    model = RecordsDtypes()
    before = model.layer.weight.detach().clone()
    trainer = trainer_factory(accelerator="cuda", devices=1, precision=precision, max_epochs=1)
    trainer.fit(model)
    assert set(model.seen) == {("cuda", dtype)}
    assert model.layer.weight.dtype == torch.float32
    assert not torch.equal(before, model.layer.weight.detach().cpu())
    assert torch.isfinite(model.layer.weight).all()


def test_16_mixed_keeps_the_scaler_state_in_checkpoints(trainer_factory, tmp_path: Path) -> None:
    trainer = trainer_factory(accelerator="cuda", devices=1, precision="16-mixed", max_epochs=1)
    trainer.fit(TinyModel())
    path = tmp_path / "amp.ckpt"
    trainer.save_checkpoint(path)
    checkpoint = torch.load(path, weights_only=True)
    assert checkpoint["precision"]["scale"] > 0
    resumed = trainer_factory(accelerator="cuda", devices=1, precision="16-mixed", max_epochs=2)
    resumed.fit(TinyModel(), ckpt_path=path)
    assert resumed.current_epoch == 2


def test_ddp_on_nccl(tmp_path: Path) -> None:
    devices = min(torch.cuda.device_count(), 2)
    script = tmp_path / "nccl.py"
    script.write_text(
        "import torch, ember\n"
        "from ember.testing import TinyModel\n"
        "if __name__ == '__main__':\n"
        f"    trainer = ember.Trainer(strategy='ddp', accelerator='cuda', devices={devices}, max_epochs=2,\n"
        "                            precision='bf16-mixed', enable_progress_bar=False, enable_model_summary=False,\n"
        "                            logger=False, enable_checkpointing=False)\n"
        "    model = TinyModel()\n"
        "    trainer.fit(model)\n"
        "    import torch.distributed as dist\n"
        "    print('rank', trainer.global_rank, 'world', trainer.world_size, 'step', trainer.global_step, flush=True)\n"
    )
    done = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, timeout=300, env=dict(os.environ)
    )
    assert done.returncode == 0, done.stderr
    assert f"world {devices}" in done.stdout
    if devices == 1:
        pytest.skip("one GPU: NCCL ran with a single rank; two ranks need two GPUs")


def test_fsdp_on_nccl_in_bf16_mixed_trains_and_resumes_from_its_distributed_checkpoint(tmp_path: Path) -> None:
    sys.path.insert(0, str(Path(__file__).parents[1] / "core" / "strategies"))
    from sharded_program import trained, weights

    devices = min(torch.cuda.device_count(), 2)
    options = {"strategy": "fsdp", "accelerator": "cuda", "precision": "bf16-mixed", "devices": devices}
    first = trained(tmp_path / "first", **options, batch_size=8 // devices, every_n_steps=10)
    assert all(torch.isfinite(value).all() for value in weights(first).values())
    checkpoint = first / "ckpt" / "step=10.ckpt"
    assert (checkpoint / ".metadata").is_file()
    resumed = trained(tmp_path / "resumed", **options, batch_size=8 // devices, ckpt_path=str(checkpoint))
    first_weights, resumed_weights = weights(first), weights(resumed)
    assert all(torch.equal(first_weights[key], resumed_weights[key]) for key in first_weights)


class EpochValues(TinyModel):
    """Epoch values of both kinds: the loss, on the GPU, and the batch index, a Python number (on the CPU)."""

    def training_step(self, batch, batch_idx):
        loss = super().training_step(batch, batch_idx)
        self.log("loss_mean", loss, on_step=False, on_epoch=True)
        self.log("index_mean", float(batch_idx), on_step=False, on_epoch=True)
        return loss


def test_a_mid_epoch_resume_on_cuda_continues_the_epochs_values(trainer_factory, tmp_path: Path) -> None:
    import csv

    from ember.loggers import CSVLogger
    from ember.testing.crash import CrashAfter, SimulatedCrash

    def epoch_rows(folder: Path) -> list[tuple[float, float, float]]:
        with open(folder / "ember_logs" / "version_0" / "metrics.csv", newline="") as file:
            rows = [row for row in csv.DictReader(file) if row.get("loss_mean")]
        return [(float(row["epoch"]), float(row["index_mean"]), float(row["loss_mean"])) for row in rows]

    def trainer(folder: Path, *callbacks) -> ember.Trainer:
        ember.seed_everything(3)
        return trainer_factory(accelerator="cuda", devices=1, logger=CSVLogger(folder, version=0),
                               callbacks=list(callbacks), limit_val_batches=0)  # fmt: skip

    trainer(tmp_path / "full").fit(EpochValues())
    with pytest.raises(SimulatedCrash):  # 8 batches an epoch: step 11 is the middle of epoch 1
        trainer(tmp_path / "cut", CrashAfter(tmp_path / "c.ckpt", step=11)).fit(EpochValues())
    saved = torch.load(tmp_path / "c.ckpt", weights_only=True)["loops"]["fit_loop"]["metrics"]["epoch"]
    assert (saved["loss_mean"]["device"], saved["index_mean"]["device"]) == ("cuda", "cpu")
    trainer(tmp_path / "cut").fit(EpochValues(), ckpt_path=tmp_path / "c.ckpt")
    resumed, full = epoch_rows(tmp_path / "cut"), epoch_rows(tmp_path / "full")
    assert [index for _, index, _ in resumed] == [3.5, 3.5]  # the mean of batches 0 to 7, in both epochs
    assert [row[2] for row in resumed] == pytest.approx([row[2] for row in full])
    assert [row[:2] for row in resumed] == [row[:2] for row in full]
