"""Issue 12: a class-descriptions file is user-supplied. `zeroshot --class-descriptions`,
`fit --class-descriptions` and `describe-classes --from` open only regular files, bound the size,
the number and the length of descriptions, and say in one line which file is wrong and why,
before any image is read."""
from __future__ import annotations

import json
import os

import pytest

from wordsight.cli import main

from .conftest import png, time_limit

CLASSES = "cat,dog"


def _folder(tmp_path):
    d = tmp_path / "imgs"
    for label in ("cat", "dog"):
        (d / label).mkdir(parents=True)
        (d / label / "a.png").write_bytes(png())
    return d


def _bad_files(tmp_path):
    files = {}
    fifo = tmp_path / "fifo.json"
    os.mkfifo(fifo)
    files["fifo"] = (fifo, "is a FIFO (named pipe), not a regular file")
    dev = tmp_path / "zero.json"
    dev.symlink_to("/dev/zero")
    files["device"] = (dev, "is a character device, not a regular file")
    big = tmp_path / "big.json"
    big.write_bytes(b'{"cat": ["' + b"x" * (4 * 1024 * 1024) + b'"]}')
    files["huge"] = (big, "more than the limit of 4,194,304")
    many = tmp_path / "many.json"
    many.write_text(json.dumps({"cat": [f"text {i}" for i in range(257)], "dog": ["a dog"]}))
    files["many"] = (many, "'cat' has 257 descriptions, more than the limit of 256")
    long = tmp_path / "long.json"
    long.write_text(json.dumps({"cat": ["y" * 1001], "dog": ["a dog"]}))
    files["long"] = (long, "1,001 characters, more than the limit of 1000")
    weight = tmp_path / "weight.json"
    weight.write_text('{"cat": [{"text": "a cat", "weight": NaN}], "dog": ["a dog"]}')
    files["nan weight"] = (weight, "has weight nan")
    negative = tmp_path / "negative.json"
    negative.write_text(json.dumps({"cat": [{"text": "a cat", "weight": -1}], "dog": ["a dog"]}))
    files["negative weight"] = (negative, "has weight -1")
    key = tmp_path / "key.json"
    key.write_text(json.dumps({"cat": [{"text": "a cat", "exec": "rm"}], "dog": ["a dog"]}))
    files["unknown key"] = (key, "unknown key(s) exec")
    deep = tmp_path / "deep.json"
    deep.write_text('{"cat": ' + "[" * 100_000 + "]" * 100_000 + "}")
    files["deep"] = (deep, "deep.json: ")
    return files


@pytest.mark.parametrize("verb", ["zeroshot", "fit", "describe-classes"])
def test_hostile_descriptions_files_are_refused_in_one_line(tmp_path, capsys, verb):
    folder = _folder(tmp_path)
    for case, (path, why) in _bad_files(tmp_path).items():
        if verb == "zeroshot":
            argv = ["zeroshot", str(folder), "--classes", CLASSES, "--class-descriptions", str(path), "--llm", "none"]
        elif verb == "fit":
            argv = ["fit", str(folder), "--out", str(tmp_path / "m"), "--fusion", "prior",
                    "--class-descriptions", str(path)]
        else:
            argv = ["describe-classes", CLASSES, "--images", str(folder), "--from", str(path), "--llm", "none",
                    "--out", str(tmp_path / "out.json")]
        with time_limit(60):
            code = main([*argv, "--quiet", "--no-cache"])
        err = capsys.readouterr().err.strip()
        assert code == 1, case
        assert len(err.splitlines()) == 1 and str(path.name) in err and why in err, (case, err)
        assert not (tmp_path / "m").exists() and not (tmp_path / "out.json").exists()
