"""`wordsight describe` and `wordsight zeroshot` end to end, on real files."""
from __future__ import annotations

import csv
import json

import numpy as np
import pytest

from wordsight.cli import main
from wordsight.io.datasets import FASHION_MNIST_CLASSES

CLASSES = ",".join(FASHION_MNIST_CLASSES)


@pytest.fixture(scope="module")
def fashion_test(fashion_folder):
    return fashion_folder / "test"  # 4 PNGs per class


def test_describe_prints_and_writes(fashion_test, tmp_path, capsys):
    out = tmp_path / "d.csv"
    assert main(["describe", str(fashion_test), "--top", "2", "--quiet", "--out", str(out)]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 40
    path, text = lines[0].split("\t")
    assert path.endswith(".png")
    # the top-2 concepts at or above efficientnet-lite0's measured threshold (0.43), else "none fits"
    from wordsight.features import extract_features
    from wordsight.text.concepts import imagenet_concepts

    names, _ = imagenet_concepts()
    fs = extract_features(fashion_test, "efficientnet-lite0", quiet=True)
    printed = dict(line.split("\t") for line in lines)
    for s, q in zip(fs.samples, fs.probabilities):
        listed = [f"{names[j]} ({q[j]:.2f})" for j in np.argsort(-q)[:2] if q[j] >= 0.43]
        got = printed[s.path]
        assert ([part.split(",")[0] for part in got.removeprefix("resembles: ").split("; ")] == listed if listed
                else got == "no ImageNet concept fits well"), (got, listed)
    assert sum("resembles: " in t for t in printed.values()) >= 5 and "no ImageNet concept fits well" in printed.values()
    rows = list(csv.DictReader(out.open()))
    assert len(rows) == 40 and set(rows[0]) == {"path", "label", "predicted", "probability", "description", "error"}
    assert {r["label"] for r in rows} == {c.replace("/", "-") for c in FASHION_MNIST_CLASSES}


def test_zeroshot_with_class_names(fashion_test, tmp_path, capsys):
    out = tmp_path / "z.json"
    rc = main(["zeroshot", str(fashion_test), "--classes", CLASSES, "--method", "names", "--llm", "none",
               "--view", "light-background", "--top-k", "3", "--quiet", "--out", str(out)])
    assert rc == 0
    captured = capsys.readouterr()
    assert "accuracy on 40 labelled image(s)" in captured.err  # the folder "T-shirt-top" is "T-shirt/top"
    rows = json.loads(out.read_text())
    assert len(rows) == 40
    for r in rows:
        assert r["predicted"] in FASHION_MNIST_CLASSES and r["predicted"] == r["top_k"][0]["class"]
        scores = [t["probability"] for t in r["top_k"]]
        assert len(scores) == 3 and scores == sorted(scores, reverse=True) and 0 < sum(scores) <= 1.0001
    printed = captured.out.strip().splitlines()
    assert len(printed) == 40 and printed[0].split("\t")[1] == rows[0]["predicted"]
    # the same images plain (not inverted) are other features, predicted differently somewhere
    rc = main(["zeroshot", str(fashion_test), "--classes", CLASSES, "--method", "names", "--llm", "none",
               "--view", "plain", "--quiet", "--out", str(tmp_path / "plain.json")])
    plain = json.loads((tmp_path / "plain.json").read_text())
    assert rc == 0 and [r["top_k"] for r in plain] != [r["top_k"] for r in rows]
    # the automatic view of these light-on-black garments is light-background: the same numbers
    rc = main(["zeroshot", str(fashion_test), "--classes", CLASSES, "--quiet", "--out", str(tmp_path / "auto.json")])
    assert rc == 0 and json.loads((tmp_path / "auto.json").read_text()) == rows
    # centring on these 40 images (auto centres from 50 on) and the ConSE way are other numbers
    # (and "others", the few-shot prior's (C - 1) / C of the mean: other numbers than the whole mean's)
    seen = {}
    for extra, name in ((["--center", "yes"], "centred.json"), (["--ways", "conse"], "conse.json"),
                        (["--center", "others"], "others.json")):
        assert main(["zeroshot", str(fashion_test), "--classes", CLASSES, "--method", "names", "--llm", "none",
                     "--view", "light-background", "--quiet", "--out", str(tmp_path / name)] + extra) == 0
        other = json.loads((tmp_path / name).read_text())
        assert len(other) == 40 and [r["top_k"] for r in other] != [r["top_k"] for r in rows]
        seen[name] = [r["top_k"] for r in other]
    assert seen["others.json"] != seen["centred.json"]


def test_zeroshot_reports_missing_descriptions(fashion_test, tmp_path, capsys):
    desc = tmp_path / "desc.json"
    desc.write_text(json.dumps({"Sandal": ["an open shoe"], "Bag": ["a handbag"]}))
    rc = main(["zeroshot", str(fashion_test), "--classes", "Sandal,Bag,Coat", "--descriptions", str(desc),
               "--llm", "none", "--quiet"])
    assert rc == 1
    assert "desc.json: no descriptions for Coat" in capsys.readouterr().err


def test_zeroshot_with_an_openai_endpoint(fashion_test, tmp_path, chat_server, capsys):
    chat_server.reply = lambda body: "It is a garment or accessory named in: " + body["messages"][-1]["content"]
    saved, out = tmp_path / "written.json", tmp_path / "z.csv"
    rc = main(["zeroshot", str(fashion_test), "--classes", "Sandal,Bag,Coat", "--llm", "openai",
               "--llm-url", chat_server.url, "--llm-model", "tiny", "--k", "2", "--method", "descriptors",
               "--save-descriptions", str(saved), "--out", str(out), "--quiet"])
    assert rc == 0
    written = json.loads(saved.read_text())
    assert list(written) == ["Sandal", "Bag", "Coat"] and all(len(v) == 2 for v in written.values())
    assert {b["model"] for b in chat_server.requests} == {"tiny"}
    rows = list(csv.DictReader(out.open()))
    assert len(rows) == 40 and {"path", "label", "predicted", "top1", "p1", "top3", "p3"} <= set(rows[0])


def test_zeroshot_and_describe_with_joint_and_caption_models(fashion_test, tiny_clip_dir, tiny_caption_dir, capsys):
    rc = main(["zeroshot", str(fashion_test / "Sandal"), "--classes", "cat,dog", "--model", f"clip:{tiny_clip_dir}",
               "--method", "templates", "--quiet"])
    assert rc == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 4 and all(line.split("\t")[1] in ("cat", "dog") for line in lines)
    assert main(["describe", str(fashion_test / "Bag"), "--model", f"caption:{tiny_caption_dir}", "--quiet"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 4 and all("\t" in line for line in lines)


def test_zeroshot_needs_classes(fashion_test, capsys):
    assert main(["zeroshot", str(fashion_test), "--classes", "one", "--llm", "none"]) == 1
    assert "at least two classes" in capsys.readouterr().err
