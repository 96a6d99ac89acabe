"""ONNX export: image encoder, text encoder and head as separate files; the runner reproduces
wordsight's predictions."""
import importlib.util
import json

import numpy as np
import pytest

from wordsight.cli import main
from wordsight.encoders import load_model
from wordsight.estimator.fusion import ConcatFusion
from wordsight.estimator.heads import LogisticHead, head_taking

pytest.importorskip("onnxruntime")


def _runner(folder):
    spec = importlib.util.spec_from_file_location("exported_runner", folder / "runner.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod.Pipeline(folder, threads=2)


@pytest.fixture(scope="module")
def saved_model(fashion_folder, tmp_path_factory):
    from wordsight.estimator import Classifier

    clf = Classifier(head=LogisticHead(C=1.0)).fit(fashion_folder / "train")
    folder = tmp_path_factory.mktemp("model")
    clf.save(folder)
    return clf, folder


def _strips(path, folder) -> list[str]:
    """Non-square versions of an image: 40x150 and 150x40 (tiny by the shorter side: at most 56 px
    for a 224-px encoder), and 150x60 (not tiny)."""
    from PIL import Image

    out = []
    for w, h in ((40, 150), (150, 40), (150, 60)):
        p = folder / f"strip-{w}x{h}.png"
        Image.open(path).convert("RGB").resize((w, h)).save(p)
        out.append(str(p))
    return out


def test_export_cli_and_runner_reproduce_predictions(saved_model, fashion_folder, photo_folder, tmp_path):
    clf, folder = saved_model
    out = tmp_path / "onnx"
    assert main(["export", str(folder), "--format", "onnx", "--out", str(out)]) == 0
    names = {p.name for p in out.iterdir()}
    assert {"image_encoder.onnx", "text_encoder.onnx", "head.onnx", "pipeline.json", "runner.py", "tokenizer"} <= names
    spec = json.loads((out / "pipeline.json").read_text())
    assert spec["classes"] == [str(c) for c in clf.classes_]
    images = sorted(str(p) for p in (fashion_folder / "test").rglob("*.png"))[:12]
    images += sorted(str(p) for p in photo_folder.rglob("*.jpg"))[:3]  # JPEG draft path too
    images += _strips(images[0], tmp_path)  # tiny by their shorter side, not their longer one
    pipe = _runner(out)
    got = pipe.predict_proba(images)
    want = clf.predict_proba(images)
    np.testing.assert_allclose(got, want, atol=2e-4)
    assert pipe.predict(images) == [str(c) for c in clf.predict(images)]


def test_text_encoder_export_equals_sentence_transformers(saved_model, tmp_path):
    _, folder = saved_model
    from wordsight.export import OnnxTextEncoder, export_text_encoder

    texts = ["a photo of a trouser", "ankle boot", "a long description of a bag with a strap and a buckle"]
    export_text_encoder(load_model("minilm"), tmp_path)
    got = OnnxTextEncoder(tmp_path, threads=2).encode(texts)
    want = load_model("minilm").encode(texts)
    np.testing.assert_allclose(got, want, atol=1e-5)
    np.testing.assert_allclose(np.linalg.norm(got, axis=1), 1.0, atol=1e-6)


def test_mlp_head_graph_equals_numpy_head(fashion_folder):
    import onnxruntime as ort

    from wordsight.estimator import Classifier
    from wordsight.export import head_graph

    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(60, 8)).astype(np.float32), np.repeat(["a", "b", "c"], 20)
    for head in ("mlp", "svm"):
        clf = Classifier(head=head_taking(head, C=1.0, hidden=(16,))).fit(X, y)
        sess = ort.InferenceSession(head_graph(clf).SerializeToString(), providers=["CPUExecutionProvider"])
        np.testing.assert_allclose(sess.run(["probabilities"], {"features": X})[0], clf.predict_proba(X), atol=1e-5)


