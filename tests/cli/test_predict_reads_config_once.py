"""``wordsight predict`` reads the model folder's config.json once before loading: the declared
format picks the detector or the classifier, and the load verifies it (review finding of issue 25)."""
from __future__ import annotations

import json

from wordsight.cli import main


def test_predict_reads_the_declared_format_once(stripes, tmp_path, capsys, monkeypatch):
    from wordsight.storage import read

    folder = tmp_path / "model"
    assert main(["fit", str(stripes), "--encoders", "pixels-32", "--fusion", "image", "--out", str(folder), "--quiet"]) == 0
    reads = []
    real = read.parse_json

    def counted(path, data=None):
        if path.name == "config.json":
            reads.append("bytes" if data is not None else "file")
        return real(path, data)

    monkeypatch.setattr(read, "parse_json", counted)
    out = tmp_path / "p.jsonl"
    assert main(["predict", str(folder), str(stripes / "vertical" / "0.png"), "--out", str(out), "--quiet"]) == 0
    assert json.loads(out.read_text().splitlines()[0])["predicted"] == "vertical"
    # one bounded read of the declared format, one verified read by the load
    assert reads.count("file") + reads.count("bytes") == 2, reads
