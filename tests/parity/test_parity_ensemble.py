"""Ensembles (``fit --search``): ``predict_proba`` == CLI ``predict`` == server ``/v1/predict``
within 1e-5, for soft voting and stacking over members with different encoders and heads."""
from __future__ import annotations

import json
import shutil

import httpx
import numpy as np
import pytest

import wordsight
from wordsight.cli import main
from wordsight.estimator import Classifier
from wordsight.estimator.ensemble import Ensemble, fit_meta
from wordsight.estimator.heads import KNNHead, LogisticHead

TRAIN = {"Sandal": 4, "Bag": 3, "Trouser": 3}


@pytest.fixture(scope="module")
def data(fashion_folder, tmp_path_factory):
    root = tmp_path_factory.mktemp("ens-parity")
    for split, counts in (("train", TRAIN), ("test", dict.fromkeys(TRAIN, 2))):
        for cls, n in counts.items():
            (root / split / cls).mkdir(parents=True)
            for f in sorted((fashion_folder / split / cls).glob("*.png"))[:n]:
                shutil.copy(f, root / split / cls / f.name)
    return root / "train", sorted(str(p) for p in (root / "test").rglob("*.png"))


@pytest.fixture(scope="module")
def ensembles(data, tmp_path_factory):
    train, _ = data
    members = [Classifier(encoders=("efficientnet-lite0",), head=LogisticHead(C=0.1), small_input=None).fit(train),
               Classifier(encoders=("mobilenetv2", "efficientnet-lite0"), head=KNNHead(k=3), small_input=None).fit(train)]
    y = np.asarray([list(members[0].class_names).index(v) for v in members[0].extract(train).labels])
    meta = fit_meta([m.predict_proba(train) for m in members], y, 3)
    out = {}
    for kind, ens in (("vote", Ensemble(members, "vote", weights=[0.7, 0.3])), ("stack", Ensemble(members, "stack", meta=meta))):
        folder = tmp_path_factory.mktemp(kind)
        ens.save(folder)
        out[kind] = (ens, folder)
    return out


@pytest.mark.parametrize("kind", ["vote", "stack"])
def test_cli_predict_and_the_server_report_the_ensembles_predict_proba(ensembles, data, tmp_path, kind):
    from wordsight.serve import BackgroundServer, ServeSettings

    ens, folder = ensembles[kind]
    tests = data[1]
    want = ens.predict_proba(tests)
    np.testing.assert_allclose(wordsight.load(folder).predict_proba(tests), want, atol=1e-12)
    classes = [str(c) for c in ens.classes_]
    out = tmp_path / "p.json"
    assert main(["predict", str(folder), *tests, "--top-k", "3", "--out", str(out), "--quiet"]) == 0
    rows = json.loads(out.read_text())
    got = np.array([[{t["class"]: t["probability"] for t in r["top_k"]}[c] for c in classes] for r in rows])
    assert [r["path"] for r in rows] == tests
    np.testing.assert_allclose(got, want, atol=1e-5)
    with BackgroundServer(ServeSettings(model_dir=str(folder), warm_up=False)) as server:
        files = [("files", (p.rsplit("/", 1)[1], open(p, "rb").read(), "image/png")) for p in tests]
        r = httpx.post(server.url + "/v1/predict", files=files, data={"top_k": "3"}, timeout=300)
        info = httpx.get(server.url + "/v1/model", timeout=60).json()
    assert r.status_code == 200, r.text
    got = np.array([[{t["class"]: t["probability"] for t in res["top_k"]}[c] for c in classes]
                    for res in r.json()["results"]])
    np.testing.assert_allclose(got, want, atol=1e-5)
    assert info["model"]["head"] == kind and info["model"]["fusion"] == "ensemble"


@pytest.mark.parametrize("kind", ["vote", "stack"])
def test_lime_and_the_words_explain_the_ensemble_and_gradcam_goes_per_member(ensembles, data, kind):
    from PIL import Image

    from wordsight.estimator.ensemble import combine
    from wordsight.explain import explain
    from wordsight.explain._pipeline import as_subject

    ens, folder = ensembles[kind]
    path = data[1][0]
    subject = as_subject(str(folder))
    views = np.stack([subject.read(p).image for p in data[1]])
    got = subject.proba_views(views)
    # the members' own prediction code, combined as the ensemble combines them
    want = combine(kind, [s.model.predict_proba(s.blocks(views)) for s in subject.members], ens.weights, ens.meta)
    np.testing.assert_allclose(got, want, atol=1e-12)
    [e] = explain(str(folder), path, method="lime", lime_samples=20)
    ev = e.evidence
    assert ev["predicted"] == str(ens.predict([path])[0]) and ev["parts"]["ensemble"] == kind
    assert ev["probability"] == pytest.approx(ens.predict_proba([path])[0].max(), abs=1e-12)  # predict_proba's own
    assert [m["weight"] for m in ev["parts"]["members"]] == pytest.approx(list(ens.weights))
    assert ev["concepts"] and e.heatmap.shape == Image.open(path).size[::-1]
    with pytest.raises(ValueError, match="Grad-CAM is defined per member"):
        explain(str(folder), path, method="gradcam")
    [m] = explain(str(folder / "members" / "0"), path, method="gradcam")  # a member is a saved Classifier
    assert m.heatmap.max() > 0


def test_an_ensemble_exports_to_onnx_where_every_member_does(ensembles, data, tmp_path):
    import importlib.util
    import sys

    from wordsight.export import export_onnx

    ens, folder = ensembles["stack"]
    train, tests = data
    refused = Ensemble([ens.members[0], Classifier(encoders=("efficientnet-lite0",), head=LogisticHead(C=0.1), tta=2).fit(train)],
                       "vote", weights=[0.5, 0.5])
    refused.save(tmp_path / "refused")
    with pytest.raises(ValueError, match=r"member members/1 .* cannot be exported.*test-time augmentation"):
        export_onnx(tmp_path / "refused", tmp_path / "refused-onnx", text=False)
    # the exported runner reads tiny images as small_input="auto" does (the default), so members fit that way
    members = [Classifier(encoders=(e,), head=LogisticHead(C=0.1)).fit(train) for e in ("efficientnet-lite0", "mobilenetv2")]
    for kind, exportable in (("vote", Ensemble(members, "vote", weights=[0.4, 0.6])),
                             ("stack", Ensemble(members, "stack", meta=ens.meta)), ("knn-stack", ens)):
        exportable.save(tmp_path / kind)  # knn-stack: a kNN member over two encoders (its torch form traces)
        out = export_onnx(tmp_path / kind, tmp_path / f"{kind}-onnx", text=False)
        spec = importlib.util.spec_from_file_location(f"ens_runner_{kind}", out / "ensemble_runner.py")
        mod = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(mod)
        sys.modules.pop("runner", None)
        got = mod.EnsemblePipeline(out).predict_proba(tests)
        np.testing.assert_allclose(got, exportable.predict_proba(tests), atol=2e-4)
