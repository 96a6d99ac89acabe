"""One base error, so that callers (the CLI, the server) can tell wordsight's refusals from bugs."""
from __future__ import annotations


class WordsightError(ValueError):
    """Bad input, a damaged file, an option that does not fit: the message says what and where."""


class NotSupportedError(WordsightError):
    """A valid request this model cannot serve (e.g. ONNX export of a random forest); says why."""
