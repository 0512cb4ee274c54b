"""Every hook ember calls, in one place, grouped by phase.

These are the hooks of Lightning's ``Callback`` with Lightning's argument
names, so a Lightning callback ports by changing its imports. A plugin may
implement any of them:

* a :class:`ember.Callback` subclass overrides methods of the same name, which
  ember calls positionally as Lightning does;
* any object or module may define functions decorated with
  :data:`ember.hookimpl`, which pluggy calls by argument name, so they may
  take any subset of the arguments listed here.

Implementations run in registration order (the order of ``callbacks=[...]``,
then plugins from entry points), ``tryfirst`` ones before and ``trylast`` ones
after the rest; wrappers (``wrapper=True``) surround all of them. The module's
hook of the same name runs after the callbacks', except where a hook says
otherwise.

Ranks: under a distributed strategy every hook runs on every rank, with the
same arguments; a plugin that must act once checks ``trainer.is_global_zero``.
Hooks that return nothing combine nothing: their return values are ignored.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ember.markers import hookspec

if TYPE_CHECKING:  # pragma: no cover
    from ember.core.module import Module
    from ember.core.trainer import Trainer

# --------------------------------------------------------------------- stages


@hookspec
def setup(trainer: Trainer, pl_module: Module, stage: str) -> None:
    """Called when fit, validate, test or predict begins, before the model is configured.

    Runs after the datamodule's ``setup`` and before the module's.

    :param trainer: the running Trainer.
    :param pl_module: the user's :class:`ember.Module`.
    :param stage: ``"fit"``, ``"validate"``, ``"test"`` or ``"predict"``.
    """


@hookspec
def teardown(trainer: Trainer, pl_module: Module, stage: str) -> None:
    """Called when fit, validate, test or predict ends normally.

    Not called when the run raised: ``on_exception`` is the last hook then.

    :param trainer: the running Trainer.
    :param pl_module: the user's :class:`ember.Module`.
    :param stage: ``"fit"``, ``"validate"``, ``"test"`` or ``"predict"``.
    """


@hookspec
def on_fit_start(trainer: Trainer, pl_module: Module) -> None:
    """Called when fit begins, after setup and configure_optimizers, before the sanity check.

    :param trainer: the running Trainer.
    :param pl_module: the user's :class:`ember.Module`.
    """


@hookspec
def on_fit_end(trainer: Trainer, pl_module: Module) -> None:
    """Called when fit ends, after on_train_end and before teardown.

    :param trainer: the running Trainer.
    :param pl_module: the user's :class:`ember.Module`.
    """


@hookspec
def on_sanity_check_start(trainer: Trainer, pl_module: Module) -> None:
    """Called before the validation sanity check that opens fit.

    :param trainer: the running Trainer (``trainer.sanity_checking`` is True).
    :param pl_module: the user's :class:`ember.Module`.
    """


@hookspec
def on_sanity_check_end(trainer: Trainer, pl_module: Module) -> None:
    """Called after the validation sanity check, before on_train_start.

    :param trainer: the running Trainer.
    :param pl_module: the user's :class:`ember.Module`.
    """


# ------------------------------------------------------------------ training


@hookspec
def on_train_start(trainer: Trainer, pl_module: Module) -> None:
    """Called when the training loop begins, after the sanity check.

    :param trainer: the running Trainer.
    :param pl_module: the user's :class:`ember.Module`.
    """


@hookspec
def on_train_end(trainer: Trainer, pl_module: Module) -> None:
    """Called when the training loop ends, before on_fit_end.

    :param trainer: the running Trainer.
    :param pl_module: the user's :class:`ember.Module`.
    """


@hookspec
def on_train_epoch_start(trainer: Trainer, pl_module: Module) -> None:
    """Called at the start of each training epoch.

    Not called again for the epoch a mid-epoch resume continues.

    :param trainer: the running Trainer.
    :param pl_module: the user's :class:`ember.Module`.
    """


@hookspec
def on_train_epoch_end(trainer: Trainer, pl_module: Module) -> None:
    """Called at the end of each training epoch, after validation ran inside it.

    Plain and ``tryfirst`` implementations run before the module's
    ``on_train_epoch_end``; ``trylast`` ones (checkpointing, early stopping)
    run after it, so they see what the module logged there.

    :param trainer: the running Trainer.
    :param pl_module: the user's :class:`ember.Module`.
    """


@hookspec
def on_train_batch_start(trainer: Trainer, pl_module: Module, batch: Any, batch_idx: int) -> None:
    """Called before each training batch, after it was moved to the device.

    :param trainer: the running Trainer.
    :param pl_module: the user's :class:`ember.Module`.
    :param batch: the batch, on the device.
    :param batch_idx: index of the batch in the epoch.
    """


@hookspec
def on_train_batch_end(trainer: Trainer, pl_module: Module, outputs: Any, batch: Any, batch_idx: int) -> None:
    """Called after each training batch, after the optimizer step if one was due.

    :param trainer: the running Trainer.
    :param pl_module: the user's :class:`ember.Module`.
    :param outputs: what ``training_step`` returned (a loss tensor or a dict with ``"loss"``).
    :param batch: the batch, on the device.
    :param batch_idx: index of the batch in the epoch.
    """


# ---------------------------------------------------------------- validation


@hookspec
def on_validation_start(trainer: Trainer, pl_module: Module) -> None:
    """Called when a validation run begins (in fit, in the sanity check, or in validate).

    :param trainer: the running Trainer.
    :param pl_module: the user's :class:`ember.Module`, already in eval mode.
    """


@hookspec
def on_validation_end(trainer: Trainer, pl_module: Module) -> None:
    """Called when a validation run ends, after its metrics were reduced.

    :param trainer: the running Trainer (``trainer.callback_metrics`` holds them).
    :param pl_module: the user's :class:`ember.Module`.
    """


@hookspec
def on_validation_epoch_start(trainer: Trainer, pl_module: Module) -> None:
    """Called before the first validation batch of a validation run.

    :param trainer: the running Trainer.
    :param pl_module: the user's :class:`ember.Module`.
    """


@hookspec
def on_validation_epoch_end(trainer: Trainer, pl_module: Module) -> None:
    """Called after the last validation batch of a validation run.

    :param trainer: the running Trainer.
    :param pl_module: the user's :class:`ember.Module`.
    """


@hookspec
def on_validation_batch_start(
    trainer: Trainer, pl_module: Module, batch: Any, batch_idx: int, dataloader_idx: int
) -> None:
    """Called before each validation batch.

    :param trainer: the running Trainer.
    :param pl_module: the user's :class:`ember.Module`.
    :param batch: the batch, on the device.
    :param batch_idx: index of the batch in its dataloader.
    :param dataloader_idx: index of the dataloader (0 with a single one).
    """


@hookspec
def on_validation_batch_end(
    trainer: Trainer,
    pl_module: Module,
    outputs: Any,
    batch: Any,
    batch_idx: int,
    dataloader_idx: int,
) -> None:
    """Called after each validation batch.

    :param trainer: the running Trainer.
    :param pl_module: the user's :class:`ember.Module`.
    :param outputs: what ``validation_step`` returned.
    :param batch: the batch, on the device.
    :param batch_idx: index of the batch in its dataloader.
    :param dataloader_idx: index of the dataloader (0 with a single one).
    """


# ---------------------------------------------------------------------- test


@hookspec
def on_test_start(trainer: Trainer, pl_module: Module) -> None:
    """Called when test begins.

    :param trainer: the running Trainer.
    :param pl_module: the user's :class:`ember.Module`, already in eval mode.
    """


@hookspec
def on_test_end(trainer: Trainer, pl_module: Module) -> None:
    """Called when test ends, after its metrics were reduced.

    :param trainer: the running Trainer.
    :param pl_module: the user's :class:`ember.Module`.
    """


@hookspec
def on_test_epoch_start(trainer: Trainer, pl_module: Module) -> None:
    """Called before the first test batch.

    :param trainer: the running Trainer.
    :param pl_module: the user's :class:`ember.Module`.
    """


@hookspec
def on_test_epoch_end(trainer: Trainer, pl_module: Module) -> None:
    """Called after the last test batch.

    :param trainer: the running Trainer.
    :param pl_module: the user's :class:`ember.Module`.
    """


@hookspec
def on_test_batch_start(trainer: Trainer, pl_module: Module, batch: Any, batch_idx: int, dataloader_idx: int) -> None:
    """Called before each test batch.

    :param trainer: the running Trainer.
    :param pl_module: the user's :class:`ember.Module`.
    :param batch: the batch, on the device.
    :param batch_idx: index of the batch in its dataloader.
    :param dataloader_idx: index of the dataloader (0 with a single one).
    """


@hookspec
def on_test_batch_end(
    trainer: Trainer,
    pl_module: Module,
    outputs: Any,
    batch: Any,
    batch_idx: int,
    dataloader_idx: int,
) -> None:
    """Called after each test batch.

    :param trainer: the running Trainer.
    :param pl_module: the user's :class:`ember.Module`.
    :param outputs: what ``test_step`` returned.
    :param batch: the batch, on the device.
    :param batch_idx: index of the batch in its dataloader.
    :param dataloader_idx: index of the dataloader (0 with a single one).
    """


# ------------------------------------------------------------------- predict


@hookspec
def on_predict_start(trainer: Trainer, pl_module: Module) -> None:
    """Called when predict begins.

    :param trainer: the running Trainer.
    :param pl_module: the user's :class:`ember.Module`, already in eval mode.
    """


@hookspec
def on_predict_end(trainer: Trainer, pl_module: Module) -> None:
    """Called when predict ends.

    :param trainer: the running Trainer.
    :param pl_module: the user's :class:`ember.Module`.
    """


@hookspec
def on_predict_epoch_start(trainer: Trainer, pl_module: Module) -> None:
    """Called before the first predict batch.

    :param trainer: the running Trainer.
    :param pl_module: the user's :class:`ember.Module`.
    """


@hookspec
def on_predict_epoch_end(trainer: Trainer, pl_module: Module) -> None:
    """Called after the last predict batch.

    :param trainer: the running Trainer.
    :param pl_module: the user's :class:`ember.Module`.
    """


@hookspec
def on_predict_batch_start(
    trainer: Trainer, pl_module: Module, batch: Any, batch_idx: int, dataloader_idx: int
) -> None:
    """Called before each predict batch.

    :param trainer: the running Trainer.
    :param pl_module: the user's :class:`ember.Module`.
    :param batch: the batch, on the device.
    :param batch_idx: index of the batch in its dataloader.
    :param dataloader_idx: index of the dataloader (0 with a single one).
    """


@hookspec
def on_predict_batch_end(
    trainer: Trainer,
    pl_module: Module,
    outputs: Any,
    batch: Any,
    batch_idx: int,
    dataloader_idx: int,
) -> None:
    """Called after each predict batch.

    :param trainer: the running Trainer.
    :param pl_module: the user's :class:`ember.Module`.
    :param outputs: what ``predict_step`` returned.
    :param batch: the batch, on the device.
    :param batch_idx: index of the batch in its dataloader.
    :param dataloader_idx: index of the dataloader (0 with a single one).
    """


# -------------------------------------------------------------- optimization


@hookspec
def on_before_backward(trainer: Trainer, pl_module: Module, loss: Any) -> None:
    """Called before ``loss.backward()`` (automatic) or inside ``manual_backward``.

    :param trainer: the running Trainer.
    :param pl_module: the user's :class:`ember.Module`.
    :param loss: the loss tensor about to be backpropagated (scaled by accumulation).
    """


@hookspec
def on_after_backward(trainer: Trainer, pl_module: Module) -> None:
    """Called after the backward pass, before gradients are unscaled or clipped.

    :param trainer: the running Trainer.
    :param pl_module: the user's :class:`ember.Module`; gradients are in ``.grad``.
    """


@hookspec
def on_before_optimizer_step(trainer: Trainer, pl_module: Module, optimizer: Any) -> None:
    """Called before each optimizer step, before gradient clipping.

    :param trainer: the running Trainer.
    :param pl_module: the user's :class:`ember.Module`.
    :param optimizer: the ``torch.optim.Optimizer`` about to step.
    """


@hookspec
def on_before_zero_grad(trainer: Trainer, pl_module: Module, optimizer: Any) -> None:
    """Called before the gradients of ``optimizer`` are zeroed.

    :param trainer: the running Trainer.
    :param pl_module: the user's :class:`ember.Module`.
    :param optimizer: the ``torch.optim.Optimizer`` whose gradients are zeroed.
    """


# --------------------------------------------------------------- checkpoints


@hookspec
def state_dict() -> dict[str, Any]:  # type: ignore[empty-body]
    """Return this plugin's state, to be saved in checkpoints.

    Results do not combine: ember calls each implementation on its own and
    stores what it returns under ``checkpoint["callbacks"][state_key]``, where
    ``state_key`` is the callback's ``state_key`` (or the plugin's name for a
    plain plugin). Empty dicts are not saved. Whatever is returned must load
    with ``torch.load(weights_only=True)``: tensors, numbers, strings, and
    lists, tuples and dicts of them.
    """


@hookspec
def load_state_dict(state_dict: dict[str, Any]) -> None:
    """Restore this plugin's state from a checkpoint.

    Each implementation receives a copy of its own entry, the one
    ``state_dict`` returned under its ``state_key``; a plugin without an entry
    is not called.

    :param state_dict: what this plugin's ``state_dict`` returned.
    """


@hookspec
def on_save_checkpoint(trainer: Trainer, pl_module: Module, checkpoint: dict[str, Any]) -> None:
    """Called while a checkpoint is assembled, before it is written; may add entries to it.

    Runs after every ``state_dict`` was collected and before the module's
    ``on_save_checkpoint``.

    :param trainer: the running Trainer.
    :param pl_module: the user's :class:`ember.Module`.
    :param checkpoint: the checkpoint dict, changed in place.
    """


@hookspec
def on_load_checkpoint(trainer: Trainer, pl_module: Module, checkpoint: dict[str, Any]) -> None:
    """Called when a run resumes from a checkpoint, after the module's on_load_checkpoint.

    Runs before ``load_state_dict`` and before the optimizer states are restored.

    :param trainer: the running Trainer.
    :param pl_module: the user's :class:`ember.Module`.
    :param checkpoint: the loaded checkpoint dict.
    """


# -------------------------------------------------------------------- errors


@hookspec
def on_exception(trainer: Trainer, pl_module: Module, exception: BaseException) -> None:
    """Called once when fit, validate, test or predict raises (Ctrl-C included).

    It is the last hook of the run: no end or teardown hook follows. The
    exception is re-raised after every implementation ran.

    :param trainer: the running Trainer (``trainer.interrupted`` is True).
    :param pl_module: the user's :class:`ember.Module`.
    :param exception: what was raised.
    """


# ------------------------------------------------------------- two-way hooks
# Not Lightning Callback hooks (Callback has no methods for them): points where
# a plugin sees a value and may replace it. Each is a ``firstresult`` hook:
# plain implementations run in call order and the first that returns something
# other than None wins (the rest are skipped); wrappers (``wrapper=True``)
# surround them, see the winner (None: nothing replaced the value) and may
# return a replacement, the outermost wrapper having the last word. With no
# implementation a point costs one attribute check per batch.


@hookspec(firstresult=True)
def ember_train_batch(trainer: Trainer, pl_module: Module, batch: Any, batch_idx: int) -> Any:
    """Called with the batch the training step is about to receive; return a replacement, or None to keep it.

    Runs after ``on_train_batch_start`` (the module's included) and before
    ``training_step``; on_train_batch_end still receives the original batch.

    :param trainer: the running Trainer.
    :param pl_module: the user's :class:`ember.Module`.
    :param batch: the batch, on the device.
    :param batch_idx: the batch's index in the epoch.
    """


@hookspec(firstresult=True)
def ember_loss(trainer: Trainer, pl_module: Module, loss: Any) -> Any:
    """Called with the loss about to be backpropagated; return a replacement tensor, or None to keep it.

    Runs before ``on_before_backward``, in automatic optimization (where the
    loss is already divided by ``accumulate_grad_batches``) and in
    ``manual_backward``. The replacement is what backward and
    ``on_before_backward`` see; the logged and returned loss is unchanged.

    :param trainer: the running Trainer.
    :param pl_module: the user's :class:`ember.Module`.
    :param loss: the loss tensor.
    """


@hookspec(firstresult=True)
def ember_optimizer_step(trainer: Trainer, pl_module: Module, optimizer: Any, loss: Any) -> bool | None:
    """Called just before the optimizer steps, after backward, ``on_before_optimizer_step`` and clipping.

    Return False to skip this step (the gradients are zeroed as usual at the
    next batch; ``global_step`` still counts it); True or None lets it run. An
    implementation may also change how it runs, for example by scaling the
    gradients or the learning rate first. Not called for optimizers whose
    ``step(closure)`` calls the closure more than once (LBFGS).

    :param trainer: the running Trainer.
    :param pl_module: the user's :class:`ember.Module`.
    :param optimizer: the optimizer about to step.
    :param loss: the loss that was backpropagated (after ``ember_loss``), or None.
    """


@hookspec(firstresult=True)
def ember_validation_outputs(
    trainer: Trainer, pl_module: Module, outputs: Any, batch: Any, batch_idx: int, dataloader_idx: int
) -> Any:
    """Called with what ``validation_step`` returned; return a replacement, or None to keep it.

    Runs before ``on_validation_batch_end``, which receives the replacement.

    :param trainer: the running Trainer.
    :param pl_module: the user's :class:`ember.Module`.
    :param outputs: what validation_step returned.
    :param batch: the batch.
    :param batch_idx: the batch's index.
    :param dataloader_idx: the index of the dataloader.
    """


@hookspec(firstresult=True)
def ember_predict_outputs(
    trainer: Trainer, pl_module: Module, outputs: Any, batch: Any, batch_idx: int, dataloader_idx: int
) -> Any:
    """Called with what ``predict_step`` returned; return a replacement, or None to keep it.

    Runs before ``on_predict_batch_end``; the replacement is what that hook,
    prediction writers and ``Trainer.predict`` see.

    :param trainer: the running Trainer.
    :param pl_module: the user's :class:`ember.Module`.
    :param outputs: what predict_step returned.
    :param batch: the batch.
    :param batch_idx: the batch's index.
    :param dataloader_idx: the index of the dataloader.
    """


#: The two-way hooks above, in the order declared; not part of Lightning's Callback.
TWO_WAY_HOOKS: tuple[str, ...] = (
    "ember_train_batch",
    "ember_loss",
    "ember_optimizer_step",
    "ember_validation_outputs",
    "ember_predict_outputs",
)


# ------------------------------------------------------------- the command line
# Hooks of the ``ember`` command, not of a Trainer. They live in a class so that they
# stay out of the Trainer's hooks and of Callback (a module-level @hookspec is a Trainer
# hook). The command registers the modules named by ``ember.cli`` entry points, which a
# plugin keeps free of torch so that ``ember --help`` stays fast.


class CommandLineHooks:
    """Hooks a plugin implements (``@ember.hookimpl``) to extend the ``ember`` command."""

    @hookspec
    def ember_add_commands(self, commands: Any) -> None:
        """Called when the ``ember`` command builds its parser, to add subcommands.

        :param commands: argparse's subparsers: ``commands.add_parser(name, help=...)`` returns a parser;
            ``parser.set_defaults(run=function)`` makes ``ember NAME ...`` call ``function(arguments)``,
            whose return value is the exit code.
        """

    @hookspec
    def ember_add_arguments(self, parser: Any, subcommand: str) -> None:
        """Called when ``ember fit|validate|test|predict`` builds its parser, to add a config section.

        :param parser: the jsonargparse parser; ``parser.add_argument("--my_plugin.level", type=int, default=1)``
            adds a typed option that ``--help`` lists, the checks cover and ``cli.config`` holds.
        :param subcommand: ``"fit"``, ``"validate"``, ``"test"`` or ``"predict"``.
        """
