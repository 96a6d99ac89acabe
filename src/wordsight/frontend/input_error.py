"""The one refusal of bad input, shared by the CLI (which prints it) and the server (which answers it)."""
from __future__ import annotations

from .._util.errors import WordsightError


class InputError(WordsightError):
    """What the user sent cannot be used: ``detail`` says what and where (a file, a field), ``code``
    names the problem for programs, ``status_code`` is the HTTP status the server answers with
    (413 too large, 415 not an image, 422 otherwise), ``file`` the upload it concerns, if any."""

    def __init__(self, status_code: int, code: str, detail: str, file: str | None = None):
        super().__init__(detail)
        self.status_code, self.code, self.detail, self.file = status_code, code, detail, file
