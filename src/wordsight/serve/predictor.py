"""The pipeline one worker process serves, loaded once: a fitted Classifier and/or zero-shot.

Nothing here computes features or probabilities itself: trained predictions are
:meth:`wordsight.Classifier.predict_records`; zero-shot is the
:class:`~wordsight.zeroshot.pipeline.ZeroShotPipeline` that ``wordsight zeroshot`` and the
Classifier's prior run (one fitted pipeline per class list, kept for the last few lists). The
batch methods run on the model thread (see :mod:`.batcher`) with the images of several requests
at once.
"""
from __future__ import annotations

import io
import json
import threading
import warnings
from collections import OrderedDict
from pathlib import Path

import numpy as np

from .._version import __version__
from ..io.sources import Sample
from ..zeroshot.text_classifier import METHODS
from .answers import Answer, Thresholds, calibration_of, classifier_answers, detector_answers, is_detector
from .settings import ServeSettings

DEFAULT_ZERO_SHOT_ENCODER = "efficientnet-lite0"
# What a request may ask for: every method (a class without a description given in the request
# is represented by its name: no LLM runs at request time).
ZERO_SHOT_METHODS = METHODS
OVERLAY_SIDE = 1024  # explanation overlays are sent at most this large


def _language():
    """The language layer, or None while it cannot be imported."""
    try:
        from .. import zeroshot
        from ..zeroshot import pipeline  # noqa: F401

        return zeroshot
    except ImportError:
        return None


def _py(v):
    return v.item() if isinstance(v, np.generic) else v


