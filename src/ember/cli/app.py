"""``ember.cli.CLI``: LightningCLI's command line, on the same library (jsonargparse), stricter and plugin-aware.

``ember fit|validate|test|predict`` is ``CLI()`` with the model and data
chosen in the config; a script calls ``CLI(MyModel, MyData)`` to fix them.
The run goes: read the files and flags in order (:mod:`ember.cli.slots`),
check every key and type with its origin (:mod:`ember.cli.checks`), let
jsonargparse fill defaults, apply links and build the objects, seed, write
``config.yaml`` to the log folder, then call the Trainer. Every refusal comes
before anything is built and exits with code 2.
"""

from __future__ import annotations

import hashlib
import os
import random
import sys
from collections.abc import Sequence
from typing import Any

from ember.cli.checks import Checker, parameters
from ember.cli.names import import_class
from ember.cli.printing import annotated, config_header
from ember.cli.run import RUN_COMMANDS, subcommand_first
from ember.cli.slots import Slot, read_argv
from ember.cli.sources import ConfigError

USAGE_CODE = 2
_DESCRIPTION = (
    "Options come from --config FILE (repeatable, later files win, anywhere on the line) and --KEY VALUE flags "
    "(dotted: --trainer.max_epochs 3, --model.init_args.lr 0.01). --print_config prints the resolved config with "
    "each value's origin and exits. trainer.callbacks and trainer.logger take plugin names (`ember plugins list`): "
    "--trainer.callbacks+=lr_monitor, --trainer.callbacks.early_stopping.patience 5, --trainer.logger csv_logger."
)


