"""The Classifier composes task x fusion x head: a task registered in one line fits and predicts
through it; fusions and heads own their parameters (scikit-learn's nested get/set_params, clone,
refusals of unknown options); folders saved with the flat options of the previous version load
and predict as they did."""
from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.metrics import accuracy_score, f1_score, log_loss

from wordsight._util.numerics import softmax
from wordsight.estimator import Classifier, ModelFolderError
from wordsight.estimator.feature_blocks import FeatureBlocks
from wordsight.estimator.fusion import ConcatFusion, LateFusion, PairedFusion, PriorFusion
from wordsight.estimator.heads import KNNHead, LogisticHead, MLPHead, RandomForestHead, SVMHead
from wordsight.estimator.tasks import TASK_CLASSES, SingleLabelTask, Task, make_task
from wordsight.io.sources import Sample

DATA = Path(__file__).parent / "data"


def three_blobs(seed=0, n=12):
    rng = np.random.default_rng(seed)
    y = np.repeat([0, 1, 2], n)
    return rng.normal(size=(3, 6))[y] * 2 + rng.normal(size=(3 * n, 6)), y


class ScoreTask(Task):
    """A toy task: labels are scores, the answer the expected score under the class probabilities."""

    name = "toy-score"
    loss = "cross-entropy"
    record_fields = ("path", "predicted")
    report_sections = ("metrics",)

    def encode(self, labels):
        classes, y = np.unique(np.asarray(labels, np.float64), return_inverse=True)
        return classes, y

    def output(self, log_scores):
        return softmax(log_scores)

    def decide(self, output, classes):
        return output @ classes

    def metrics(self):
        return {"mae": lambda y, p: float(np.abs(p @ np.arange(p.shape[1]) - y).mean())}


def test_a_task_added_in_one_registry_line_fits_and_predicts_through_the_classifier(monkeypatch):
    X, y = three_blobs()
    scores = np.asarray([0.5, 2.0, 4.0])[y]
    monkeypatch.setitem(TASK_CLASSES, ScoreTask.name, ScoreTask)
    clf = Classifier(task="toy-score", head=LogisticHead(C=1.0)).fit(X, scores)
    assert clf.classes_.tolist() == [0.5, 2.0, 4.0] and clf.task_ == ScoreTask()
    P = clf.predict_proba(X[:5])
    plain = Classifier(head=LogisticHead(C=1.0)).fit(X, y)  # the same head on the class indices
    np.testing.assert_allclose(P, plain.predict_proba(X[:5]), atol=1e-12)
    np.testing.assert_allclose(clf.predict(X[:5]), P @ [0.5, 2.0, 4.0], atol=1e-12)
    as_object = Classifier(task=ScoreTask(), head=LogisticHead(C=1.0)).fit(X, scores)
    np.testing.assert_array_equal(as_object.predict(X[:5]), clf.predict(X[:5]))
    with pytest.raises(ValueError, match="unknown task 'toy-rank': choose one of single-label, one-class, multi-label, toy-score"):
        Classifier(task="toy-rank").fit(X, y)


def test_the_single_label_task_encodes_outputs_decides_and_scores_like_scikit_learn():
    task = make_task("single-label")
    assert isinstance(task, SingleLabelTask) and (task.name, task.loss) == ("single-label", "cross-entropy")
    classes, y = task.encode(["cat", "dog", "cat", "ant"])
    assert classes.tolist() == ["ant", "cat", "dog"] and y.tolist() == [1, 2, 1, 0]
    z = np.log([[0.2, 0.5, 0.3], [0.6, 0.1, 0.3], [0.1, 0.1, 0.8], [0.3, 0.3, 0.4]])
    P = task.output(z + 3.0)  # a softmax: shifts of the log-scores do not change it
    np.testing.assert_allclose(P, np.exp(z), atol=1e-12)
    assert task.decide(P, classes).tolist() == ["cat", "ant", "dog", "dog"]
    assert task.decide(np.vstack([P[:1], np.full((1, 3), np.nan)]), classes).tolist() == ["cat", None]
    m = {k: f(y, P) for k, f in task.metrics().items()}
    assert list(m) == ["accuracy", "top5_accuracy", "macro_f1", "log_loss", "ece"]
    assert m["accuracy"] == accuracy_score(y, P.argmax(1)) == 0.25
    assert m["top5_accuracy"] == 1.0  # 3 classes: the target is always among the top 5
    # one image per confidence bin: ECE = mean |correct - confidence| = (0.5 + 0.6 + 0.8 + 0.4) / 4
    assert m["ece"] == pytest.approx(0.575, abs=1e-12)
    assert m["macro_f1"] == pytest.approx(f1_score(y, P.argmax(1), average="macro"))
    assert m["log_loss"] == pytest.approx(log_loss(y, P, labels=[0, 1, 2]))
    with pytest.raises(ValueError, match="at least two classes are needed to fit, got 1 class"):
        task.encode(["cat", "cat"])
    with pytest.raises(ValueError, match="Unknown label type"):
        task.encode([0.5, 1.25, 2.0])


