"""Explanations through a tile bag and the mil head (follow-up of issue 24): the tile map against
the head's pooling written out in numpy over tile rectangles cut as written here (tiny mosaics,
a draft-decoded non-square JPEG), Grad-CAM inside each tile against each tile's own CAM times its
pooling weight, the probabilities against ``predict_proba``, and the CLI's files."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image
from scipy.special import expit

from wordsight.cli import main
from wordsight.estimator import Classifier
from wordsight.explain import explain
from wordsight.explain._pipeline import as_subject
from wordsight.io.sources import open_source

from ..conftest import first_mosaics, fit_mil_tagger

ENC = "efficientnet-lite0"
BAG = f"tilebag:2,3:{ENC}"  # 13 tiles: the 2x2 and the 3x3 split overlap
GRIDS = (2, 3)


@pytest.fixture(scope="module")
def tagger(mosaic_manifests, tmp_path_factory):
    return fit_mil_tagger(mosaic_manifests[0], 32, tmp_path_factory.mktemp("mil-explain"), BAG)


@pytest.fixture(scope="module")
def images(mosaic_manifests, photo_folder, tmp_path_factory):
    """A 56-px mosaic (tiny: read at the small input), an 84-px one and a 902 x 600 JPEG (decoded
    at half size by JPEG draft scaling, as extraction decodes it)."""
    mosaics = open_source(mosaic_manifests[1]).paths
    sizes = {Image.open(p).size[0]: p for p in mosaics}
    big = tmp_path_factory.mktemp("big") / "wide.jpg"
    with Image.open(photo_folder / "cat" / "0.jpg") as im:
        im.convert("RGB").resize((902, 600)).save(big, quality=90)
    return [sizes[56], sizes[84], str(big)]


def rectangles(w: int, h: int):
    """Every tile's rectangle, written out: row r, column c of each g x g split of a w x h image."""
    return [(c * w // g, r * h // g, (c + 1) * w // g, (r + 1) * h // g) for g in GRIDS for r in range(g)
            for c in range(g)]


def decoded_size(path) -> tuple[int, int]:
    """The size extraction decodes an image at: a JPEG drafted towards 256 px (lite0's resize)."""
    with Image.open(path) as im:
        if im.format == "JPEG":
            im.draft("RGB", (256, 256))
        return im.size


def head_terms(clf, path, target: int):
    """Each tile's score and log-sum-exp weight for ``target``, the pooled and the global term,
    from the head's saved state and the fused row ``predict_proba`` scores."""
    a, (start, k, d) = clf.head_.arrays, clf.head_.info["bag"]
    x = np.asarray(clf.featurize([path]).matrix[0], np.float64)
    T = x[start:start + k * d].reshape(k, d)
    s = T @ a["W"][target]
    top = s.max()
    e = np.exp(s - top)
    g = np.concatenate([x[:start], x[start + k * d:]]) @ a["V"][target]
    return s, e / e.sum(), top + np.log(e.sum()), g, a["b"][target]


def test_the_tile_map_is_the_heads_pooling_on_the_tiles_rectangles(tagger, images):
    clf, _ = tagger
    proba = clf.predict_proba(images)
    assert clf.head_.info["bag"][1] == 13
    for i, path in enumerate(images):
        target = int(np.argmax(proba[i]))
        e = explain(clf, path, method="tiles", target=clf.classes_[target])[0]
        s, w, pooled, g, b = head_terms(clf, path, target)
        ev = e.evidence["tiles"]
        np.testing.assert_allclose([t["score"] for t in ev["tiles"]], s, atol=1e-9)
        np.testing.assert_allclose([t["weight"] for t in ev["tiles"]], w, atol=1e-9)
        np.testing.assert_allclose([ev["pooled"], ev["global"], ev["bias"]], [pooled, g, b], atol=1e-9)
        assert ev["global_share"] == pytest.approx(abs(g) / (abs(g) + abs(pooled)), abs=1e-12)
        assert (ev["pool"], ev["encoder"]) == ("lse", BAG)
        np.testing.assert_allclose(expit(ev["logit"]), proba[i, target], atol=1e-9)  # predict_proba's
        assert e.evidence["probability"] == pytest.approx(proba[i, target], abs=1e-12)
        with Image.open(path) as im:
            W, H = im.size
        dw, dh = decoded_size(path)
        want = np.zeros((H, W))
        for (left, top, right, bottom), wt in zip(rectangles(dw, dh), w):
            sx, sy = W / dw, H / dh
            want[round(top * sy):round(bottom * sy), round(left * sx):round(right * sx)] += wt
        assert e.heatmap.shape == (H, W)
        np.testing.assert_allclose(e.heatmap, want, atol=1e-6)
        assert [t["box"] for t in ev["tiles"]] == [[round(v * f, 1) for v, f in zip(r, (sx, sy, sx, sy))]
                                                   for r in rectangles(dw, dh)]
        assert e.evidence["method_facts"]["map"].startswith("tiles")
    assert decoded_size(images[2]) == (451, 300)  # the JPEG was drafted: its rectangles scaled back


def test_gradcam_inside_each_tile_is_the_tiles_own_cam_times_its_pooling_weight(tagger, images):
    from wordsight.encoders import load_model
    from wordsight.explain.cam import cam_maps, captured
    from wordsight.explain.tile_inputs import tile_reading

    clf, _ = tagger
    subject = as_subject(clf)
    path = images[1]
    target = int(np.argmax(clf.predict_proba([path])[0]))
    view = subject.read(path)
    whole = cam_maps(*captured(subject, view, target, [BAG])[BAG], "gradcam")[:, 0].numpy()
    # each tile's own score s_i = e_i . W_target (e_i: its embedding over a norm held constant)
    x = torch.from_numpy(tile_reading(subject, view, BAG).inputs)
    enc = load_model(ENC)
    with torch.no_grad():
        fmap = enc.forward_features(x)
    fmap.requires_grad_(True)
    emb = enc.forward_head(fmap, pre_logits=True).double()
    np.testing.assert_allclose((emb / emb.norm(dim=1, keepdim=True)).detach().numpy().ravel(),
                               clf.featurize([path]).matrix[0, clf.head_.info["bag"][0]:], atol=1e-5)  # the row predict_proba scores
    s = (emb / emb.norm(dim=1, keepdim=True).detach()) @ torch.from_numpy(clf.head_.arrays["W"][target])
    s.sum().backward()
    own = torch.relu((fmap.grad.mean((2, 3))[:, :, None, None] * fmap).sum(1)).detach().numpy()
    w = head_terms(clf, path, target)[1]
    assert w.max() > 0.3 and own.max() > 0
    np.testing.assert_allclose(whole, w[:, None, None] * own, rtol=1e-4, atol=1e-6 * float(whole.max()))


def numpy_cam(acts: torch.Tensor, grads: torch.Tensor) -> np.ndarray:
    """(B, h, w) Grad-CAM written out in numpy: ReLU(sum_c mean_ij(dS/dA_c) * A_c)."""
    a, g = acts.numpy().astype(np.float64), grads.numpy().astype(np.float64)
    return np.maximum((g.mean((2, 3))[:, :, None, None] * a).sum(1), 0)


def tile_seen_parts(rects, W: int, H: int, dw: int, dh: int):
    """The part of each tile rectangle (of the image decoded at dw x dh) its model input covers: the
    tile resized (shorter side 256) and centre-cropped to 224, in original pixels."""
    out = []
    for left, top, right, bottom in rects:
        tw, th = right - left, bottom - top
        scale = 256 / min(tw, th)
        nw, nh = max(224, round(tw * scale)), max(224, round(th * scale))
        cl, ct = (nw - 224) // 2, (nh - 224) // 2
        sx, sy = W / dw, H / dh
        out.append(((left + cl * tw / nw) * sx, (top + ct * th / nh) * sy, (left + (cl + 224) * tw / nw) * sx,
                    (top + (ct + 224) * th / nh) * sy))
    return out


def painted_cams(parts, W: int, H: int) -> np.ndarray:
    """Each (map, box) pair resized onto its box as a density (a cell's value over its area), summed."""
    want = np.zeros((H, W), np.float32)
    for m, (left, top, right, bottom) in parts:
        bw, bh = round(right - left), round(bottom - top)
        part = np.asarray(Image.fromarray(m.astype(np.float32), "F").resize((bw, bh), Image.Resampling.BILINEAR))
        x0, y0 = round(left), round(top)
        want[y0:y0 + bh, x0:x0 + bw] += part[:H - y0, :W - x0] / ((right - left) * (bottom - top) / m.size)
    return want


def whole_image_box(W: int, H: int):
    """The whole image's centre crop (shorter side 256, 224 kept), in original pixels."""
    scale = 256 / min(W, H)
    nw, nh = max(224, round(W * scale)), max(224, round(H * scale))
    cl, ct = (nw - 224) // 2, (nh - 224) // 2
    return cl * W / nw, ct * H / nh, (cl + 224) * W / nw, (ct + 224) * H / nh


def test_gradcam_places_each_tiles_cam_in_the_part_of_its_rectangle_the_tile_was_read_from(tagger, images):
    """The map is the tiles' CAMs (inside each tile's centre crop) and the whole image's CAM over its
    view, each a density (a cell's value over its area), summed and scaled to 1: rebuilt here."""
    from wordsight.explain.cam import cam_maps, captured

    clf, _ = tagger
    subject = as_subject(clf)
    path = images[2]
    target = int(np.argmax(clf.predict_proba([path])[0]))
    e = explain(clf, path, method="gradcam", target=clf.classes_[target])[0]
    view = subject.read(path)
    held = captured(subject, view, target, [BAG, ENC])
    W, H = view.size
    dw, dh = decoded_size(path)
    parts = list(zip(cam_maps(*held[BAG], "gradcam")[:, 0].numpy(), tile_seen_parts(rectangles(dw, dh), W, H, dw, dh)))
    parts.append((cam_maps(*held[ENC], "gradcam")[0, 0].numpy(), whole_image_box(W, H)))
    want = painted_cams(parts, W, H)
    np.testing.assert_allclose(e.heatmap, want / want.max(), atol=1e-4)
    assert e.evidence["method_facts"]["encoders"] == [BAG, ENC]
    from wordsight.explain.tile_bags import bag_explanation

    seen = bag_explanation(subject, view, target, "gradcam")[1]  # what the overlay leaves undimmed
    assert seen.dtype == bool and seen.mean() < 1 and seen.sum() > 0.8 * seen.size
    np.testing.assert_array_equal(seen, (want > 0) | seen)  # every painted pixel was seen
    assert "inside each tile" in e.evidence["method_facts"]["map"]


BAG2, BAG3 = f"tilebag:2:{ENC}", f"tilebag:3:{ENC}"


@pytest.fixture(scope="module")
def two_bags(mosaic_manifests, tmp_path_factory):
    """A tagger over the whole image and two tile bags whose mil head pools the 3x3 bag (the 2x2
    bag's tiles are columns of its global term): the row is ENC (1280), BAG2 (4 x 1280), BAG3."""
    from wordsight.estimator.heads.mil import MILHead

    d = tmp_path_factory.mktemp("two-bags")
    first_mosaics(mosaic_manifests[0], 16, d / "train.csv")
    clf = Classifier(encoders=(ENC, BAG2, BAG3), task="multi-label", head=MILHead(bag=[5 * 1280, 9, 1280], lam=1e-3,
                                                                                     max_iter=40))
    return clf.fit(d / "train.csv")


def test_gradcam_places_the_cams_of_every_tile_bag(two_bags, images):
    """Both bags' tiles (2x2 and 3x3, each through its own feature maps and gradients) and the whole
    image, each CAM written out in numpy and painted into the part of its rectangle it was read from."""
    from wordsight.explain.cam import captured

    clf, path = two_bags, images[2]
    subject = as_subject(clf)
    target = int(np.argmax(clf.predict_proba([path])[0]))
    e = explain(clf, path, method="gradcam", target=clf.classes_[target])[0]
    view = subject.read(path)
    held = captured(subject, view, target, [BAG2, BAG3, ENC])
    W, H = view.size
    dw, dh = decoded_size(path)
    rects = rectangles(dw, dh)  # the 2x2 split's 4 rectangles, then the 3x3 split's 9
    parts = [*zip(numpy_cam(*held[BAG2]), tile_seen_parts(rects[:4], W, H, dw, dh)),
             *zip(numpy_cam(*held[BAG3]), tile_seen_parts(rects[4:], W, H, dw, dh)),
             (numpy_cam(*held[ENC])[0], whole_image_box(W, H))]
    assert all(numpy_cam(*held[b]).max() > 0 for b in (BAG2, BAG3))  # both bags speak for the class
    want = painted_cams(parts, W, H)
    np.testing.assert_allclose(e.heatmap, want / want.max(), atol=1e-4)
    assert e.evidence["method_facts"]["encoders"] == [BAG2, BAG3, ENC]
    only_first = painted_cams(parts[:4] + parts[13:], W, H)  # what placing the first bag alone drew
    assert np.abs(e.heatmap - only_first / only_first.max()).max() > 0.05


def test_the_tile_map_and_the_evidence_are_the_bag_the_mil_head_pools(two_bags, images):
    """With two bags in the row, the tiles method draws the weights of the bag the head pools (the
    second, 3x3), on that bag's rectangles."""
    clf, path = two_bags, images[1]
    target = int(np.argmax(clf.predict_proba([path])[0]))
    e = explain(clf, path, method="tiles", target=clf.classes_[target])[0]
    ev = e.evidence["tiles"]
    s, w, pooled, g, b = head_terms(clf, path, target)
    assert ev["encoder"] == BAG3 and len(ev["tiles"]) == 9 and len(w) == 9
    assert [(t["grid"], t["tile"]) for t in ev["tiles"]] == [(3, i) for i in range(9)]
    np.testing.assert_allclose([t["weight"] for t in ev["tiles"]], w, atol=1e-9)
    np.testing.assert_allclose([ev["pooled"], ev["global"], ev["bias"]], [pooled, g, b], atol=1e-9)
    with Image.open(path) as im:
        W, H = im.size
    dw, dh = decoded_size(path)
    want = np.zeros((H, W))
    for (left, top, right, bottom), wt in zip(rectangles(dw, dh)[4:], w):
        sx, sy = W / dw, H / dh
        want[round(top * sy):round(bottom * sy), round(left * sx):round(right * sx)] += wt
    np.testing.assert_allclose(e.heatmap, want, atol=1e-6)
    assert e.evidence["method_facts"] == {"map": e.evidence["method_facts"]["map"], "encoder": BAG3}


def test_the_torch_path_and_every_methods_probabilities_are_predict_probas(tagger, images):
    clf, _ = tagger
    subject = as_subject(clf)
    want = clf.predict_proba(images)
    for i, path in enumerate(images):
        view = subject.read(path)
        with torch.no_grad():
            z = subject.scores(subject.view_inputs(view))
        np.testing.assert_allclose(torch.sigmoid(z)[0].numpy(), want[i], atol=1e-5)
        np.testing.assert_allclose(subject.proba(view), want[i], atol=1e-12)
    for method in ("gradcam", "gradcam++", "tiles"):
        for e, p in zip(explain(clf, images[:2], method=method), want):
            assert dict(e.evidence["top_k"])[e.target] == pytest.approx(p.max(), abs=1e-12)
    # LIME, SHAP and the deletion check re-run the model on perturbed views (the explained encoder's
    # centre crop): the bag's tiles are cut from the image with the view's changed pixels pasted back,
    # so an unchanged view is predict_proba's image, and a change reaches the tiles it covers
    from wordsight.explain.tile_inputs import pasted, perturbing, tile_reading

    view = subject.read(images[1])
    changed = view.image.copy()
    changed[:40, :40] = 255  # the upper left of the view: inside the image's upper left tiles
    with perturbing(subject, view):
        got = subject.proba_views(np.stack([view.image, changed]))
    np.testing.assert_allclose(got[0], want[1], atol=1e-5)
    assert np.abs(got[1] - want[1]).max() > 1e-3
    for path in images[1:]:  # the change lands on the part of the decoded image the view covers
        view = subject.read(path)
        changed = view.image.copy()
        changed[:40, :60] = 255
        source = tile_reading(subject, view, BAG).image  # the drafted JPEG: half the original's size
        img = np.asarray(pasted(source, view, changed)).astype(int)
        diff = np.argwhere(np.any(img != np.asarray(source.convert("RGB")), axis=2))
        (left, top, right, bottom), s = view.box, view.image.shape[0]
        sx, sy = source.size[0] / view.size[0], source.size[1] / view.size[1]
        assert diff.min(0).tolist() == [round(top * sy), round(left * sx)]
        far = np.array([(top + 40 * (bottom - top) / s) * sy, (left + 60 * (right - left) / s) * sx])
        assert (np.abs(diff.max(0) + 1 - far) <= 1.5).all(), (diff.max(0), far)
    alone = subject.proba_views(view.image[None])  # outside an explanation: the tiles cut from the view itself
    assert alone.shape == (1, len(clf.classes_)) and ((alone > 0) & (alone < 1)).all()


def test_cli_explains_every_tag_and_the_report_draws_each_tags_map(tagger, mosaic_manifests, tmp_path, capsys):
    clf, folder = tagger
    img = open_source(mosaic_manifests[1]).paths[0]
    target = str(clf.classes_[3])
    assert main(["explain", str(folder), img, "--method", "tiles", "--class", target, "--out",
                 str(tmp_path / "x")]) == 0
    rec = json.loads((tmp_path / "x" / "evidence.json").read_text())[0]
    assert rec["target"] == target and len(rec["tiles"]["tiles"]) == 13
    assert np.load(rec["files"]["heatmap"]).shape == Image.open(img).size[::-1]
    assert main(["explain", str(folder), img, "--out", str(tmp_path / "g")]) == 0
    assert (tmp_path / "g" / f"{Image.open(img).filename.rsplit('/', 1)[1][:-4]}.gradcam.png").exists()
    assert main(["evaluate", str(folder), str(mosaic_manifests[1]), "--report", str(tmp_path / "r"),
                 "--quiet"]) == 0
    mistakes = json.loads((tmp_path / "r" / "metrics.json").read_text())["mistakes"]
    assert mistakes and all(m["heatmap"] == f"images/mistake_{i:02d}.cam.png" for i, m in enumerate(mistakes[:6]))
    with Image.open(tmp_path / "r" / "images" / "mistake_00.cam.png") as im:
        assert im.size == Image.open(mistakes[0]["path"]).size


def test_the_tiles_method_needs_a_tile_bag_and_the_tile_map_the_mil_head(tagger, mosaic_manifests, tmp_path):
    first_mosaics(mosaic_manifests[0], 16, tmp_path / "train.csv")
    img = open_source(mosaic_manifests[1]).paths[0]
    plain = Classifier(encoders=(ENC,), task="multi-label").fit(tmp_path / "train.csv")
    with pytest.raises(ValueError, match="method 'tiles' explains a model whose encoders include a tile bag"):
        explain(plain, img, method="tiles")
    logistic = Classifier(encoders=(ENC, "tilebag:2:" + ENC), task="multi-label", head="logistic")
    logistic.fit(tmp_path / "train.csv")
    with pytest.raises(ValueError, match="the tile map reads the mil head's pooling, this model's head is 'logistic'"):
        explain(logistic, img, method="tiles")
    e = explain(logistic, img, method="gradcam")[0]  # Grad-CAM reaches the tiles through any differentiable head
    assert "tiles" not in e.evidence and "inside each tile" in e.evidence["method_facts"]["map"]
    assert e.evidence["probability"] == pytest.approx(logistic.predict_proba([img])[0].max(), abs=1e-12)
