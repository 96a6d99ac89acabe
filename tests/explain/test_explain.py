"""Explanations on real models and real photos: where the maps point, what the words say, and
whether deleting what a map calls salient hurts the prediction more than deleting at random.

The key image is a 2x2 grid of scikit-image photos (cat | coffee / rocket | astronaut): a map for
a class should sit on that class's quadrant, and nowhere else.
"""
import dataclasses
import json

import numpy as np
import pytest
import torch
from PIL import Image

from wordsight.estimator.fusion import PriorFusion
from wordsight.estimator.heads import LogisticHead, RandomForestHead
from wordsight.explain import deletion_check, evidence_prompt, explain, gradcam_overlay
from wordsight.explain._pipeline import as_subject
from wordsight.text.llm import LLMBackend

from ..conftest import skip_where_openvino_layer_norm_is_capped

QUADRANTS = ("cat", "coffee", "rocket", "astronaut")  # top-left, top-right, bottom-left, bottom-right


def quadrant_shares(heatmap: np.ndarray) -> np.ndarray:
    m = np.clip(heatmap, 0, None)
    h, w = m.shape
    q = np.array([m[:h // 2, :w // 2].sum(), m[:h // 2, w // 2:].sum(), m[h // 2:, :w // 2].sum(), m[h // 2:, w // 2:].sum()])
    return q / q.sum()


@pytest.fixture(scope="module")
def grid_path(tmp_path_factory):
    from skimage import data

    s = 224
    canvas = Image.new("RGB", (2 * s, 2 * s))
    for i, name in enumerate(("chelsea", "coffee", "rocket", "astronaut")):
        im = Image.fromarray(getattr(data, name)())
        w, h = im.size
        m = min(w, h)
        im = im.crop(((w - m) // 2, (h - m) // 2, (w - m) // 2 + m, (h - m) // 2 + m)).resize((s, s))
        canvas.paste(im, ((i % 2) * s, (i // 2) * s))
    p = tmp_path_factory.mktemp("grid") / "grid.png"
    canvas.save(p)
    return p


@pytest.fixture(scope="module")
def concat_model(photo_folder):
    """Image + text (ConSE) fusion, logistic head, on the four photos and their mirror images."""
    from wordsight.estimator import Classifier

    return Classifier(fusion="concat", head=LogisticHead(C=1.0)).fit(photo_folder)


@pytest.fixture(scope="module")
def saved_model(concat_model, tmp_path_factory):
    return concat_model.save(tmp_path_factory.mktemp("model") / "concat")


def test_torch_path_reproduces_the_classifier(concat_model, grid_path, photo_folder):
    s = as_subject(concat_model)
    paths = [grid_path, photo_folder / "cat" / "0.jpg"]
    views = np.stack([s.read(p).image for p in paths])
    with torch.no_grad():
        p_torch = torch.softmax(s.scores(s.inputs(views)), 1).numpy()
    p_model = concat_model.predict_proba([str(p) for p in paths])
    np.testing.assert_allclose(p_torch, p_model, atol=1e-6)
    np.testing.assert_allclose(s.proba_views(views), p_model, atol=1e-6)


def test_gradcam_of_the_imagenet_head_finds_the_cat(grid_path):
    cat, coffee = explain("efficientnet-lite0", [grid_path, grid_path], target="tabby cat")[0], \
        explain("efficientnet-lite0", grid_path, target="espresso")[0]
    assert cat.heatmap.shape == (448, 448) and cat.overlay.size == (448, 448)
    assert 0 <= cat.heatmap.min() and cat.heatmap.max() == pytest.approx(1.0, abs=0.01)
    q = quadrant_shares(cat.heatmap)
    assert q[0] > 0.6 and q[0] > 4 * q[1:].max(), q  # measured 0.82 vs <= 0.10
    q = quadrant_shares(coffee.heatmap)
    assert q.argmax() == 1 and q[1] > 0.5, q  # measured 0.71


def test_gradcam_through_the_whole_classifier(concat_model, grid_path):
    """Class maps of the trained wordsight model (encoder -> concat fusion -> logistic head)."""
    shares = {}
    for name in ("cat", "coffee", "astronaut", "rocket"):
        e = explain(concat_model, grid_path, target=name)[0]
        assert e.target == name and e.evidence["target"] == name
        shares[name] = quadrant_shares(e.heatmap)
    assert shares["cat"][0] > 0.6, shares["cat"]  # measured 0.77
    assert shares["coffee"].argmax() == 1, shares["coffee"]
    assert shares["astronaut"].argmax() == 3, shares["astronaut"]
    # The predicted class's map points at a quadrant that really carries its evidence: hiding it
    # takes away at least half as much of the class score as hiding the most important quadrant.
    # (Fitted on 8 photos, the model has called the grid "rocket" because of the cat in some
    # versions of the classifier code: the map said so, and hiding the cat confirmed it.)
    top = explain(concat_model, grid_path)[0]
    q_map = int(quadrant_shares(top.heatmap).argmax())
    s = as_subject(concat_model)
    view = s.read(grid_path).image
    batch = [view]
    for q in range(4):
        im = view.copy()
        y, x = (q // 2) * 112, (q % 2) * 112
        im[y:y + 112, x:x + 112] = s.fill_colour()
        batch.append(im)
    with torch.no_grad():
        z = s.scores(s.inputs(np.stack(batch))).numpy()[:, s.class_index(top.target)]
    loss = z[0] - z[1:]
    assert loss[q_map] > 0.5 * loss.max() and loss[q_map] > 0, (top.target, q_map, z)


def test_gradcam_plus_plus(concat_model, grid_path):
    for name, quadrant in (("cat", 0), ("coffee", 1)):
        e = explain(concat_model, grid_path, method="gradcam++", target=name)[0]
        q = quadrant_shares(e.heatmap)
        assert q.argmax() == quadrant, (name, q)


def test_maps_are_drawn_at_the_original_size(concat_model, photo_folder):
    path = photo_folder / "cat" / "0.jpg"  # 451 x 300: the model sees a centre crop
    e = explain(concat_model, path)[0]
    assert e.heatmap.shape == (300, 451) and e.overlay.size == (451, 300)
    left, top, right, bottom = e.evidence["view_box"]
    assert (left, top, right, bottom) == pytest.approx((94, 19, 356, 281), abs=1)
    assert e.heatmap[:, :90].max() == 0 and e.heatmap[:, 360:].max() == 0  # never seen, never salient
    inside = np.asarray(e.overlay)[150, 225].astype(int)
    outside, original = np.asarray(e.overlay)[150, 20].astype(int), np.asarray(Image.open(path))[150, 20].astype(int)
    assert np.all(outside <= 0.4 * original + 1)  # the unseen part is dimmed
    assert inside.sum() > 0


def test_words_behind_a_prediction(concat_model, photo_folder):
    e = explain(concat_model, photo_folder / "cat" / "0.jpg")[0]
    ev = e.evidence
    assert ev["predicted"] == "cat" and ev["probability"] > 0.9
    names = " ".join(c["name"].lower() for c in ev["concepts"][:3])
    assert any(w in names for w in ("cat", "mau", "tabby", "lynx")), ev["concepts"]
    assert all(0 <= c["probability"] <= 1 and "contribution" in c for c in ev["concepts"])
    assert ev["descriptors"][0]["text"] == "cat" and -1 <= ev["descriptors"][0]["score"] <= 1
    parts = ev["parts"]
    assert parts["image"]["share"] + parts["text"]["share"] == pytest.approx(1.0)
    # Linear head: the parts add up exactly to the margin's change from the training mean.
    s = as_subject(concat_model)
    x = concat_model.featurize([str(photo_folder / "cat" / "0.jpg")]).matrix[0].astype(np.float64)
    mean = concat_model.head_.arrays["mean"]
    W, b = concat_model.linear_head()
    c = s.class_index("cat")

    def margin(v):
        z = W @ v + b
        return z[c] - z.mean()

    total = parts["image"]["contribution"] + parts["text"]["contribution"]
    assert total == pytest.approx(margin(x) - margin(mean), rel=1e-6)
    json.dumps(e.to_json())  # JSON-able


class RecordingLLM(LLMBackend):
    name = "recording"

    def __init__(self):
        self.prompts = []

    def generate(self, prompts, max_new_tokens=60, temperature=0.7, seed=0, system=None):
        self.prompts += prompts
        return ["  The photo shows a striped cat face,\n so it is a cat. "]


def test_sentence_is_written_from_the_evidence_only(concat_model, photo_folder):
    path = photo_folder / "cat" / "0.jpg"
    assert explain(concat_model, path)[0].evidence["sentence"] is None  # off by default
    llm = RecordingLLM()
    e = explain(concat_model, path, sentence=True, llm=llm)[0]
    assert e.evidence["sentence"] == {"text": "The photo shows a striped cat face, so it is a cat.", "llm": "recording"}
    prompt = llm.prompts[0]
    assert prompt == evidence_prompt(e.evidence)
    assert '"cat"' in prompt and "% from the image" in prompt
    # a concept is a fact for the LLM only above the encoder's measured threshold (lite0: 0.43)
    first = e.evidence["concepts"][0]
    assert first["listed"] == (first["probability"] >= 0.43)
    assert (f"{first['name']} ({first['probability']:.2f})" in prompt) == first["listed"]
    assert ("No ImageNet concept fits the photo well." in prompt) == (not first["listed"])


@pytest.fixture(scope="module")
def forest_model(photo_folder):
    from wordsight.estimator import Classifier

    return Classifier(head=RandomForestHead(n_estimators=20)).fit(photo_folder)


def test_lime_explains_any_head(forest_model, grid_path):
    with pytest.raises(ValueError, match="lime"):
        explain(forest_model, grid_path, method="gradcam")
    e = explain(forest_model, grid_path, method="lime", target="coffee", lime_samples=40)[0]
    assert e.heatmap.shape == (448, 448) and np.abs(e.heatmap).max() == pytest.approx(1.0, abs=0.01)
    facts = e.evidence["method_facts"]
    assert facts["samples"] == 40 and 20 <= facts["superpixels"] <= 60
    assert quadrant_shares(e.heatmap).argmax() == 1  # coffee's evidence is the coffee
    # a map the overlay can show and a path the evaluation report can embed
    png = gradcam_overlay(forest_model, grid_path, out=grid_path.parent / "forest.png")
    assert Image.open(png).size == (448, 448)


def test_deleting_salient_pixels_hurts_more_than_random(tmp_path):
    from skimage import data

    paths = []
    for name in ("chelsea", "coffee", "astronaut", "rocket"):
        p = tmp_path / f"{name}.png"
        Image.fromarray(getattr(data, name)()).save(p)
        paths.append(p)
    # deleted pixels are filled in from their neighbours (ROAD): scattered ones come back almost
    # unchanged, a deleted region loses its content; "random" is both scattered pixels and regions
    # as coarse as the maps (blobs)
    r = deletion_check("efficientnet-lite0", paths, method="gradcam", fraction=0.2, n_random=2)
    d = r["mean_drop"]
    assert r["fill"] == "impute"
    assert d["salient"] > 1.5 * d["random_blobs"] and d["salient"] > d["random_pixels"] + 0.1, d  # 0.31 / 0.14 / -0.03
    r = deletion_check("efficientnet-lite0", paths[:3], method="lime", fraction=0.2, n_random=2, lime_samples=40)
    d = r["mean_drop"]
    assert d["salient"] > d["random_blobs"] and d["salient"] > d["random_pixels"], d


@pytest.fixture(scope="module")
def tiny_vit_model(tmp_path_factory, photo_folder):
    from transformers import ViTConfig, ViTImageProcessor, ViTModel

    skip_where_openvino_layer_norm_is_capped()  # the fit's engine choice runs the ViT on OpenVINO

    from wordsight.estimator import Classifier

    d = tmp_path_factory.mktemp("tiny-vit")
    torch.manual_seed(0)
    ViTModel(ViTConfig(image_size=32, patch_size=8, hidden_size=24, num_hidden_layers=2, num_attention_heads=2,
                       intermediate_size=48)).save_pretrained(d)
    ViTImageProcessor(size={"height": 32, "width": 32}, image_mean=[0.5] * 3, image_std=[0.5] * 3).save_pretrained(d)
    return Classifier(encoders=(f"hf:{d}",), fusion="image", head=LogisticHead(C=1.0)).fit(photo_folder)


def test_attention_rollout_on_a_vit(tiny_vit_model, photo_folder):
    path = photo_folder / "coffee" / "0.jpg"  # 600 x 400, resized whole (exact) to 32 x 32
    with pytest.raises(ValueError, match="rollout"):
        explain(tiny_vit_model, path, method="gradcam")
    e = explain(tiny_vit_model, path, method="rollout")[0]
    assert e.heatmap.shape == (400, 600) and e.evidence["method_facts"]["class_agnostic"]
    assert e.evidence["predicted"] in QUADRANTS
    # the same rollout by hand: ((mean over heads + I) / 2, rows renormalised), multiplied over
    # layers, row of [CLS] over the 4 x 4 patches
    s = as_subject(tiny_vit_model)
    enc = s.encoder()
    before = enc.model.config._attn_implementation
    assert before != "eager"  # switched back after the call
    enc.model.set_attn_implementation("eager")
    with torch.no_grad():
        att = enc.model(pixel_values=s.inputs(e.view.image[None])[s.encoder_name], output_attentions=True).attentions
    enc.model.set_attn_implementation(before)
    r = torch.eye(17)
    for a in att:
        a = (a[0].mean(0) + torch.eye(17)) / 2
        r = (a / a.sum(-1, keepdim=True)) @ r
    grid = r[0, 1:].reshape(4, 4).numpy()
    cells = e.view_heatmap[4::8, 4::8]  # patch centres of the 32 x 32 view
    order = np.argsort(grid.ravel())
    assert np.argsort(cells.ravel()).tolist() == order.tolist() or np.corrcoef(cells.ravel(), grid.ravel())[0, 1] > 0.95


def test_cli_writes_overlays_maps_and_evidence(saved_model, photo_folder, tmp_path, capsys):
    from wordsight.cli import main

    img = photo_folder / "cat" / "0.jpg"
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"not an image")
    out = tmp_path / "out"
    assert main(["explain", str(saved_model), str(img), str(broken), "--out", str(out), "--class", "coffee"]) == 0
    assert Image.open(out / "0.gradcam.png").size == (451, 300)
    assert np.load(out / "0.gradcam.npy").shape == (300, 451)
    records = json.loads((out / "evidence.json").read_text())
    assert len(records) == 1 and records[0]["target"] == "coffee" and records[0]["predicted"] == "cat"
    printed = capsys.readouterr()
    assert "broken.jpg" in printed.err
    # the printed words name only the concepts above efficientnet-lite0's measured threshold (0.43)
    concepts = records[0]["concepts"][:3]
    assert [c["listed"] for c in concepts] == [c["probability"] >= 0.43 for c in concepts]
    listed = [c["name"] for c in concepts if c["listed"]]
    assert (f"; resembles {', '.join(listed)}" if listed else "; no ImageNet concept fits well") in printed.out
    assert main(["explain", str(saved_model), str(img), "--out", str(out), "--class", "dog"]) == 1
    assert "unknown class 'dog'" in capsys.readouterr().err


def test_imputation_fills_scattered_pixels_from_their_neighbours_and_erases_regions():
    from wordsight.explain.faithfulness import impute

    yy, xx = np.mgrid[0:64, 0:64]
    smooth = np.stack([xx * 3, yy * 3, (xx + yy) * 2], -1).astype(np.uint8)
    rng = np.random.default_rng(0)
    scattered = rng.uniform(size=(64, 64)) < 0.2
    out = impute(smooth, scattered)
    err = np.abs(out.astype(int) - smooth)
    assert err.max() <= 3 and err[scattered].mean() < 1.0  # a linear ramp is restored from its neighbours
    assert (out[~scattered] == smooth[~scattered]).all()  # kept pixels are untouched
    checks = ((xx // 2 + yy // 2) % 2 * 255).astype(np.uint8)[..., None].repeat(3, -1)
    hole = np.zeros((64, 64), bool)
    hole[16:48, 16:48] = True
    filled = impute(checks, hole)
    assert checks[hole].std() > 100 and filled[20:44, 20:44].std() < 10  # the pattern inside is gone


@pytest.fixture(scope="module")
def prior_model(fashion_folder):
    from wordsight.estimator import Classifier

    return Classifier(fusion=PriorFusion(weight=1.0), head=LogisticHead(C=1.0)).fit(fashion_folder / "train")


def test_language_prior_models_are_explained_with_their_prior(prior_model, fashion_folder, tmp_path):
    assert prior_model.prior_.view_ == "light-background"  # white garments on black: inverted for the prior
    # a 120 px copy: views at full input size, where the perturbed-view path (inputs, proba_views)
    # re-reads the prior exactly as extraction does (a tiny image's view: the next test)
    path = tmp_path / "garment.png"
    Image.open(sorted((fashion_folder / "test").rglob("*.png"))[0]).resize((120, 120)).save(path)
    s = as_subject(prior_model)
    view = s.read(path).image
    p_model = prior_model.predict_proba([str(path)])
    with torch.no_grad():
        p_torch = torch.softmax(s.scores(s.inputs(view[None])), 1).numpy()
    np.testing.assert_allclose(p_torch, p_model, atol=1e-5)
    np.testing.assert_allclose(s.proba_views(view[None]), p_model, atol=1e-5)
    head_only = prior_model.head_.predict_proba(prior_model.featurize([str(path)]).matrix.astype(np.float64))
    assert np.abs(head_only - p_model).max() > 1e-3  # the prior is part of what is explained
    e = explain(prior_model, path)[0]
    assert e.heatmap.shape == (120, 120) and e.evidence["target"] == e.evidence["predicted"]
    parts = e.evidence["parts"]
    assert set(parts) == {"image", "text"} and parts["text"]["contribution"] != 0
    assert parts["image"]["share"] + parts["text"]["share"] == pytest.approx(1.0)
    lime = explain(prior_model, path, method="lime", lime_samples=30)[0]
    assert lime.heatmap.shape == (120, 120) and np.abs(lime.heatmap).max() > 0


def test_tiny_and_draft_decoded_images_are_read_as_predictions_read_them(prior_model, fashion_folder, tmp_path):
    """The explainer's view is feature extraction's model input: a 28-px garment at the reduced
    input size (160 px), a 768 x 512 JPEG decoded with DCT draft scaling; the explanation reports
    predict_proba's numbers, and the torch path of the image itself reproduces them."""
    from skimage import data

    from wordsight.encoders.preprocess import resize_and_crop, to_tensor_array

    s = as_subject(prior_model)
    tiny = sorted((fashion_folder / "test").rglob("*.png"))[0]
    view = s.read(tiny)
    assert view.image.shape == (160, 160, 3) and view.size == (28, 28)
    small = dataclasses.replace(s.cfg, input_size=160, resize_size=183)  # 160 * 256 / 224, rounded
    np.testing.assert_array_equal(to_tensor_array(view.image, small), prior_model.model_input(tiny.read_bytes()))
    # resized to 183 px, centre crop of 160 from offset 11: 11 * 28 / 183 to 171 * 28 / 183
    assert view.box == pytest.approx((1.6831, 1.6831, 26.1639, 26.1639), abs=1e-4)
    p_model = prior_model.predict_proba([str(tiny)])
    with torch.no_grad():
        p_torch = torch.softmax(s.scores(s.view_inputs(view)), 1).numpy()
    np.testing.assert_allclose(p_torch, p_model, atol=1e-5)
    e = explain(prior_model, tiny)[0]
    assert e.heatmap.shape == (28, 28) and e.view_heatmap.shape == (160, 160)
    top = dict(e.evidence["top_k"])
    np.testing.assert_allclose([top[c] for c in prior_model.classes_ if c in top],
                               [p for c, p in zip(prior_model.classes_, p_model[0]) if c in top], atol=1e-12)

    big = tmp_path / "big.jpg"
    Image.fromarray(data.coffee()).resize((768, 512)).save(big, quality=90)
    view = s.read(big)
    np.testing.assert_array_equal(to_tensor_array(view.image, s.cfg), prior_model.model_input(big.read_bytes()))
    full = np.asarray(resize_and_crop(Image.open(big).convert("RGB"), s.cfg), np.int16)
    assert np.abs(full - view.image).max() > 20  # decoded in full, the pixels would differ
    e = explain(prior_model, big)[0]
    assert e.heatmap.shape == (512, 768)
    assert e.evidence["probability"] == pytest.approx(prior_model.predict_proba([str(big)])[0].max(), abs=1e-12)