def test_fusions_and_heads_are_estimators_with_explicit_parameters():
    assert LogisticHead().get_params() == {"C": None, "class_weight": None, "random_state": 0, "max_iter": 1000}
    assert SVMHead().get_params() == {"C": None, "class_weight": None, "random_state": 0}
    assert KNNHead().get_params() == {"k": 5, "class_weight": None}
    assert RandomForestHead().get_params() == {"n_estimators": 200, "max_depth": None, "class_weight": None,
                                               "n_jobs": 2, "random_state": 0}
    assert set(MLPHead().get_params()) == {"hidden", "dropout", "weight_decay", "epochs", "min_steps", "lr",
                                           "label_smoothing", "batch", "class_weight", "random_state"}
    assert PriorFusion().get_params() == {"view": "auto", "descriptions": None, "weight": "auto", "method": "auto"}
    assert ConcatFusion().get_params() == {"text_weight": 1.0}
    assert PairedFusion().get_params() == LateFusion().get_params() == {"weight": 1.0}
    with pytest.raises(TypeError, match="unexpected keyword argument 'k'"):
        LogisticHead(k=3)
    with pytest.raises(TypeError, match="unexpected keyword argument 'prior_weight'"):
        PriorFusion(prior_weight=0.5)
    with pytest.raises(TypeError, match="unexpected keyword argument 'C'"):
        Classifier(C=0.1)


def test_nested_parameters_reach_the_fusion_and_the_head():
    clf = Classifier(fusion=PriorFusion(weight=0.5), head=LogisticHead(C=0.1))
    params = clf.get_params()
    assert params["fusion__weight"] == 0.5 and params["head__C"] == 0.1 and params["head__random_state"] == 0
    clf.set_params(fusion__weight="held-out", head__C=2.0)
    assert clf.fusion.weight == "held-out" and clf.head.C == 2.0
    twin = clone(clf)
    assert twin.get_params()["fusion__weight"] == "held-out" and twin.head is not clf.head
    named = Classifier(random_state=4).set_params(head__C=3.0)  # a head given by name is built first
    assert named.head.get_params() == LogisticHead(C=3.0, random_state=4).get_params()
    knn = Classifier(head="knn").set_params(head__k=2)
    assert knn.head.get_params() == {"k": 2, "class_weight": None}
    with pytest.raises(ValueError, match="Invalid parameter 'k' for estimator LogisticHead"):
        Classifier().set_params(head__k=3)


def test_bad_fusion_and_head_values_are_refused_at_fit_with_the_reason():
    X, y = three_blobs()
    with pytest.raises(ValueError, match="'C' parameter of LogisticHead must be"):
        Classifier(head=LogisticHead(C=-1.0)).fit(X, y)
    with pytest.raises(ValueError, match="'weight' parameter of PriorFusion must be"):
        Classifier(fusion=PriorFusion(weight="sometimes")).fit(X, y)
    with pytest.raises(ValueError, match="'text_weight' parameter of ConcatFusion must be"):
        Classifier(fusion=ConcatFusion(text_weight=-0.5)).fit(X, y)


def test_a_head_object_is_copied_not_fitted_and_equals_its_name_with_options():
    X, y = three_blobs(1)
    given = LogisticHead(C=0.5, random_state=2)
    by_object = Classifier(head=given, random_state=2).fit(X, y)
    by_name = Classifier(random_state=2).set_params(head__C=0.5).fit(X, y)
    assert not hasattr(given, "arrays")  # the parameter itself stays unfitted
    np.testing.assert_array_equal(by_object.predict_proba(X), by_name.predict_proba(X))
    assert by_object.head_.info["C"] == 0.5 and by_object.fusion_name == "image" and by_object.head_name == "logistic"


def test_a_refit_after_changing_the_fusion_uses_the_new_fusion():
    X, y = three_blobs(2)
    clf = Classifier(head=KNNHead(k=3)).fit(X, y)
    with pytest.raises(ValueError, match="fusion 'concat' needs images or FeatureBlocks"):
        clf.set_params(fusion="concat").fit(X, y)