class CLI:
    """Build a run from a config and the command line, then run a Trainer subcommand.

    :param model_class: the model; None lets the config choose any :class:`ember.Module` subclass.
    :param datamodule_class: the data; None lets the config choose one (or none: the model serves its data).
    :param trainer_defaults: Trainer arguments used where the config says nothing.
    :param seed_everything_default: ``True`` picks a random seed and records it in config.yaml.
    :param subclass_mode_model: with ``model_class``, accept its subclasses by ``class_path``.
    :param args: the arguments (default ``sys.argv[1:]``); with ``run=True`` the first is the subcommand.
    :param run: run the subcommand; ``False`` only builds ``cli.model``, ``cli.datamodule`` and ``cli.trainer``.
    """

    def __init__(
        self,
        model_class: type | None = None,
        datamodule_class: type | None = None,
        *,
        trainer_class: type | None = None,
        trainer_defaults: dict[str, Any] | None = None,
        seed_everything_default: bool | int = True,
        subclass_mode_model: bool = False,
        subclass_mode_data: bool = False,
        save_config: bool = True,
        args: Sequence[str] | None = None,
        run: bool = True,
        prog: str | None = None,
    ) -> None:
        from ember.core.trainer import Trainer

        self.model_class, self.datamodule_class = model_class, datamodule_class
        self.trainer_class: type = trainer_class or Trainer
        self.trainer_defaults = dict(trainer_defaults or {})
        self.seed_everything_default = seed_everything_default
        self.subclass_mode_model, self.subclass_mode_data = subclass_mode_model, subclass_mode_data
        self.save_config = save_config
        self.prog = prog or os.path.basename(sys.argv[0])
        self.subcommand: str | None = None
        self.config_path: str | None = None
        argv = subcommand_first(list(sys.argv[1:] if args is None else args))
        try:
            if run:
                if argv[:1] in (["-h"], ["--help"]):
                    print(f"usage: {self.prog} {{{','.join(RUN_COMMANDS)}}} [--config FILE] [--KEY VALUE ...]")
                    raise SystemExit(0)
                if not argv or argv[0] not in RUN_COMMANDS:
                    given = repr(argv[0]) if argv else "nothing"
                    raise ConfigError(
                        f"the first argument is the subcommand, one of {', '.join(RUN_COMMANDS)}; got {given}"
                    )
                self.subcommand = argv.pop(0)
            self._parse(argv)
            self.before_instantiate_classes()
            self._seed()
            self._instantiate()
        except ConfigError as error:
            name = f"{self.prog} {self.subcommand}" if self.subcommand else self.prog
            print(f"{name}: error: {error}", file=sys.stderr)
            raise SystemExit(USAGE_CODE) from None
        if run:
            self._run_subcommand()

    # ----------------------------------------------------------------- hooks
    def add_arguments_to_parser(self, parser: Any) -> None:
        """Override to add arguments (``parser.add_argument``) or links (``parser.link_arguments``)."""

    def before_instantiate_classes(self) -> None:
        """Override to change ``self.config`` after parsing and before anything is built."""

    def before_fit(self) -> None: ...
    def after_fit(self) -> None: ...
    def before_validate(self) -> None: ...
    def after_validate(self) -> None: ...
    def before_test(self) -> None: ...
    def after_test(self) -> None: ...
    def before_predict(self) -> None: ...
    def after_predict(self) -> None: ...

    # ---------------------------------------------------------------- parser
    def slots(self) -> list[Slot]:
        """The places in the config that name a class."""
        import torch

        optimizers = frozenset({"params"})
        return [
            Slot(("model",), "ember.core.module.Module", self._fixed(self.model_class, self.subclass_mode_model)),
            Slot(
                ("data",),
                "ember.core.datamodule.DataModule",
                self._fixed(self.datamodule_class, self.subclass_mode_data),
            ),
            Slot(("optimizer",), "torch.optim.Optimizer", skip=optimizers),
            Slot(("lr_scheduler",), _scheduler_base(torch), skip=frozenset({"optimizer"})),
            Slot(("trainer", "callbacks"), "ember.callback.Callback", many=True, plugins=True),
            Slot(("trainer", "logger"), "ember.loggers.base.Logger", plugins=True, constants=True),
        ]

    @staticmethod
    def _fixed(cls: type | None, subclass_mode: bool) -> type | None:
        return None if cls is None or subclass_mode else cls

    def _build_parser(self) -> Any:
        import torch
        from jsonargparse import ArgumentParser

        from ember.callback import Callback
        from ember.core.datamodule import DataModule
        from ember.core.module import Module
        from ember.loggers.base import Logger

        name = f"{self.prog} {self.subcommand}" if self.subcommand else self.prog
        parser = ArgumentParser(prog=name, exit_on_error=False, description=_DESCRIPTION)
        parser.add_argument("--seed_everything", type=bool | int, default=self.seed_everything_default)
        parser.add_argument("--ckpt_path", type=str | None, default=None, help='a checkpoint file, "last" or "best"')
        parser.add_class_arguments(
            self.trainer_class, "trainer", skip={"callbacks", "logger"}, instantiate=False, fail_untyped=False
        )
        parser.add_argument("--trainer.callbacks", type=list[Callback] | None, default=None)
        parser.add_argument("--trainer.logger", type=bool | Logger | list[Logger] | None, default=None)
        for key, cls, base, subclass_mode, required in (
            ("model", self.model_class, Module, self.subclass_mode_model, True),
            ("data", self.datamodule_class, DataModule, self.subclass_mode_data, False),
        ):
            if cls is not None and not subclass_mode:
                parser.add_class_arguments(cls, key, fail_untyped=False)
            else:
                parser.add_subclass_arguments(cls or base, key, required=required, fail_untyped=False)
        parser.add_subclass_arguments(
            torch.optim.Optimizer, "optimizer", skip={"params"}, instantiate=False, required=False
        )
        scheduler = import_class(_scheduler_base(torch), "torch")
        parser.add_subclass_arguments(scheduler, "lr_scheduler", skip={"optimizer"}, instantiate=False, required=False)
        if self.trainer_defaults:
            parser.set_defaults({f"trainer.{key}": value for key, value in self.trainer_defaults.items()})
        from ember.cli import extensions

        extensions.add_arguments(parser, self.subcommand or "fit")
        self.add_arguments_to_parser(parser)
        return parser

    def _parse(self, argv: list[str]) -> None:
        self.parser = self._build_parser()
        slots = self.slots()
        request = read_argv(argv, slots)
        if request.help:
            self.parser.print_help()
            raise SystemExit(0)
        keys: dict[str, Any] = {key: Any for key in self.parser.get_defaults().keys()}
        for action in self.parser._actions:  # the hints of arguments a script added
            if action.dest in keys:
                keys[action.dest] = getattr(action, "_typehint", None) or Any
        trainer_hints, _ = parameters(self.trainer_class, skip={"callbacks", "logger"})
        keys.update({f"trainer.{name}": hint for name, hint in trainer_hints.items()})
        keys.update({"seed_everything": bool | int, "ckpt_path": str | None})
        for slot in slots:
            name = ".".join(map(str, slot.key))
            keys = {k: v for k, v in keys.items() if k != name and not k.startswith(name + ".")}
        if self.model_class is None and request.document.get(("model",)) is None:
            raise ConfigError("no model: give --model pkg.module.Class, or model: in a --config file")
        Checker(slots, keys).check(request.document)
        self.document = request.document
        try:
            self.config = self.parser.parse_object(request.document.plain())
        except Exception as error:  # jsonargparse's own checks: a class_path it cannot use, a bad link
            raise ConfigError(_tidy(str(error))) from None
        if request.print_config:
            print(annotated(self._dump(), request.document, _active_plugins()))
            raise SystemExit(0)

    def _dump(self) -> str:
        return str(self.parser.dump(self.config, skip_unset=False, skip_validation=True))

    # --------------------------------------------------------------- building
    def _seed(self) -> None:
        from ember.core.seed import seed_everything

        seed = self.config.seed_everything
        if seed is True:
            seed = _shared_seed()
        if seed is not False:
            self.config.seed_everything = seed_everything(seed, workers=True)

    def _instantiate(self) -> None:
        try:
            self.config_init = self.parser.instantiate(self.config)
        except (TypeError, ValueError) as error:
            raise ConfigError(f"building the model or data failed: {error}") from None
        self.model = self.config_init.model
        self.datamodule = self.config_init.get("data")
        optimizer, scheduler = self.config.get("optimizer"), self.config.get("lr_scheduler")
        if scheduler is not None and optimizer is None:
            raise ConfigError("lr_scheduler is given without an optimizer; add --optimizer CLASS")
        if optimizer is not None:
            _configure_optimizers(self.model, optimizer, scheduler)
        arguments = dict(self.config_init.trainer.items())
        from ember.errors import MisconfigurationError

        try:
            self.trainer = self.trainer_class(**arguments)
        except (TypeError, ValueError, MisconfigurationError) as error:
            raise ConfigError(f"trainer: {error}") from None

    # -------------------------------------------------------------------- run
    def _run_subcommand(self) -> None:
        assert self.subcommand is not None
        if self.save_config:
            self._write_config()
        arguments: dict[str, Any] = {}
        if self.datamodule is not None:
            arguments["datamodule"] = self.datamodule
        if self.config.get("ckpt_path") is not None:
            arguments["ckpt_path"] = self.config.ckpt_path
        getattr(self, f"before_{self.subcommand}")()
        getattr(self.trainer, self.subcommand)(self.model, **arguments)
        getattr(self, f"after_{self.subcommand}")()

    def _write_config(self) -> None:
        """config.yaml in the log folder; an existing, different one is kept and this run's gets the next free name."""
        if not self.trainer.is_global_zero:
            return
        folder = self.trainer.log_dir
        os.makedirs(folder, exist_ok=True)
        text = config_header() + self._dump()
        for n in range(10_000):
            path = os.path.join(folder, "config.yaml" if n == 0 else f"config.{n}.yaml")
            if os.path.exists(path):
                with open(path, encoding="utf-8") as existing:
                    if existing.read() != text:
                        continue
            else:
                with open(path, "w", encoding="utf-8") as file:
                    file.write(text)
            self.config_path = path
            print(f"{self.prog}: config written to {path}", file=sys.stderr)
            return


