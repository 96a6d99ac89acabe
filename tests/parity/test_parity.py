"""One computation, many views: every path that reports a probability reports what
``Classifier.predict_proba`` computes.

For every head x fusion (kNN and the others with ``class_weight="balanced"`` on an imbalanced
set): the torch path the explainer runs (``Fusion.fuse_torch``, ``Head.to_torch()``,
``PriorMix.torch``), the head's ONNX graph where the head has one, the CLI's ``predict`` output and
the server's ``/v1/predict`` answer all equal ``predict_proba`` within 1e-5, and the CLI, the
server and ``Classifier.describe`` give the same descriptions. Zero-shot: ``wordsight
zeroshot``, ``POST /v1/zeroshot`` and the ``ZeroShotPipeline`` give the same scores on the same
images, and a ``fusion='prior'`` model's prior is that pipeline centred on its training images.
"""
from __future__ import annotations

import json
import shutil

import httpx
import numpy as np
import pytest
import torch

from wordsight._util.numerics import softmax
from wordsight.cli import main
from wordsight.estimator import FUSIONS, HEADS, Classifier
from wordsight.estimator.fusion import FUSION_CLASSES
from wordsight.estimator.heads import head_taking

# Fusions that read each image's own text (paired, late) need texts: test_parity_paired.py.
IMAGE_FUSIONS = [f for f in FUSIONS if not FUSION_CLASSES[f].paired]

# Sandal 6, Bag 3, Trouser 2 training images: imbalanced, so that class weights matter.
TRAIN = {"Sandal": 6, "Bag": 3, "Trouser": 2}
TEST_PER_CLASS = 2
HEAD_PARAMS = {"mlp": {"epochs": 2, "min_steps": 40, "hidden": (32,)}, "random_forest": {"n_estimators": 8},
               "knn": {"k": 3}}


@pytest.fixture(scope="module")
def parity_data(fashion_folder, tmp_path_factory):
    root = tmp_path_factory.mktemp("parity")
    for split, counts in (("train", TRAIN), ("test", dict.fromkeys(TRAIN, TEST_PER_CLASS))):
        for cls, n in counts.items():
            (root / split / cls).mkdir(parents=True)
            for f in sorted((fashion_folder / split / cls).glob("*.png"))[:n]:
                shutil.copy(f, root / split / cls / f.name)
    tests = sorted(str(p) for p in (root / "test").rglob("*.png"))
    return root / "train", tests


@pytest.fixture(scope="module")
def fitted(parity_data, tmp_path_factory):
    """Every head x fusion, fitted once and saved."""
    train, _ = parity_data
    out = {}
    for head in HEADS:
        for fusion in IMAGE_FUSIONS:
            clf = Classifier(fusion=fusion, head=head_taking(head, C=0.1, class_weight="balanced",
                                                             **HEAD_PARAMS.get(head, {})), small_input=None).fit(train)
            folder = tmp_path_factory.mktemp(f"{head}-{fusion}")
            clf.save(folder)
            out[head, fusion] = (clf, folder)
    return out


CASES = [(h, f) for h in HEADS for f in IMAGE_FUSIONS]


@pytest.mark.parametrize("head,fusion", CASES)
def test_torch_path_of_the_explainer_equals_predict_proba(fitted, parity_data, head, fusion):
    from wordsight.explain._pipeline import PRIOR_KEY, ClassifierSubject

    clf, _ = fitted[head, fusion]
    subject = ClassifierSubject(clf)
    views = np.stack([subject.read(p).image for p in parity_data[1]])
    # the same encoder outputs on both sides: what differs can only be fusion, head and mixing
    want = clf.predict_proba(subject.blocks(views))
    inputs = subject.inputs(views)
    with torch.no_grad():
        got = softmax(clf.state_.logits_torch(subject.fused(inputs), inputs.get(PRIOR_KEY)).numpy())
    np.testing.assert_allclose(got, want, atol=1e-5)
    assert (fusion == "prior") == (PRIOR_KEY in inputs)
    # and the explainer's view is the extraction engine's model input: only the engines differ
    np.testing.assert_allclose(want, clf.predict_proba(parity_data[1]), atol=1e-5)


def test_knn_torch_form_keeps_the_class_weights(fitted):
    clf, _ = fitted["knn", "image"]
    a = clf.head_.arrays
    assert not np.allclose(a["class_weight"], 1.0)  # "balanced" on 6/3/2 images is not uniform
    X = np.random.default_rng(0).normal(size=(5, a["train"].shape[1]))
    with torch.no_grad():
        got = clf.head_.to_torch()(torch.from_numpy(X)).numpy()
    np.testing.assert_allclose(softmax(got), clf.head_.predict_proba(X), atol=1e-9)


@pytest.mark.parametrize("head", HEADS)
def test_head_onnx_graph_equals_predict_proba_or_refuses(fitted, parity_data, head):
    ort = pytest.importorskip("onnxruntime")
    from wordsight._util.errors import NotSupportedError
    from wordsight.export import head_graph

    clf, _ = fitted[head, "image"]
    F = clf.featurize(parity_data[1])
    want = clf.proba_featurized(F)
    try:
        graph = head_graph(clf)
    except NotSupportedError as e:
        assert head in ("knn", "random_forest") and "no ONNX form" in str(e)
        return
    sess = ort.InferenceSession(graph.SerializeToString(), providers=["CPUExecutionProvider"])
    got = sess.run(["probabilities"], {"features": F.matrix.astype(np.float32)})[0]
    np.testing.assert_allclose(got, want, atol=1e-5)


EXPORT_CASES = [(h, "prior") for h in HEADS] + [(h, f) for h in ("logistic", "mlp") for f in ("text", "concat")]


