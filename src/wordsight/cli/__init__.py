"""The ``wordsight`` command: thin verbs that parse, call the Python API and print."""
from __future__ import annotations

import argparse
import importlib
import os
import sys

from .._util.errors import WordsightError
from .._version import __version__

# One module per verb, each with ``add_parser(subparsers)`` setting ``func(args) -> int``.
COMMANDS = [
    "models",
    "formats",
    "embed",
    "data",
    "describe",
    "describe-classes",
    "zeroshot",
    "export",
    "quantize",
    "engines",
    "serve",
    "fit",
    "evaluate",
    "predict",
    "explain",
    "demo",
]


def build_parser(argv: list[str] | None = None) -> argparse.ArgumentParser:
    """The parser; only the verb named in ``argv`` (all verbs when ``argv`` is None) gets its
    options, the others only their one-line help, so that ``wordsight --help`` and every verb
    start without importing what the other verbs need."""
    chosen = next((a for a in argv if a in COMMANDS), None) if argv is not None else None
    parser = argparse.ArgumentParser(
        prog="wordsight",
        description="Image classification with language models: embed, describe, fit, evaluate, "
        "explain and serve.",
    )
    parser.add_argument("--version", action="version", version=f"wordsight {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMANDS:
        module = importlib.import_module(f".{name.replace('-', '_')}", __name__)
        if argv is None or name == chosen:
            module.add_parser(sub)
        else:
            sub.add_parser(name, help=module.HELP)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = build_parser(argv)
    try:
        args = parser.parse_args(argv)
    except WordsightError as e:  # an option out of its bounds (frontend.counts): one line, before any work
        print(f"wordsight {next((a for a in argv if a in COMMANDS), '')}: error: {e}", file=sys.stderr)
        return 1
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    import warnings

    format_warning = warnings.formatwarning
    _plain_output(args.command)
    try:
        from ..io.media_options import use_media_options
        from ._media import media_options

        with use_media_options(media_options(args)):  # how videos, DICOM and TIFF pages are listed
            return int(args.func(args) or 0)
    except (FileNotFoundError, ValueError, KeyError, RuntimeError) as e:
        msg = e.args[0] if isinstance(e, KeyError) and e.args else e
        print(f"wordsight {args.command}: error: {msg}", file=sys.stderr)
        return 1
    except OSError as e:  # a full disk, a read-only folder: the file and the reason, not a traceback
        where = f"{os.fsdecode(e.filename)}: " if e.filename else ""
        print(f"wordsight {args.command}: error: {where}{e.strerror or e}", file=sys.stderr)
        return 1
    finally:
        warnings.formatwarning = format_warning


def _plain_output(command: str) -> None:
    """File names that are not UTF-8 are printed as their own bytes (as ``ls`` does) instead of
    failing the run; warnings are one line each, naming the command."""
    import warnings

    for stream in (sys.stdout, sys.stderr):
        if hasattr(stream, "reconfigure"):
            stream.reconfigure(errors="surrogateescape" if stream is sys.stdout else "backslashreplace")

    def one_line(message, category, filename, lineno, line=None):
        return f"wordsight {command}: warning: {message}\n"

    warnings.formatwarning = one_line