class Predictor:
    """Loads the model folder (or nothing, for a zero-shot-only server) and answers batches."""

    def __init__(self, settings: ServeSettings):
        self.settings = settings
        self.classifier = None
        self.model_config: dict | None = None
        if settings.model_dir:
            from ..estimator import load_model_folder, read_config

            # Uploads are not written to the on-disk feature cache: a per-call memory cache only.
            self.classifier = load_model_folder(settings.model_dir).set_params(cache=False, quiet=True)
            if settings.precision is not None and hasattr(self.classifier, "precision"):
                self.classifier.set_params(precision=settings.precision)
            self.model_config = {} if is_detector(self.classifier) else read_config(settings.model_dir)
        self.classes = [_py(c) for c in self.classifier.classes_] if self.classifier is not None else None
        self.is_detector = self.classifier is not None and is_detector(self.classifier)
        self.thresholds = Thresholds(self.classifier) if self.classifier is not None else None
        self.language = _language()
        self.describe_error: str | None = None if self.language is not None else "wordsight.text is not available"
        self.zero_shot_encoder = settings.zero_shot_encoder or self._default_zero_shot_encoder()
        self._zero_shot_models: OrderedDict = OrderedDict()
        self._zs_lock = threading.Lock()
        self._zs_failure: str | None = None  # set when the warm-up found zero-shot broken

    # ------------------------------------------------------------------ what is served
    @property
    def has_model(self) -> bool:
        return self.classifier is not None

    @property
    def zero_shot_error(self) -> str | None:
        """Why zero-shot cannot be served, or None when it can."""
        if self._zs_failure:
            return self._zs_failure
        if self.language is None:
            return "zero-shot needs wordsight.text, which cannot be imported here"
        try:
            if self.language.encoder_kind(self.zero_shot_encoder) == "image":
                return (f"{self.zero_shot_encoder} has no way into the text space (zero-shot needs an encoder "
                        "with an ImageNet head, a clip: or a caption: model)")
        except KeyError as e:
            return str(e.args[0] if e.args else e)
        return None

    @property
    def zero_shot_text_model(self) -> str:
        """The text model whose space the zero-shot encoder's image vectors land in."""
        return self.language.text_side(self.zero_shot_encoder, self.settings.text_model)

    def _default_zero_shot_encoder(self) -> str:
        if self.classifier is not None and getattr(self.classifier, "probs_encoder_", None):
            return self.classifier.probs_encoder_
        return DEFAULT_ZERO_SHOT_ENCODER

    def info(self) -> dict:
        model = None
        if self.is_detector:
            model = detector_info(self.classifier, Path(self.settings.model_dir).name)
        elif self.has_model:
            cfg = self.model_config or {}
            params = cfg.get("params", {})
            model = {"name": Path(self.settings.model_dir).name, "classes": self.classes,
                     "encoders": list(self.classifier.encoder_names), "fusion": self.classifier.fusion_name,
                     "head": self.classifier.head_name, "task": self.classifier.task_.name,
                     "text_model": params.get("text_model"),
                     "reads_texts": self.classifier.reads_texts,  # POST /v1/predict takes `texts`
                     "trained_with": cfg.get("library_version"), "kind": "classifier",
                     "sets": calibration_of(self.classifier) is not None}
        zs_error = self.zero_shot_error
        return {"version": __version__, "model": model,
                "zero_shot": {"available": zs_error is None, "encoder": self.zero_shot_encoder,
                              "text_model": self.zero_shot_text_model if zs_error is None else None,
                              "methods": list(ZERO_SHOT_METHODS), "why_not": zs_error},
                "descriptions": {"available": self.describe_error is None, "why_not": self.describe_error}}

    # ------------------------------------------------------------------ batch functions
    def predict_batch(self, samples: list[Sample]) -> list[Answer]:
        """Per image, its :class:`~.answers.Answer`: a classifier's record (every class in ``top_k``,
        best first) with its out-of-distribution score, or a detector's score, decision and
        threshold (and heatmap), or the ``error`` saying why the pipeline could not read it."""
        try:
            if self.is_detector:
                return detector_answers(self.classifier, samples, heatmaps=True)
            return classifier_answers(self.classifier, samples, describe=self.describe_error is None)
        except Exception:
            reasons = [self._decode_error(s) for s in samples]
            if all(reasons):  # nothing readable in this batch: say why, per image
                return [Answer(s.path, error=r) for s, r in zip(samples, reasons)]
            raise

    def _decode_error(self, sample: Sample) -> str | None:
        from ..io.images import ImageError, decode_image

        try:
            decode_image(sample.data or b"", max_pixels=self.settings.limits.max_pixels)
        except ImageError as e:
            return str(e)
        return None

    def zero_shot_view(self, datas: list[bytes]) -> str:
        """The view of one request's images, chosen as ``wordsight zeroshot`` chooses it for a folder."""
        from ..features.views import choose_view_of_samples

        if self.settings.zero_shot_view != "auto":
            return self.settings.zero_shot_view
        return choose_view_of_samples([Sample(f"view-{i}", data=d) for i, d in enumerate(datas)])

    def concepts_batch(self, items: list[tuple[Sample, str]]) -> list[dict]:
        """Per (image, view): the zero-shot pipeline's reading of it and its description, or the error."""
        from ..zeroshot.image_text import describe_features
        from ..zeroshot.pipeline import ZeroShotPipeline, read_images

        out: list[dict | None] = [None] * len(items)
        for view in sorted({v for _, v in items}):
            idx = [i for i, (_, v) in enumerate(items) if v == view]
            samples = [items[i][0] for i in idx]
            fs = read_images(samples, self.zero_shot_encoder, view, cache=False)
            reasons = {f.path: f.reason for f in fs.failures}
            row = {s.path: i for i, s in enumerate(fs.samples)}
            texts = (
                describe_features(fs, self.zero_shot_encoder, text_model=self.settings.text_model) if fs.samples else []
            )
            reading = ZeroShotPipeline.reading(fs) if fs.samples else {}  # once per view, not per image
            for i, s in zip(idx, samples):
                r = row.get(s.path)
                out[i] = ({"error": reasons.get(s.path, "could not be read")} if r is None else
                          {"reading": {k: v[r] for k, v in reading.items()}, "description": texts[r]})
        return out

    def zero_shot_proba(self, classes: list[str], descriptions: dict | None, method: str,
                        readings: list[dict]) -> np.ndarray:
        """(n, len(classes)) zero-shot probabilities of the pipeline's readings of n images. The
        fitted pipelines of the last few class lists are kept, so that a repeated request embeds
        no text."""
        reading = {k: np.stack([r[k] for r in readings]) for k in readings[0]}
        return np.exp(self._zero_shot_pipeline(classes, descriptions, method).log_proba_reading(reading))

    def _zero_shot_pipeline(self, classes, descriptions, method):
        from ..zeroshot.pipeline import ZeroShotPipeline

        descriptions = descriptions or {}
        key = (tuple(classes), json.dumps(descriptions, sort_keys=True), method)
        with self._zs_lock:
            zs = self._zero_shot_models.get(key)
            if zs is not None:
                self._zero_shot_models.move_to_end(key)
                return zs
        # Classes without a description are represented by their name (never by an LLM call).
        desc = {c: descriptions.get(c, []) for c in classes} if method == "descriptions" else None
        zs = ZeroShotPipeline(list(classes), encoder=self.zero_shot_encoder, text_model=self.settings.text_model,
                              method=method, descriptions=desc, center="no", cache=False).fit()
        with self._zs_lock:
            self._zero_shot_models[key] = zs
            while len(self._zero_shot_models) > 32:
                self._zero_shot_models.popitem(last=False)
        return zs

    # ------------------------------------------------------------------ explanations
    @property
    def explain_error(self) -> str | None:
        """Why ``/v1/explain`` is not served, or None when it is."""
        if not self.has_model:
            return "explanations need a trained model"
        if self.is_detector:
            return "explanations are for classifiers: a detector's heatmap comes with POST /v1/predict"
        try:
            from ..explain import METHODS, explain  # noqa: F401
        except ImportError as e:
            return f"wordsight.explain is not available: {e}"
        return None

    def explain_batch(self, items: list[tuple[bytes, str, object, dict]]) -> list[dict]:
        """Per (image bytes or a frame's Sample, method, target, options): the overlay PNG (at most ``OVERLAY_SIDE``
        pixels a side) and the evidence JSON, or ``{"error": reason}`` for an unreadable image.
        ``options``: ``lime_samples``, ``shap_evals`` (checked counts or None) and ``deadline`` (the
        request's, on ``time.monotonic``): the work stops there (``code`` "timeout"), so that a
        request answered 504 does not keep the model thread from the other clients."""
        out = []
        for data, method, target, options in items:
            out.append(self._explain_one(data, method, target, options))
        return out

    def _explain_one(self, data: bytes, method: str, target, options: dict) -> dict:
        from .._util.deadlines import DeadlineExceeded, deadline
        from ..explain import explain
        from ..io.images import ImageError

        try:
            with deadline(options.get("deadline")):
                e = explain(self.classifier, [data], method=method, target=target,
                            lime_samples=options.get("lime_samples"), shap_evals=options.get("shap_evals"))[0]
        except DeadlineExceeded as err:
            return {"error": str(err), "code": "timeout"}
        except ImageError as err:
            return {"error": str(err)}
        except ValueError as err:  # e.g. a method this model's encoder does not support
            return {"error": str(err), "code": "cannot_explain"}
        overlay = e.overlay.copy()
        overlay.thumbnail((OVERLAY_SIDE, OVERLAY_SIDE))
        buf = io.BytesIO()
        overlay.save(buf, "PNG")
        return {"target": _py(e.target), "png": buf.getvalue(), "size": overlay.size, "evidence": e.to_json()}

    # ------------------------------------------------------------------ start-up
    def warm_up(self) -> None:
        """Run one small image through everything served, so that models, ONNX sessions and the
        concept bank are loaded before the first request."""
        from PIL import Image

        x = np.linspace(0, 255, 64 * 64 * 3).reshape(64, 64, 3).astype(np.uint8)
        buf = io.BytesIO()
        Image.fromarray(x).save(buf, "PNG")
        sample = Sample("warm-up.png", data=buf.getvalue())
        if self.has_model:
            try:
                self.predict_batch([sample])
            except Exception as e:
                if self.describe_error is not None:
                    raise
                # Serve predictions without descriptions rather than not at all; /v1/model says why.
                self.describe_error = f"describing images failed: {type(e).__name__}: {e}"
                warnings.warn(f"wordsight serve: {self.describe_error}; serving predictions without "
                              "descriptions", RuntimeWarning, stacklevel=2)
                self.predict_batch([sample])
        if self.zero_shot_error is None:
            try:
                rows = self.concepts_batch([(sample, "plain")])
                from ..encoders import load_model

                load_model(self.zero_shot_text_model)  # cached per process: class texts embed at once
                if "reading" in rows[0]:
                    self.zero_shot_proba(["cat", "dog"], None, "names", [rows[0]["reading"]])
            except Exception as e:  # serve the trained model without zero-shot; /v1/model says why
                self._zs_failure = f"zero-shot failed at start-up: {type(e).__name__}: {e}"
                warnings.warn(f"wordsight serve: {self._zs_failure}", RuntimeWarning, stacklevel=2)
                if not self.has_model:
                    raise


def detector_info(det, name: str) -> dict:
    """``/v1/model``'s ``model`` of an anomaly detector."""
    return {"name": name, "kind": "anomaly", "classes": det.classes_.tolist(), "encoders": det.encoder_names,
            "method": det.method, "k": det.k, "threshold": det.threshold_, "reject_rate": det.reject_rate,
            "n_train": det.n_train_, "reads_texts": False, "heatmaps": bool(getattr(det, "localises", False))}
