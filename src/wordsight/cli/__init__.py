"""The ``wordsight`` command: thin verbs that parse, call the Python API and print."""
from __future__ import annotations

import argparse
import importlib
import sys

from .._version import __version__

# One module per verb, each with ``add_parser(subparsers)`` setting ``func(args) -> int``.
COMMANDS = ["models", "embed", "data", "describe", "zeroshot", "export", "serve", "fit", "evaluate", "predict", "explain", "demo"]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="wordsight",
        description="Image classification with language models: embed, describe, fit, evaluate, "
        "explain and serve.",
    )
    parser.add_argument("--version", action="version", version=f"wordsight {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMANDS:
        importlib.import_module(f".{name}", __name__).add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except (FileNotFoundError, ValueError, KeyError, RuntimeError) as e:
        msg = e.args[0] if isinstance(e, KeyError) and e.args else e
        print(f"wordsight {args.command}: error: {msg}", file=sys.stderr)
        return 1


