"""``ember checkpoint consolidate DIR OUT``: a distributed checkpoint folder as one ordinary checkpoint file."""

from __future__ import annotations

import sys
from typing import Any

from ember.cli.common import FAILED, OK


def register(commands: Any) -> None:
    """Add ``ember checkpoint consolidate`` to the top-level subcommands."""
    checkpoint = commands.add_parser("checkpoint", help="work with checkpoint files and folders")
    actions = checkpoint.add_subparsers(dest="action", required=True)
    consolidate = actions.add_parser(
        "consolidate",
        help="join a distributed (sharded) checkpoint folder into one file",
        description="Join the shards of a distributed checkpoint folder, as a sharded strategy writes it, into "
        "one checkpoint file that Module.load_from_checkpoint and single-process runs load.",
    )
    consolidate.add_argument("source", metavar="DIR", help="the distributed checkpoint folder")
    consolidate.add_argument("output", metavar="OUT", help="the checkpoint file to write")
    consolidate.set_defaults(run=_consolidate)


def _consolidate(arguments: Any) -> int:
    from ember.core.distributed_checkpoint import consolidate
    from ember.errors import CheckpointError

    try:
        consolidate(arguments.source, arguments.output)
    except CheckpointError as error:
        print(f"ember: {error}", file=sys.stderr)
        return FAILED
    print(f"wrote {arguments.output}")
    return OK
