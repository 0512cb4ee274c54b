"""Run the user's script as a rank ember started, and end that process as soon as the script is done.

``strategy="ddp"`` starts ranks 1..N-1 by running the script again, through this
module: ``python -m ember.core.script_rank SCRIPT ARGS`` (or ``-m MODULE ARGS``).
The script runs as ``__main__`` exactly as Python would run it. Afterwards the
process ends the way Python ends one (non-daemon threads joined, exit handlers
run, the script's globals released, streams flushed) but skips the interpreter's
final teardown: torch keeps a process group that DDP used alive past
``destroy_process_group``, and gloo's threads, still running while C++ tears
down, can abort a finished rank there (``terminate called without an active
exception``, exit code -6), which rank 0 would report as a failed run.

Imports only the standard library: the script sets its environment (threads,
visible devices) before it imports torch, as it would when run directly.
"""

from __future__ import annotations

import atexit
import builtins
import gc
import importlib.util
import os
import sys
import threading
import types
from typing import Any

MODULE = "ember.core.script_rank"


def command(executable: str, target: list[str], args: list[str]) -> list[str]:
    """The command that runs ``target`` (``[path]`` or ``["-m", name]``) with ``args`` through this module."""
    return [executable, "-m", MODULE, *target, *args]


def main(argv: list[str]) -> None:
    """Run ``SCRIPT ARGS`` or ``-m MODULE ARGS`` as ``__main__``, then end the process with its exit code."""
    if argv[:1] == ["-m"]:
        (code, spec), args = _module(argv[1]), argv[2:]
    else:
        (code, spec), args = _script(argv[0]), argv[1:]
    sys.argv = [code.co_filename, *args]
    end_process(*_run(code, spec))


def end_process(code: int, namespace: dict[str, Any] | None = None) -> None:
    """End this process now, as Python would end it, but without the interpreter's final teardown.

    Non-daemon threads are joined and exit handlers run; ``namespace`` (the
    script's globals) is released so that open files are flushed and closed.
    """
    shutdown = getattr(threading, "_shutdown", None)
    if shutdown is not None:  # what Python itself runs first: thread-exit handlers, then joins non-daemon threads
        shutdown()
    atexit._run_exitfuncs()
    if namespace is not None:
        namespace.clear()
        gc.collect()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (AttributeError, OSError, ValueError):
            pass
    os._exit(code)


def _script(path: str) -> tuple[types.CodeType, None]:
    """The script's code; its folder leads ``sys.path``, as when Python runs a script."""
    path = os.path.abspath(path)
    sys.path[0] = os.path.dirname(path)
    with open(path, "rb") as handle:
        return compile(handle.read(), path, "exec", dont_inherit=True), None


def _module(name: str) -> tuple[types.CodeType, Any]:
    """A module's (or a package's ``__main__``) code; the working folder leads ``sys.path``, as with ``python -m``."""
    spec = importlib.util.find_spec(name)
    if spec is not None and spec.submodule_search_locations is not None:
        spec = importlib.util.find_spec(f"{name}.__main__")
    loader: Any = spec.loader if spec is not None else None
    code = loader.get_code(spec.name) if loader is not None else None  # type: ignore[union-attr]
    if code is None:
        raise SystemExit(f"ember: no code to run for module {name!r}")
    return code, spec


def _run(code: types.CodeType, spec: Any) -> tuple[int, dict[str, Any]]:
    """Execute ``code`` as ``__main__``: its exit code as Python's would be (the traceback printed alike), its globals."""
    main = types.ModuleType("__main__")
    main.__dict__.update(__file__=code.co_filename, __builtins__=builtins, __spec__=spec)
    if spec is not None:
        main.__dict__.update(__package__=spec.parent, __loader__=spec.loader)
    sys.modules["__main__"] = main
    try:
        exec(code, main.__dict__)
    except SystemExit as exit_:
        return _exit_code(exit_.code), main.__dict__
    except BaseException as error:  # noqa: BLE001 - printed and turned into an exit code, as Python does
        trace = error.__traceback__.tb_next if error.__traceback__ is not None else None  # from the script's frame
        sys.excepthook(type(error), error.with_traceback(trace), trace)
        return (130 if isinstance(error, KeyboardInterrupt) else 1), main.__dict__
    return 0, main.__dict__


def _exit_code(code: Any) -> int:
    """What ``sys.exit(code)`` makes the exit status: None is 0, an int itself, anything else printed and 1."""
    if code is None:
        return 0
    if isinstance(code, int):
        return code & 0xFF
    print(code, file=sys.stderr)
    return 1


if __name__ == "__main__":
    main(sys.argv[1:])
