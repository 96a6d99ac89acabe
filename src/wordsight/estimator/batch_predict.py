"""Predictions as a batch callable (dict of arrays in, dict out), for Ray, Dask or Spark.

    fn = PredictBatch("my-model/")          # a folder written by Classifier.save
    out = fn({"path": np.array(["a.jpg"])})
    out["predicted"], out["probabilities"]  # class names; (N, n_classes) in fn.classes order,
                                            # NaN rows where status != "ok"

The classifier (and through it the encoders, on the local engine) loads once per instance, so
once per Ray actor. :func:`ray_predict` runs it on a Ray actor pool; :class:`ScoreBatch` and
:func:`ray_score` do the same for an anomaly detector's folder.
"""
from __future__ import annotations

import numpy as np

from ..io.sources import Sample


class PredictBatch:
    def __init__(self, model_dir, *, cache=False):
        self.model_dir, self.cache = str(model_dir), cache
        self._clf = None

    @property
    def classifier(self):
        if self._clf is None:
            from .fitted import load_model_folder

            clf = load_model_folder(self.model_dir)
            clf.set_params(cache=self.cache)
            self._clf = clf
        return self._clf

    @property
    def classes(self) -> list[str]:
        return [str(c) for c in self.classifier.classes_]

    @property
    def task(self):
        """The model's fitted task (what ``predicted`` and the records are made by)."""
        return self.classifier.task_

    def predicted(self, proba: np.ndarray, ok: np.ndarray) -> np.ndarray:
        """The task's answer per row as text (a label set ``|``-separated), None for a failed image."""
        from ..io.label_sets import label_cell

        answers = self.task.decide(np.asarray(proba[ok], np.float64), self.classifier.classes_)
        out = np.full(len(proba), None, dtype=object)
        out[np.flatnonzero(ok)] = [label_cell(a) for a in answers]
        return out

    def __getstate__(self):
        return {**self.__dict__, "_clf": None}

    def __call__(self, batch: dict) -> dict[str, np.ndarray]:
        clf = self.classifier
        paths = media_paths(batch)  # video / DICOM / TIFF frames: their MediaRef back from the 'media' column
        datas = list(batch["bytes"]) if "bytes" in batch else [None] * len(paths)
        texts = list(batch["text"]) if "text" in batch else [None] * len(paths)  # paired-text models
        samples = [Sample(p, None, t if isinstance(t, str) else None, None if d is None else bytes(d))
                   for p, d, t in zip(paths, datas, texts)]
        F = clf.featurize(samples)
        n, k = len(samples), len(clf.classes_)
        proba = np.full((n, k), np.nan, np.float32)
        if len(F.samples):
            proba[np.asarray(F.rows)] = clf.predict_proba(F.blocks)
        reasons = {f.path: f.reason for f in F.failures}
        ok = ~np.isnan(proba).any(1)
        out = {
            "path": np.array([str(p) for p in paths], dtype=object),
            "status": np.array(["ok" if good else f"error: {reasons.get(p, 'failed')}" for p, good in zip(paths, ok)],
                               dtype=object),
            "predicted": self.predicted(proba, ok),
            "probabilities": proba,
        }
        for key, value in batch.items():
            if key not in out and key != "bytes":
                out[key] = np.asarray(value)
        return out


class ScoreBatch(PredictBatch):
    """An anomaly detector's folder as a batch callable: ``score`` (``score_samples``: higher = more
    normal, NaN where ``status`` is not "ok"), ``decision`` and ``threshold``::

        fn = ScoreBatch("det/")
        out = fn({"path": np.array(["a.png"])})
        out["score"], out["decision"]
    """

    def __call__(self, batch: dict) -> dict[str, np.ndarray]:
        det = self.classifier
        paths = media_paths(batch)  # video / DICOM / TIFF frames: their MediaRef back from the 'media' column
        datas = list(batch["bytes"]) if "bytes" in batch else [None] * len(paths)
        samples = [Sample(p, None, None, None if d is None else bytes(d)) for p, d in zip(paths, datas)]
        F = det.featurize(samples)
        score = F.scatter(det.score_featurized(F)[:, None])[:, 0]
        reasons = {f.path: f.reason for f in F.failures}
        ok = ~np.isnan(score)
        out = {"path": np.array([str(p) for p in paths], dtype=object),
               "status": np.array(["ok" if good else f"error: {reasons.get(p, 'failed')}" for p, good in zip(paths, ok)],
                                  dtype=object),
               "score": score, "threshold": np.full(len(paths), det.threshold_),
               "decision": np.array([("normal" if v >= det.threshold_ else "abnormal") if good else None
                                     for v, good in zip(score, ok)], dtype=object)}
        for key, value in batch.items():
            if key not in out and key != "bytes":
                out[key] = np.asarray(value)
        return out


