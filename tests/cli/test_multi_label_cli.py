"""Multi-label tagging through the verbs (issue 24), on Fashion-MNIST mosaics and the real
EfficientNet-Lite0: `fit` infers the task from a `labels` manifest, `predict` writes label sets
with probabilities, `evaluate` prints mAP and F1 and writes the per-label report."""
from __future__ import annotations

import csv
import json

import numpy as np
import pytest
from sklearn.metrics import average_precision_score

import wordsight
from wordsight.cli import main
from wordsight.io.sources import open_source


@pytest.fixture(scope="module")
def tagger(mosaic_manifests, tmp_path_factory):
    folder = tmp_path_factory.mktemp("tagger") / "m"
    assert main(["fit", str(mosaic_manifests[0]), "--out", str(folder), "--quiet"]) == 0
    return folder


def test_fit_infers_multi_label_from_a_labels_manifest(tagger, mosaic_manifests):
    clf = wordsight.load(tagger)
    assert clf.task_.name == "multi-label" and clf.fusion_name == "image" and len(clf.classes_) == 10
    # the measured default: the mil head over the image and its 2x2 tiles
    assert clf.encoder_names == ["efficientnet-lite0", "tilebag:2:efficientnet-lite0"] and clf.head_name == "mil"
    config = json.loads((tagger / "config.json").read_text())
    assert config["task"] == "multi-label" and len(config["task_state"]["thresholds"]) == 10
    test = open_source(mosaic_manifests[1])
    P = clf.predict_proba(test)
    assert P.shape == (40, 10) and np.all((P >= 0) & (P <= 1))
    Y = clf.task_.targets(test.labels, clf.classes_)
    ap = [average_precision_score(Y[:, j], P[:, j]) for j in range(10) if Y[:, j].any()]
    baseline = Y.mean(0)[Y.any(0)].mean()  # each label scored by a constant: AP = its prevalence
    assert np.mean(ap) > baseline + 0.3, (np.mean(ap), baseline)


def test_task_forced_on_a_single_label_manifest(fashion_folder, tmp_path):
    rows = [(str(p), c) for c in ("Bag", "Sandal") for p in sorted((fashion_folder / "train" / c).iterdir())]
    manifest = tmp_path / "pairs.csv"  # beside the test, not inside the shared image folder
    with open(manifest, "w", newline="") as f:
        csv.writer(f).writerows([("path", "label"), *rows])
    assert main(["fit", str(manifest), "--task", "multilabel", "--out", str(tmp_path / "m"), "--quiet"]) == 0
    clf = wordsight.load(tmp_path / "m")
    assert clf.task_.name == "multi-label" and clf.classes_.tolist() == ["Bag", "Sandal"]


def test_predict_rows_carry_the_label_set_with_probabilities(tagger, mosaic_manifests, tmp_path):
    out = tmp_path / "p.csv"
    assert main(["predict", str(tagger), str(mosaic_manifests[1]), "--out", str(out), "--top-k", "10",
                 "--no-describe", "--quiet"]) == 0
    rows = list(csv.DictReader(open(out)))
    clf = wordsight.load(tagger)
    P = clf.predict_proba(mosaic_manifests[1])
    th = clf.task_.thresholds_
    for row, p in zip(rows, P):
        want = [c for c, q, t in zip(clf.classes_, p, th) if q >= t]
        assert row["predicted"] == "|".join(want)
        got = {row[f"top{i}"]: float(row[f"p{i}"]) for i in range(1, 11)}
        np.testing.assert_allclose([got[c] for c in clf.classes_], p, atol=1e-6)
    truth = {r.path: "|".join(r.label) for r in open_source(mosaic_manifests[1]).samples}
    assert all(row["label"] == truth[row["path"]] for row in rows)
    jl = tmp_path / "p.jsonl"
    assert main(["predict", str(tagger), str(mosaic_manifests[1]), "--out", str(jl), "--no-describe", "--quiet"]) == 0
    first = json.loads(jl.read_text().splitlines()[0])
    assert isinstance(first["predicted"], list) and isinstance(first["label"], list)


def test_evaluate_prints_map_and_f1_and_writes_pr_curves(tagger, mosaic_manifests, tmp_path, capsys):
    report = tmp_path / "report"
    assert main(["evaluate", str(tagger), str(mosaic_manifests[1]), "--report", str(report), "--mistakes", "2",
                 "--quiet"]) == 0
    out = capsys.readouterr().out
    m = json.loads((report / "metrics.json").read_text())["metrics"]
    clf = wordsight.load(tagger)
    test = open_source(mosaic_manifests[1])
    P = clf.predict_proba(test)
    Y = clf.task_.targets(test.labels, clf.classes_)
    ap = {c: average_precision_score(Y[:, j], P[:, j]) for j, c in enumerate(clf.classes_) if Y[:, j].any()}
    assert m["mAP"] == pytest.approx(np.mean(list(ap.values())), abs=1e-9)
    assert all(m["per_label"][c]["ap"] == pytest.approx(v, abs=1e-9) for c, v in ap.items())
    assert f"{m['mAP']:.2%}" in out and "micro-F1" in out and "baseline mAP" in out
    html = (report / "index.html").read_text()
    assert "Per label" in html and (report / "pr_curves.png").stat().st_size > 1000
    assert "tag <b>" in html  # the largest misses name the tag