@pytest.mark.parametrize("head,fusion", EXPORT_CASES)
def test_the_exported_model_equals_predict_proba_or_refuses(fitted, parity_data, tmp_path, head, fusion):
    # prior + logistic: the few-shot probe; prior + others: the head's ONNX nodes with PriorMix;
    # text / concat: the ConSE text block from the same reads as the image features
    pytest.importorskip("onnxruntime")
    import importlib.util

    from wordsight._util.errors import NotSupportedError
    from wordsight.export import export_onnx

    clf, folder = fitted[head, fusion]
    tests = parity_data[1]
    try:
        out = export_onnx(folder, tmp_path / "onnx", text=False)
    except NotSupportedError as e:
        assert head in ("knn", "random_forest") and "no ONNX form" in str(e)
        assert not (tmp_path / "onnx").exists()  # refused before anything is written
        return
    spec = json.loads((out / "pipeline.json").read_text())
    assert spec["fusion"] == fusion
    module = importlib.util.spec_from_file_location(f"runner_{head}_{fusion}", out / "runner.py")
    runner = importlib.util.module_from_spec(module)
    module.loader.exec_module(runner)
    pipe = runner.Pipeline(out)
    F = clf.featurize(tests)
    np.testing.assert_allclose(pipe.features(tests), F.matrix, atol=1e-5)
    if fusion == "prior":
        assert (clf.state_.probe is not None) == (head == "logistic")
        assert spec["prior"]["view"]["name"] == clf.prior_.view_ == "light-background"
        np.testing.assert_allclose(pipe.prior_log_proba(tests), F.prior_logits, atol=1e-5)
    else:
        assert spec["text_block"]["after_image_blocks"] == (fusion == "concat")
    np.testing.assert_allclose(pipe.predict_proba(tests), clf.predict_proba(tests), atol=1e-5)
    assert pipe.predict_proba([]).shape == (0, len(clf.classes_))


@pytest.mark.parametrize("head,fusion", CASES)
def test_cli_predict_and_the_server_report_predict_proba(fitted, parity_data, tmp_path, head, fusion):
    from wordsight.serve import BackgroundServer, ServeSettings

    clf, folder = fitted[head, fusion]
    tests = parity_data[1]
    want = clf.predict_proba(tests)
    classes = [str(c) for c in clf.classes_]
    out = tmp_path / "p.json"
    assert main(["predict", str(folder), *tests, "--top-k", str(len(classes)), "--out", str(out), "--quiet"]) == 0
    rows = json.loads(out.read_text())
    got = np.array([[{t["class"]: t["probability"] for t in r["top_k"]}[c] for c in classes] for r in rows])
    assert [r["path"] for r in rows] == tests
    np.testing.assert_allclose(got, want, atol=1e-5)
    words = clf.describe(tests)  # the same words on every path, led by the classes of predict_proba
    assert [r["description"] for r in rows] == words and all(w.startswith("matches: ") for w in words)
    with BackgroundServer(ServeSettings(model_dir=str(folder), warm_up=False)) as server:
        files = [("files", (p.rsplit("/", 1)[1], open(p, "rb").read(), "image/png")) for p in tests]
        r = httpx.post(server.url + "/v1/predict", files=files, data={"top_k": str(len(classes))}, timeout=300)
    assert r.status_code == 200, r.text
    got = np.array([[{t["class"]: t["probability"] for t in res["top_k"]}[c] for c in classes]
                    for res in r.json()["results"]])
    np.testing.assert_allclose(got, want, atol=1e-5)
    assert [res["description"] for res in r.json()["results"]] == words


def test_zero_shot_cli_server_and_pipeline_agree(parity_data, tmp_path):
    from wordsight.serve import BackgroundServer, ServeSettings
    from wordsight.zeroshot.pipeline import ZeroShotPipeline

    tests, classes = parity_data[1], list(TRAIN)
    pipeline = ZeroShotPipeline(classes, center="no").fit(tests)
    assert pipeline.view_ == "light-background" and list(pipeline.ways_) == ["conse", "linear"]
    want = np.exp(pipeline.predict_log_proba(tests)[0])
    out = tmp_path / "z.json"
    assert main(["zeroshot", *tests, "--classes", ",".join(classes), "--center", "no", "--top-k", "3",
                 "--out", str(out), "--quiet"]) == 0
    cli = np.array([[{t["class"]: t["probability"] for t in r["top_k"]}[c] for c in classes]
                    for r in json.loads(out.read_text())])
    np.testing.assert_allclose(cli, want, atol=1e-5)
    with BackgroundServer(ServeSettings(model_dir=None, warm_up=False)) as server:
        files = [("files", (p.rsplit("/", 1)[1], open(p, "rb").read(), "image/png")) for p in tests]
        r = httpx.post(server.url + "/v1/zeroshot", files=files, data={"classes": ",".join(classes), "top_k": "3"},
                       timeout=300)
    assert r.status_code == 200, r.text
    assert r.json()["view"] == "light-background"
    served = np.array([[{t["class"]: t["probability"] for t in res["top_k"]}[c] for c in classes]
                       for res in r.json()["results"]])
    np.testing.assert_allclose(served, want, atol=1e-5)


def test_the_prior_is_the_zero_shot_pipeline_centred_on_the_other_classes_share(fitted, parity_data):
    from wordsight.zeroshot.pipeline import ZeroShotPipeline

    clf, _ = fitted["logistic", "prior"]
    train, tests = parity_data
    pipeline = ZeroShotPipeline([str(c) for c in clf.classes_], center="others").fit(train)
    assert pipeline.centered_ and clf.prior_.centered_ and pipeline.view_ == clf.prior_.view_
    np.testing.assert_allclose(clf.prior_log_proba(clf.extract(tests)), pipeline.predict_log_proba(tests)[0],
                               atol=1e-6)
