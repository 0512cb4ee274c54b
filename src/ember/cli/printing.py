"""The resolved config as YAML with each value's origin, and the header config.yaml carries.

``--print_config`` shows every key, defaults included, each with a comment
saying where its value came from; config.yaml starts with comment lines
naming ember, Python, torch and every installed plugin distribution with
its version, so a rerun can be checked against the environment that made it.
"""

from __future__ import annotations

import platform
from typing import Any

import yaml

from ember.cli.sources import Document, Key


def annotated(dumped: str, document: Document, active: list[str]) -> str:
    """``dumped`` (jsonargparse's YAML of the resolved config) with ``# origin`` comments."""
    data = yaml.safe_load(dumped) or {}
    lines = _emit(data, (), 0, document)
    lines.append(
        "# plugins every Trainer registers besides trainer.callbacks (ember's defaults, installed third parties):"
    )
    lines += [f"#   {name}" for name in active]
    return "\n".join(lines)


def _emit(node: dict[str, Any], key: Key, indent: int, document: Document) -> list[str]:
    lines: list[str] = []
    pad = " " * indent
    for name, value in node.items():
        here = key + (name,)
        if isinstance(value, dict) and value:
            lines.append(f"{pad}{name}:")
            lines += _emit(value, here, indent + 2, document)
        elif isinstance(value, list) and value:
            lines.append(f"{pad}{name}:")
            for index, item in enumerate(value):
                if isinstance(item, dict) and item:
                    inner = _emit(item, here + (index,), indent + 2, document)
                    inner[0] = f"{pad}- {inner[0].lstrip()}"
                    lines += inner
                else:
                    lines.append(f"{pad}- {_scalar(item)}  # {_origin(document, here + (index,))}")
        else:
            lines.append(f"{pad}{name}: {_scalar(value)}  # {_origin(document, here)}")
    return lines


def _origin(document: Document, key: Key) -> str:
    return document.origins.get(key) or "default"


def _scalar(value: Any) -> str:
    if value == {} or value == []:
        return "{}" if isinstance(value, dict) else "[]"
    return yaml.safe_dump([value], default_flow_style=True, width=10_000).strip()[1:-1]


def config_header() -> str:
    """Comment lines: ember, Python and torch versions, then each plugin distribution and the names it provides."""
    import torch

    from ember.core.entry_points import installed
    from ember.version import __version__

    lines = [f"# written by ember {__version__} (python {platform.python_version()}, torch {torch.__version__})"]
    lines.append("# plugin distributions (ember.plugins entry points):")
    by_distribution: dict[str, list[str]] = {}
    for ep in installed():
        by_distribution.setdefault(ep.origin, []).append(ep.name)
    lines += [f"#   {origin}: {', '.join(sorted(names))}" for origin, names in sorted(by_distribution.items())]
    return "\n".join(lines) + "\n"