def test_describe_lists_the_tags_found(tagger, mosaic_manifests, capsys):
    paths = open_source(mosaic_manifests[1]).paths[:6]
    assert main(["describe", *paths, "--model", str(tagger), "--quiet"]) == 0
    lines = [line.split("\t") for line in capsys.readouterr().out.strip().splitlines()]
    clf = wordsight.load(tagger)
    P, sets = clf.predict_proba(paths), clf.predict(paths)
    for (path, text), p, found in zip(lines, P, sets):
        index = {c: j for j, c in enumerate(clf.classes_)}
        lead = "tags: " + ("; ".join(f"{t} ({p[index[t]]:.2f})" for t in found) if found else "none")
        assert text.startswith(lead), (text, lead)


def test_zeroshot_tags_per_tile_are_the_best_of_the_image_and_its_tiles(mosaic_manifests, tmp_path):
    """Each tag's log-odds: the larger of the whole image's and its best 2x2 tile's; the tiles cut
    here with PIL and read as images (the light-background view inverts these dark mosaics)."""
    from PIL import Image, ImageOps

    from wordsight.io.datasets import FASHION_MNIST_CLASSES
    from wordsight.zeroshot.tags import tag_log_odds, tag_pipeline, tag_probabilities

    samples = open_source(mosaic_manifests[1]).samples[:6]
    pipe = tag_pipeline(sorted(FASHION_MNIST_CLASSES), quiet=True).fit(mosaic_manifests[1])
    assert pipe.view_ == "light-background"
    whole = tag_log_odds(pipe, pipe.reading(pipe.read([s.path for s in samples])))
    tiles = []
    for i, s in enumerate(samples):
        img = ImageOps.invert(Image.open(s.path).convert("RGB"))
        w, h = img.size
        for r in range(2):
            for c in range(2):
                path = tmp_path / f"{i}-{r}{c}.png"
                img.crop((c * w // 2, r * h // 2, (c + 1) * w // 2, (r + 1) * h // 2)).save(path)
                tiles.append(str(path))
    z = tag_log_odds(pipe, pipe.reading(pipe.read(tiles, view="plain"))).reshape(len(samples), 4, -1).max(1)
    P, _ = tag_probabilities(pipe, [s.path for s in samples], tiles=2)
    np.testing.assert_allclose(P, 1 / (1 + np.exp(-np.maximum(whole, z))), atol=1e-6)
    assert (z > whole).any() and (z < whole).any()  # both sides count
    P0, _ = tag_probabilities(pipe, [s.path for s in samples], tiles=0)
    np.testing.assert_allclose(P0, 1 / (1 + np.exp(-whole)), atol=1e-6)


def test_zeroshot_multilabel_scores_each_tag_against_none(mosaic_manifests, tmp_path, capsys):
    from wordsight.io.datasets import FASHION_MNIST_CLASSES
    from wordsight.zeroshot.tags import tag_pipeline, tag_probabilities

    classes = sorted(FASHION_MNIST_CLASSES)
    out = tmp_path / "z.jsonl"
    assert main(["zeroshot", str(mosaic_manifests[1]), "--classes", json.dumps(classes), "--multilabel",
                 "--out", str(out), "--quiet"]) == 0
    err = capsys.readouterr().err
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    pipe = tag_pipeline(classes, quiet=True).fit(mosaic_manifests[1])
    P, _ = tag_probabilities(pipe, mosaic_manifests[1], tiles=2)  # the default: 2x2 tiles beside the image
    got = np.array([[{t["class"]: t["probability"] for t in r["top_k"]}.get(c, np.nan) for c in classes] for r in rows])
    top = ~np.isnan(got)
    np.testing.assert_allclose(got[top], P[top], atol=1e-6)
    assert all(r["predicted"] == ([c for c, p in zip(classes, q) if p >= 0.5] or ["none"]) for r, q in zip(rows, P))
    Y = np.array([[c in r["label"] for c in classes] for r in rows], int)
    ap = np.mean([average_precision_score(Y[:, j], P[:, j]) for j in range(10) if Y[:, j].any()])
    assert f"mAP {ap:.2%}" in err and "label-frequency baseline" in err
    assert main(["zeroshot", str(mosaic_manifests[1]), "--classes", "car,nothing", "--multilabel", "--quiet"]) == 1
    assert "'nothing' is the 'none' option of --multilabel: rename that tag" in capsys.readouterr().err
