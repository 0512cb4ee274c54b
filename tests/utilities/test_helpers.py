"""ember.utilities: the collection, device, signature and model helpers third-party callbacks import."""

from __future__ import annotations

import dataclasses
from collections import OrderedDict, namedtuple

import pytest
import torch

import ember as pl
from ember.errors import MisconfigurationError
from ember.utilities import (
    AttributeDict,
    apply_to_collection,
    is_overridden,
    is_param_in_hook_signature,
    move_data_to_device,
)
from ember.utilities.exceptions import MisconfigurationException
from ember.utilities.model_helpers import get_torchvision_model
from ember.utilities.seed import isolate_rng
from ember.utilities.types import STEP_OUTPUT, LRSchedulerConfig, OptimizerLRScheduler

Pair = namedtuple("Pair", ["image", "label"])


@dataclasses.dataclass
class Sample:
    image: torch.Tensor
    name: str


def test_apply_to_collection_reaches_tensors_in_nested_collections():
    batch = {
        "pair": Pair(torch.ones(2), torch.zeros(1)),
        "items": [torch.ones(3), "text"],
        "ordered": OrderedDict(a=torch.ones(1)),
    }
    doubled = apply_to_collection(batch, torch.Tensor, lambda t: t * 2)
    assert isinstance(doubled["pair"], Pair) and doubled["pair"].image.tolist() == [2.0, 2.0]
    assert doubled["items"][1] == "text" and doubled["items"][0].tolist() == [2.0] * 3
    assert isinstance(doubled["ordered"], OrderedDict)


def test_apply_to_collection_rebuilds_dataclasses():
    sample = apply_to_collection(Sample(torch.ones(2), "cat"), torch.Tensor, torch.neg)
    assert sample.name == "cat" and sample.image.tolist() == [-1.0, -1.0]


def test_move_data_to_device_accepts_a_string_device_and_keeps_structure():
    batch = move_data_to_device((torch.ones(2, dtype=torch.float64), {"mask": torch.zeros(1)}), "cpu")
    assert batch[0].device.type == "cpu" and set(batch[1]) == {"mask"}


def test_move_data_to_device_names_a_bad_device():
    with pytest.raises(TypeError, match=r"device=3\.5"):
        move_data_to_device(torch.ones(1), 3.5)


class Hooks(pl.LightningModule):
    def training_step(self, batch):
        pass

    def validation_step(self, batch, idx):
        pass

    def test_step(self, *args):
        pass

    def predict_step(self, batch, batch_idx, dataloader_idx=0):
        pass


@pytest.mark.parametrize(
    ("hook", "param", "kwargs", "expected"),
    [
        ("training_step", "batch_idx", {"min_args": 2}, False),
        ("validation_step", "batch_idx", {"min_args": 2}, True),
        ("validation_step", "batch_idx", {}, False),
        ("test_step", "dataloader_idx", {}, True),
        ("test_step", "dataloader_idx", {"explicit": True}, False),
        ("predict_step", "dataloader_idx", {"explicit": True}, True),
    ],
)
def test_is_param_in_hook_signature(hook, param, kwargs, expected):
    assert is_param_in_hook_signature(getattr(Hooks(), hook), param, **kwargs) is expected
    assert is_param_in_hook_signature(getattr(Hooks, hook), param, **kwargs) is expected


def test_is_overridden_tells_redefined_hooks_from_inherited_ones():
    class Model(pl.LightningModule):
        def on_train_start(self):
            pass

    assert is_overridden("on_train_start", Model())
    assert not is_overridden("on_train_end", Model())
    assert not is_overridden("on_train_start", None)


def test_misconfiguration_exception_catches_what_ember_raises():
    assert MisconfigurationException is MisconfigurationError
    with pytest.raises(MisconfigurationException, match="max_epochs"):
        pl.Trainer(max_epochs=-5)


def test_lr_scheduler_config_is_what_the_trainer_holds():
    optimizer = torch.optim.SGD([torch.nn.Parameter(torch.ones(1))], lr=0.1)
    config = LRSchedulerConfig(torch.optim.lr_scheduler.StepLR(optimizer, 1), interval="step")
    assert (config.interval, config.frequency, config.monitor, config.strict) == ("step", 1, None, True)
    assert STEP_OUTPUT is not None and OptimizerLRScheduler is not None


def test_get_torchvision_model_without_torchvision_says_how_to_install_it():
    pytest.importorskip("torch")
    try:
        import torchvision  # noqa: F401
    except ModuleNotFoundError:
        with pytest.raises(ModuleNotFoundError, match="pip install torchvision"):
            get_torchvision_model("resnet18")
    else:  # pragma: no cover - torchvision is not installable beside torch 2.13 here
        assert get_torchvision_model("resnet18", weights=None).fc.out_features == 1000


def test_isolate_rng_puts_the_random_state_back():
    torch.manual_seed(1)
    with isolate_rng():
        torch.rand(3)
    after = torch.rand(1)
    torch.manual_seed(1)
    assert torch.equal(after, torch.rand(1))


def test_attribute_dict_is_the_hparams_type():
    params = AttributeDict(lr=0.1)
    assert params.lr == 0.1 and params["lr"] == 0.1


def test_grad_clip_algorithm_type_is_accepted_as_the_flag():
    from ember.utilities import GradClipAlgorithmType

    trainer = pl.Trainer(gradient_clip_val=1.0, gradient_clip_algorithm=GradClipAlgorithmType.VALUE, logger=False)
    assert trainer.gradient_clip_algorithm == "value"


def test_suggested_max_num_workers_shares_the_cores():
    from ember.utilities import suggested_max_num_workers

    assert suggested_max_num_workers(1) >= 1
    assert suggested_max_num_workers(1000) == 1
    with pytest.raises(ValueError, match="local_world_size=0"):
        suggested_max_num_workers(0)


def test_is_picklable():
    from ember.utilities import is_picklable

    assert is_picklable({"lr": 0.1})
    assert not is_picklable(lambda: None)


def test_disable_possible_user_warnings_silences_embers_warnings():
    import warnings

    from ember.utilities import disable_possible_user_warnings
    from ember.utilities.warnings import PossibleUserWarning

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        disable_possible_user_warnings()
        warnings.warn("few workers", PossibleUserWarning, stacklevel=1)
    assert caught == []


def test_every_name_in_all_is_importable():
    import ember.utilities

    assert sorted(ember.utilities.__all__) == ember.utilities.__all__
    for name in ember.utilities.__all__:
        assert getattr(ember.utilities, name) is not None
    for module in ember.utilities.MODULES:
        assert getattr(ember.utilities, module).__name__ == f"ember.utilities.{module}"
