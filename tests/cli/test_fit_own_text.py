"""Plain ``wordsight fit`` on a manifest with a ``text`` column uses the texts (issue 26): the
fusion chosen on held-out folds of the training images, said in the summary; a model fitted so
is right with the right texts and wrong with texts swapped between the classes. Texts that cover
one class are not used, with the reason; classes without texts are named."""
from __future__ import annotations

import csv

import numpy as np
import pytest
from PIL import Image

from wordsight import load
from wordsight.cli import main
from wordsight.estimator import Classifier
from wordsight.io.sources import Sample
from wordsight.training.own_text import choose_text_fusion, text_coverage

TEXTS = {"north": ["snow on the mountain pass", "a frozen lake under snow", "ice and snow on the peaks"],
         "south": ["a hot sandy beach in summer", "palm trees on the sunny beach", "warm sand and sea"]}


def noise_images(root, split, n, seed, texts=TEXTS):
    """Rows of grey noise images, the same distribution for every class: only the text tells."""
    rng = np.random.default_rng(seed)
    rows = []
    for label, options in texts.items():
        for i in range(n):
            path = root / f"{split}-{label}-{i}.png"
            Image.fromarray(rng.integers(0, 256, (32, 32), dtype=np.uint8)).convert("RGB").save(path)
            rows.append({"path": str(path), "label": label, "text": options[i % len(options)] if options else ""})
    return rows


def write_manifest(path, rows):
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, ["path", "label", "text"])
        w.writeheader()
        w.writerows(rows)
    return path


def accuracy(model, rows, tmp_path, name):
    preds = model.predict(write_manifest(tmp_path / name, rows))
    return float(np.mean(np.asarray(preds, dtype=object) == np.array([r["label"] for r in rows], dtype=object)))


def test_plain_fit_uses_the_texts_and_says_so(tmp_path, capsys):
    train = write_manifest(tmp_path / "train.csv", noise_images(tmp_path, "train", 6, 0))
    assert main(["fit", str(train), "--out", str(tmp_path / "model")]) == 0
    err = capsys.readouterr().err
    line = next(x for x in err.splitlines() if "texts used" in x)
    assert "12 of 12 training images have a text" in line and "held-out accuracy on 5 folds" in line, err
    assert ": prior " in line  # below 16 images per class the fusion without texts is the prior learner
    model = load(tmp_path / "model")
    assert model.fusion_name in ("paired", "late") and model.fusion_name in line
    test = noise_images(tmp_path, "test", 3, 1)
    swapped = [dict(r, text=TEXTS["south" if r["label"] == "north" else "north"][i % 3]) for i, r in enumerate(test)]
    right, wrong = accuracy(model, test, tmp_path, "t.csv"), accuracy(model, swapped, tmp_path, "s.csv")
    assert right == 1.0 and wrong == 0.0, (right, wrong)


@pytest.fixture(scope="module")
def three_classes(tmp_path_factory):
    root = tmp_path_factory.mktemp("own-text")
    texts = {**TEXTS, "west": []}  # the third class has no texts
    rows = noise_images(root, "train", 4, 2, texts)
    samples = [Sample(r["path"], r["label"], r["text"] or None) for r in rows]
    return Classifier(fusion="image").extract(samples)


def test_classes_without_texts_are_named(three_classes):
    assert text_coverage(three_classes.samples) == (["north", "south"], ["west"], 8)
    name, line = choose_text_fusion(lambda n: Classifier(fusion=n), three_classes, "image")
    assert "8 of 12 training images have a text" in line
    assert "classes without one: west" in line and "held-out accuracy on 4 folds" in line
    assert name in ("paired", "late") and line.startswith(f"texts used (fusion {name})")


def test_texts_of_one_class_are_not_used_and_the_line_says_why(three_classes):
    keep = [i for i, s in enumerate(three_classes.samples) if s.label != "south"]
    name, line = choose_text_fusion(lambda n: Classifier(fusion=n), three_classes.take(keep), "prior")
    assert name == "prior"
    assert line == "texts not used: 4 of 8 training images have a text, covering 1 class(es) (north); " \
                   "a text head needs two or more"


def test_blank_texts_are_no_texts():
    samples = [Sample("a.png", "north", "   "), Sample("b.png", "south", "\n"), Sample("c.png", None, "snow")]
    assert text_coverage(samples) == ([], ["north", "south"], 0)  # unlabelled images are not counted