def test_unexportable_models_are_refused_with_the_reason(fashion_folder, tmp_path):
    from wordsight.estimator import Classifier
    from wordsight.export import export_onnx

    rng = np.random.default_rng(0)
    clf = Classifier(head="knn").fit(rng.normal(size=(20, 4)), np.repeat(["a", "b"], 10))
    clf.save(tmp_path / "matrix")
    with pytest.raises(ValueError, match="precomputed feature matrix"):  # after the head traced
        export_onnx(tmp_path / "matrix", tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_a_torch_form_that_does_not_trace_is_refused_with_the_reason():
    import torch

    from wordsight._util.errors import NotSupportedError
    from wordsight.export.torch_graph import to_onnx

    class BranchesOnValues(torch.nn.Module):  # the trace keeps the example's branch
        def forward(self, x):
            return 2 * x if bool((x > 100).any()) else x

    with pytest.raises(NotSupportedError, match=r"^the toy head has no ONNX form: its torch form does not trace "
                                                r"\(on 7 rows the traced graph differs from the torch form by "):
        to_onnx(BranchesOnValues(), ["y"], "the toy head", {"x": torch.full((2, 3), 200.0)})


def test_the_runners_views_are_the_language_layers(tmp_path):
    # the runner is standalone (no wordsight import): its copy of the prior's views must not drift
    from PIL import Image

    from wordsight.export.runner import apply_view
    from wordsight.features import views

    spec = {"near_black": views.NEAR_BLACK, "dark_share": views.DARK_SHARE, "frame": views.FRAME_WIDTH}
    rng = np.random.default_rng(0)
    dark = np.zeros((28, 28, 3), np.uint8)
    dark[6:22, 6:22] = 200  # a light object on black: inverted by light-background
    boundary = dark.copy()
    boundary[:, :14] = 255  # exactly half the frame near-black: counts as a dark background (>=)
    wide = dark.copy()
    wide[:, :16] = 255  # 46% near-black: kept as it is
    images = [dark, boundary, wide, rng.integers(0, 255, (5, 3, 3), dtype=np.uint8),
              rng.integers(0, 255, (40, 60, 3), dtype=np.uint8)]
    for name in ("plain", "light-background", "invert"):
        fn, _ = views.get_view(name)
        for a in images:
            img = Image.fromarray(a)
            want = np.asarray(fn(img) if fn else img)
            np.testing.assert_array_equal(np.asarray(apply_view(img, {"name": name, **spec})), want)
    assert [views.on_dark_background(Image.fromarray(a)) for a in (dark, boundary, wide)] == [True, True, False]
    with pytest.raises(ValueError, match="unknown view 'sepia'"):
        apply_view(Image.fromarray(dark), {"name": "sepia", **spec})


def test_a_prior_without_conse_exports_without_the_logits_input(fashion_folder, tmp_path):
    # the prior graph asks the encoder only for what its ways read (a joint model has no ImageNet logits)
    from wordsight.estimator import Classifier
    from wordsight.export import export_onnx

    clf = Classifier(fusion="prior", head=LogisticHead(C=0.1), small_input=None).fit(fashion_folder / "train")
    clf.prior_.ways_.pop("conse")  # the linear map alone: one way, read from the embedding
    clf.save(tmp_path / "m")
    out = export_onnx(tmp_path / "m", tmp_path / "onnx", text=False)
    import onnx

    assert [i.name for i in onnx.load(str(out / "prior.onnx")).graph.input] == ["embedding"]
    tests = sorted(str(p) for p in (fashion_folder / "test").rglob("*.png"))[:6]
    pipe = _runner(out)
    F = clf.featurize(tests)
    np.testing.assert_allclose(pipe.prior_log_proba(tests), F.prior_logits, atol=1e-5)
    np.testing.assert_allclose(pipe.predict_proba(tests), clf.predict_proba(tests), atol=1e-5)


def test_a_weighted_text_block_exports_with_its_weight(fashion_folder, tmp_path):
    from wordsight.estimator import Classifier
    from wordsight.export import export_onnx

    clf = Classifier(fusion=ConcatFusion(text_weight=0.5), head=LogisticHead(C=0.1)).fit(fashion_folder / "train")
    clf.save(tmp_path / "m")
    pipe = _runner(export_onnx(tmp_path / "m", tmp_path / "onnx", text=False))
    tests = sorted(str(p) for p in (fashion_folder / "test").rglob("*.png"))[:6]
    F = clf.featurize(tests)
    text = F.matrix[:, -clf.concept_bank().dim:]
    np.testing.assert_allclose(np.linalg.norm(text, axis=1), 0.5, atol=1e-6)  # the block's weight
    np.testing.assert_allclose(pipe.features(tests), F.matrix, atol=1e-5)
    np.testing.assert_allclose(pipe.predict_proba(tests), clf.predict_proba(tests), atol=1e-5)


@pytest.mark.parametrize("size, tiny", [((56, 56), True), ((56, 500), True), ((500, 56), True), ((57, 500), False),
                                        ((500, 57), False), ((57, 57), False)])
def test_the_runners_tiny_rule_is_extractions(size, tiny, tmp_path):
    # the standalone runner's copy of the rule: an image is tiny when its shorter side is at most
    # input_size // TINY_FRACTION, as features.engines.batch decides
    import io

    from PIL import Image

    from wordsight.export.runner import choose
    from wordsight.features.engines.batch import TINY_FRACTION

    assert 224 // TINY_FRACTION == 56
    buf = io.BytesIO()
    Image.new("RGB", size).save(buf, "PNG")
    enc = {"preprocessing": "normal", "tiny": {"max_side": 56, "preprocessing": "small"}}
    assert choose(buf.getvalue(), enc) == ("small" if tiny else "normal")
    assert choose(buf.getvalue(), {"preprocessing": "normal", "tiny": None}) == "normal"


def test_export_of_a_model_fitted_on_bf16_features_says_so(fashion_folder, tmp_path, capsys):
    """The export computes fp32 features: a model whose fit recorded bf16 features gets a note that
    its export agrees within the gate's tolerance, not bit for bit; an fp32 model gets none."""
    from wordsight.estimator import Classifier

    clf = Classifier(head=LogisticHead(C=1.0), precision="fp32").fit(fashion_folder / "train")
    clf.save(tmp_path / "fp32")
    clf.state_.precisions = {e: "bf16" for e in clf.encoder_names}  # as a fit on a bf16 CPU records it
    clf.save(tmp_path / "bf16")
    for name, noted in (("fp32", False), ("bf16", True)):
        capsys.readouterr()
        assert main(["export", str(tmp_path / name), "--out", str(tmp_path / f"onnx-{name}"), "--no-text"]) == 0
        err = capsys.readouterr().err
        assert ("note: the model's features were efficientnet-lite0 bf16 at fit" in err) is noted, err