# ---------------------------------------------------------------------- folders of the previous version
@pytest.mark.parametrize("name", ["knn", "logistic"])
def test_a_folder_saved_by_the_previous_version_loads_and_predicts_the_same(name):
    """v1-*: written by the previous version (flat C / class_weight / head_params in config.json)."""
    expected = json.loads((DATA / "v1-expected.json").read_text())
    config = json.loads((DATA / f"v1-{name}" / "config.json").read_text())
    assert "head_params" in config["params"] and "fusion_params" not in config  # the old form
    clf = Classifier.load(DATA / f"v1-{name}")
    # equal but for the last bit: another CPU's BLAS and numpy kernels (AVX2 in place of AVX-512) sum
    # in another order (measured 1 ulp, 2.6e-16 relative); anything the loading changes is far larger
    np.testing.assert_allclose(clf.predict_proba(np.asarray(expected["X_test"])), np.asarray(expected[name]),
                               rtol=1e-12, atol=0)
    head = {"knn": KNNHead(k=3, class_weight="balanced"),
            "logistic": LogisticHead(C=(0.1, 1.0), class_weight="balanced", random_state=3)}[name]
    assert clf.head.get_params() == head.get_params() and clf.fusion_name == "image"
    refit = clone(clf).fit(np.asarray(expected["X"]), np.asarray(expected["y"]))  # the same options, refitted
    np.testing.assert_allclose(refit.predict_proba(np.asarray(expected["X_test"])), np.asarray(expected[name]),
                               atol=1e-12)


def _as_previous_version(folder: Path) -> None:
    """Rewrite a saved config.json as the previous version wrote it: the fusion's and head's
    options as flat Classifier parameters, no task, no fusion or head parameters."""
    config = json.loads((folder / "config.json").read_text())
    config.pop("config_sha256")
    fusion, head = config.pop("fusion_params"), config["head"].pop("params")
    config.pop("task")
    params = config["params"]
    params.pop("task")
    params.update(C=head["C"], class_weight=head["class_weight"], head_params=None, text_weight=1.0,
                  paired_text_weight=1.0, prior_weight=fusion["weight"], class_descriptions=fusion["descriptions"],
                  zero_shot_method=fusion["method"], prior_view=fusion["view"])
    blob = json.dumps(config, sort_keys=True, separators=(",", ":")).encode()
    config["config_sha256"] = hashlib.sha256(blob).hexdigest()
    (folder / "config.json").write_text(json.dumps(config))


def test_a_prior_model_in_the_previous_form_keeps_its_prior_options(tmp_path):
    enc = "efficientnet-lite0"
    rng = np.random.default_rng(0)
    y = np.repeat([0, 1, 2], 4)
    emb = (rng.normal(size=(3, 1280))[y] + rng.normal(size=(12, 1280))).astype(np.float32)
    probs = softmax(rng.normal(size=(12, 1000)) * 2).astype(np.float32)
    samples = [Sample(f"img{i}.png", ["Coat", "Bag", "Sandal"][c]) for i, c in enumerate(y)]
    blocks = FeatureBlocks(samples, {enc: emb}, probs, enc, prior_features={(enc, "invert"): (probs, emb)})
    clf = Classifier(fusion=PriorFusion(view="invert", weight=0.4), head=LogisticHead(C=1.0)).fit(blocks)
    clf.save(tmp_path / "new")
    shutil.copytree(tmp_path / "new", tmp_path / "old")
    _as_previous_version(tmp_path / "old")
    old = Classifier.load(tmp_path / "old")
    assert old.fusion.get_params() == {"view": "invert", "descriptions": None, "weight": 0.4, "method": "auto"}
    assert old.head.get_params() == clf.head.get_params() and old.prior_mix_ == clf.prior_mix_
    np.testing.assert_array_equal(old.predict_proba(blocks), clf.predict_proba(blocks))
    config = json.loads((tmp_path / "old" / "config.json").read_text())
    config["params"]["fusion"] = "early"
    config.pop("config_sha256")
    config["config_sha256"] = hashlib.sha256(json.dumps(config, sort_keys=True, separators=(",", ":")).encode()
                                             ).hexdigest()
    (tmp_path / "old" / "config.json").write_text(json.dumps(config))
    with pytest.raises(ModelFolderError, match="parameters do not fit.*unknown fusion 'early'"):
        Classifier.load(tmp_path / "old")