def ray_score(model_dir, data, **options) -> tuple[list[dict], list]:
    """An anomaly detector's rows (path, score, decision, threshold) and failures for ``data``,
    scored on Ray by :class:`ScoreBatch` (``options``: those of :func:`ray_predict`)."""
    from ..io.sources import Problem

    rows, failures = [], []
    for part in ray_predict(model_dir, data, batch_fn=ScoreBatch, **options):
        for path, status, score, decision, t in zip(part["path"], part["status"], part["score"], part["decision"],
                                                    part["threshold"]):
            if status == "ok":
                rows.append({"path": str(path), "score": float(score), "decision": str(decision), "threshold": float(t)})
            else:
                failures.append(Problem(str(path), str(status).removeprefix("error: ")))
    return rows, failures


def media_paths(columns: dict) -> list:
    """The rows' paths: a :class:`~wordsight.io.media_ref.MediaRef` where the ``media`` column holds one."""
    from ..io.media_ref import MediaRef

    paths = [str(p) for p in columns["path"]]
    media = list(columns["media"]) if "media" in columns else [""] * len(paths)
    return [MediaRef.from_json(str(m)) if isinstance(m, str) and m else p for p, m in zip(paths, media)]


def ray_predict(model_dir, data, *, address: str | None = None, concurrency: int | None = None,
                num_cpus: float = 1, num_gpus: float = 0, batch_size: int = 32, cache=False, quiet: bool = True,
                batch_fn=PredictBatch):
    """Predict ``data`` (anything ``open_source`` takes) on Ray; yields column dicts in input order
    (``batch_fn``: the callable class each actor holds, :class:`PredictBatch` or :class:`ScoreBatch`)."""
    from ..features.engines.ray_engine import init_ray
    from ..io.sources import open_source

    source = open_source(data)
    ray = init_ray(address, quiet)
    import ray.data  # noqa: F811  (the submodule, on the package init_ray returned)

    ray.data.DataContext.get_current().execution_options.preserve_order = True
    ray.data.DataContext.get_current().enable_progress_bars = not quiet
    if concurrency is None:
        concurrency = max(1, int(ray.cluster_resources().get("CPU", 1) // max(num_cpus, 1)))
    from ..features.engines.ray_engine import media_json

    items = [{"index": i, "path": str(s.path), "media": media_json(s)} for i, s in enumerate(source.samples)]
    if not items:
        return
    n_blocks = min(len(items), max(concurrency, -(-len(items) // batch_size)))
    ds = ray.data.from_items(items, override_num_blocks=n_blocks)
    ds = ds.map_batches(batch_fn, fn_constructor_kwargs={"model_dir": str(model_dir), "cache": cache},
                        batch_size=batch_size, batch_format="numpy", num_cpus=num_cpus,
                        num_gpus=num_gpus or None, compute=ray.data.ActorPoolStrategy(size=concurrency))
    yield from ds.iter_batches(batch_size=None, batch_format="numpy")


def to_records(columns: dict, classes: list[str], top_k: int = 5, task=None) -> list:
    """The :class:`~wordsight.io.records.Prediction` of each row of a :class:`PredictBatch` output
    (``task``: the model's fitted task, whose records they are; default single-label)."""
    from ..io.records import Prediction
    from .tasks import make_task

    task = task or make_task("single-label")
    out = []
    for path, status, proba in zip(media_paths(columns), columns["status"], columns["probabilities"]):
        if status == "ok":
            out += task.records([path], [None], np.asarray(classes), np.asarray(proba, np.float64)[None], top_k, None)
        else:
            out.append(Prediction(path, error=str(status).removeprefix("error: ")))
    return out
