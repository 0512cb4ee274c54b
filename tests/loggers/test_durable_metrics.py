"""metrics.csv survives kill -9 up to the last checkpoint, and a resumed run completes it without duplicates."""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import torch

RUN = textwrap.dedent(
    """
    import sys, time

    import torch
    from torch.utils.data import DataLoader, TensorDataset

    import ember
    from ember.callbacks import ModelCheckpoint
    from ember.loggers import CSVLogger


    class Counting(ember.Module):
        def __init__(self, pause: float) -> None:
            super().__init__()
            self.layer = torch.nn.Linear(1, 1)
            self.pause = pause

        def training_step(self, batch, batch_idx):
            time.sleep(self.pause)
            (x,) = batch
            self.log("a", x.sum(), on_step=True, on_epoch=True)
            return self.layer(x).sum()

        def on_train_epoch_end(self):
            self.log("ee", self.current_epoch + 0.5)

        def configure_optimizers(self):
            return torch.optim.SGD(self.parameters(), lr=0.0)


    root, checkpoints, pause, resume = sys.argv[1], sys.argv[2], float(sys.argv[3]), sys.argv[4]
    data = DataLoader(TensorDataset(torch.arange(8.0).reshape(8, 1)), batch_size=2)
    trainer = ember.Trainer(
        max_epochs=6,
        logger=CSVLogger(root, version=0, flush_logs_every_n_steps=1000),
        callbacks=[ModelCheckpoint(checkpoints, every_n_epochs=1, save_top_k=-1)],
        log_every_n_steps=1,
        enable_progress_bar=False,
        enable_model_summary=False,
    )
    trainer.fit(Counting(pause), data, ckpt_path=resume or None)
    """
)


def train(script: Path, root: Path, checkpoints: Path, pause: float, resume: str = "") -> subprocess.Popen:
    arguments = [sys.executable, str(script), str(root), str(checkpoints), str(pause), resume]
    return subprocess.Popen(arguments)


@pytest.mark.slow
def test_after_kill_9_metrics_csv_holds_every_row_of_the_last_checkpoint_and_resuming_completes_it(
    tmp_path: Path,
) -> None:
    script = tmp_path / "run.py"
    script.write_text(RUN)
    assert train(script, tmp_path / "whole", tmp_path / "whole-ckpt", 0.0).wait(timeout=300) == 0
    whole = (tmp_path / "whole" / "ember_logs" / "version_0" / "metrics.csv").read_text()

    checkpoints = tmp_path / "ckpt"
    killed = train(script, tmp_path / "cut", checkpoints, 0.2)
    while len(list(checkpoints.glob("*.ckpt"))) < 2:
        assert killed.poll() is None, "the run ended before it was killed"
        time.sleep(0.05)
    time.sleep(0.3)  # into the next epoch, with rows buffered that no checkpoint covers yet
    killed.send_signal(signal.SIGKILL)
    killed.wait()
    last = max(checkpoints.glob("*.ckpt"), key=lambda path: path.stat().st_mtime_ns)
    covered = torch.load(last, weights_only=True)["loggers"]["CSVLogger"]["rows"]
    on_disk = (tmp_path / "cut" / "ember_logs" / "version_0" / "metrics.csv").read_text()
    assert on_disk.splitlines()[: covered + 1] == whole.splitlines()[: covered + 1]  # header and covered rows

    resumed = train(script, tmp_path / "cut", checkpoints, 0.0, resume=str(last))
    assert resumed.wait(timeout=300) == 0
    assert (tmp_path / "cut" / "ember_logs" / "version_0" / "metrics.csv").read_text() == whole
