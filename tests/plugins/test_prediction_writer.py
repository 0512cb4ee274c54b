"""BasePredictionWriter: predictions written to disk per batch or per epoch, read back and put in dataset order."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch.utils.data import DataLoader

from ember.callbacks import BasePredictionWriter
from ember.errors import MisconfigurationError
from ember.plugins.prediction_writer import WriteInterval
from ember.testing import TinyModel
from ember.testing.models import regression_data


class DiskWriter(BasePredictionWriter):
    """Writes each batch to ``<dataloader>_<batch>.pt`` and everything to ``predictions_<rank>.pt``."""

    def __init__(self, folder: Path, write_interval: str) -> None:
        super().__init__(write_interval)
        self.folder = folder

    def write_on_batch_end(self, trainer, pl_module, prediction, batch_indices, batch, batch_idx, dataloader_idx):
        torch.save(
            {"prediction": prediction, "indices": batch_indices, "inputs": batch[0]},
            self.folder / f"{dataloader_idx}_{batch_idx}.pt",
        )

    def write_on_epoch_end(self, trainer, pl_module, predictions, batch_indices):
        torch.save(
            {"predictions": predictions, "indices": batch_indices},
            self.folder / f"predictions_{trainer.global_rank}.pt",
        )


def load(path: Path):
    return torch.load(path, weights_only=True)


def loader(shuffle: bool = False, seed: int = 3) -> DataLoader:
    return DataLoader(regression_data(20, seed=seed), batch_size=8, shuffle=shuffle)


def test_batch_interval_writes_each_batch_with_its_dataset_indices(trainer_factory, tmp_path) -> None:
    model = TinyModel()
    returned = trainer_factory(callbacks=[DiskWriter(tmp_path, "batch")]).predict(model, loader())
    assert sorted(p.name for p in tmp_path.glob("*.pt")) == ["0_0.pt", "0_1.pt", "0_2.pt"]
    for batch_idx, expected in enumerate(returned):
        written = load(tmp_path / f"0_{batch_idx}.pt")
        assert torch.equal(written["prediction"], expected)
        assert written["indices"] == list(range(8 * batch_idx, min(8 * batch_idx + 8, 20)))
    assert not (tmp_path / "predictions_0.pt").exists()


def test_epoch_interval_writes_everything_once_even_without_returning_predictions(trainer_factory, tmp_path) -> None:
    model = TinyModel()
    trainer = trainer_factory(callbacks=[DiskWriter(tmp_path, "epoch")])
    assert trainer.predict(model, loader(), return_predictions=False) is None
    assert [p.name for p in tmp_path.glob("*.pt")] == ["predictions_0.pt"]
    written = load(tmp_path / "predictions_0.pt")
    assert [len(p) for p in written["predictions"]] == [8, 8, 4]  # one dataloader: a flat list of batches
    assert written["indices"] == [[list(range(8)), list(range(8, 16)), list(range(16, 20))]]
    with torch.no_grad():
        assert torch.allclose(torch.cat(written["predictions"]), model(regression_data(20, seed=3).tensors[0]))
    assert trainer.predict_loop.predictions == [[]]  # kept for the writer only, then dropped


def test_batch_and_epoch_does_both(trainer_factory, tmp_path) -> None:
    trainer_factory(callbacks=[DiskWriter(tmp_path, "batch_and_epoch")]).predict(TinyModel(), loader())
    assert sorted(p.name for p in tmp_path.glob("*.pt")) == ["0_0.pt", "0_1.pt", "0_2.pt", "predictions_0.pt"]


def test_indices_put_shuffled_predictions_back_in_dataset_order(trainer_factory, tmp_path) -> None:
    torch.manual_seed(0)
    model = TinyModel()
    trainer_factory(callbacks=[DiskWriter(tmp_path, "epoch")]).predict(model, loader(shuffle=True))
    written = load(tmp_path / "predictions_0.pt")
    order = [index for batch in written["indices"][0] for index in batch]
    assert sorted(order) == list(range(20)) and order != list(range(20))
    in_order = torch.empty(20, 2)
    in_order[order] = torch.cat(written["predictions"])
    with torch.no_grad():
        assert torch.allclose(in_order, model(regression_data(20, seed=3).tensors[0]))


def test_several_dataloaders(trainer_factory, tmp_path) -> None:
    class TwoLoaders(TinyModel):
        def predict_step(self, batch, batch_idx, dataloader_idx=0):
            return self(batch[0])

    trainer = trainer_factory(callbacks=[DiskWriter(tmp_path, "batch_and_epoch")])
    trainer.predict(TwoLoaders(), [loader(), loader(seed=4)])
    assert sorted(p.name for p in tmp_path.glob("[01]_*.pt")) == [
        "0_0.pt",
        "0_1.pt",
        "0_2.pt",
        "1_0.pt",
        "1_1.pt",
        "1_2.pt",
    ]
    written = load(tmp_path / "predictions_0.pt")
    assert [len(per_loader) for per_loader in written["predictions"]] == [3, 3]  # a list of batches per dataloader
    assert len(written["indices"]) == 2
    assert torch.equal(load(tmp_path / "1_2.pt")["inputs"], regression_data(20, seed=4).tensors[0][16:])


def test_a_missing_write_method_is_an_error_naming_the_class(trainer_factory) -> None:
    class OnlyBatches(BasePredictionWriter):
        def write_on_batch_end(self, *args):
            pass

    with pytest.raises(NotImplementedError, match="OnlyBatches has write_interval='epoch' but no write_on_epoch_end"):
        trainer_factory(callbacks=[OnlyBatches("epoch")]).predict(TinyModel(), loader())


def test_a_bad_write_interval_is_an_error_naming_it() -> None:
    with pytest.raises(MisconfigurationError, match=r"write_interval='step'\): accepted are 'batch', 'epoch'"):
        BasePredictionWriter("step")


@pytest.mark.parametrize(
    ("interval", "on_batch", "on_epoch"),
    [("batch", True, False), ("epoch", False, True), ("batch_and_epoch", True, True)],
)
def test_write_interval(interval, on_batch, on_epoch) -> None:
    assert BasePredictionWriter(interval).interval is WriteInterval(interval)
    assert (WriteInterval(interval).on_batch, WriteInterval(interval).on_epoch) == (on_batch, on_epoch)