#: Lightning's name for the same class, so ``from ember.cli import LightningCLI`` ports a script unchanged.
LightningCLI = CLI


def _shared_seed() -> int:
    """A random seed every rank of the run agrees on.

    A rank ember launched inherits the seed its launcher chose (``EMBER_GLOBAL_SEED``); under torchrun, where
    ranks start apart, the seed derives from the run id torchrun gives them all; otherwise it is fresh.
    """
    if "LOCAL_RANK" in os.environ and os.environ.get("EMBER_GLOBAL_SEED", "").isdigit():
        return int(os.environ["EMBER_GLOBAL_SEED"])
    run_id = os.environ.get("TORCHELASTIC_RUN_ID")
    if run_id:
        return int(hashlib.sha256(run_id.encode()).hexdigest()[:8], 16)
    return random.SystemRandom().randint(0, 2**32 - 1)


def _scheduler_base(torch: Any) -> str:
    schedulers = torch.optim.lr_scheduler
    return "torch.optim.lr_scheduler." + ("LRScheduler" if hasattr(schedulers, "LRScheduler") else "_LRScheduler")


def _configure_optimizers(model: Any, optimizer: Any, scheduler: Any) -> None:
    """Give ``model`` a configure_optimizers that builds the configured optimizer (and scheduler)."""
    optimizer_class = import_class(optimizer.class_path, "optimizer")
    optimizer_arguments = dict(optimizer.get("init_args") or {})
    scheduler_class = import_class(scheduler.class_path, "lr_scheduler") if scheduler is not None else None
    scheduler_arguments = dict(scheduler.get("init_args") or {}) if scheduler is not None else {}

    def configure_optimizers() -> Any:
        built = optimizer_class(model.parameters(), **optimizer_arguments)
        if scheduler_class is None:
            return built
        return {"optimizer": built, "lr_scheduler": scheduler_class(built, **scheduler_arguments)}

    model.configure_optimizers = configure_optimizers


def _active_plugins() -> list[str]:
    from ember.core import discovery

    return [f"{r.name} ({r.distribution} {r.version})" for r in discovery.survey() if r.status == "active"]


def _tidy(message: str) -> str:
    """jsonargparse's message without its ``<class '...'>`` noise."""
    return message.replace("<class '", "").replace("'>", "").strip()
