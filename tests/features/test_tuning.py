"""Batch-size tuning: measured once per (model, engine, input size, machine), remembered on disk."""
from __future__ import annotations

import json
import time

import numpy as np

from wordsight.features.engines import tuning


class TimedRunner:
    """A runner whose cost per call is ``overhead + per_image * batch**power`` seconds (real
    sleeps), so the best batch size is known in advance."""

    engine, precision, threads = "test", "fp32", 1

    def __init__(self, name, overhead, per_image, power=1.0):
        self.fingerprint = name
        self.overhead, self.per_image, self.power = overhead, per_image, power
        self.calls = []

    def __call__(self, x):
        self.calls.append(len(x))
        time.sleep(self.overhead + self.per_image * len(x) ** self.power)
        return {"embedding": x.reshape(len(x), -1)[:, :4]}


def test_fixed_cost_per_call_favours_large_batches_and_is_measured_once(tmp_path):
    runner = TimedRunner("overhead-bound", overhead=0.02, per_image=0.0002)
    assert tuning.tuned_batch_size(runner, 8, cache_dir=tmp_path) == 32
    assert sorted(set(runner.calls)) == list(tuning.CANDIDATES)
    saved = json.loads((tmp_path / tuning.FILE).read_text())
    entry = saved[tuning.tuning_key(runner, 8)]
    assert entry["batch_size"] == 32 and set(entry["images_per_second"]) == {"4", "8", "16", "32"}
    rates = {int(b): r for b, r in entry["images_per_second"].items()}
    assert rates[32] > 3 * rates[4]
    assert tuning.tuning_entry(runner, 8, cache_dir=tmp_path) == entry
    # a new process (empty memory) reads the file instead of measuring again
    tuning._memory.clear()
    runner.calls.clear()
    assert tuning.tuned_batch_size(runner, 8, cache_dir=tmp_path) == 32 and runner.calls == []


def test_cost_growing_faster_than_the_batch_favours_small_batches(tmp_path):
    runner = TimedRunner("cache-bound", overhead=0.0, per_image=0.0001, power=2.0)
    assert tuning.tuned_batch_size(runner, 8, cache_dir=tmp_path) == 4


def test_the_engine_uses_the_measured_size_unless_one_is_given(tmp_path, monkeypatch, fashion_folder):
    from wordsight.features import extract_features

    monkeypatch.setenv("WORDSIGHT_CACHE", str(tmp_path))
    files = sorted(str(p) for p in (fashion_folder / "test").rglob("*.png"))[:6]
    extract_features(files, "efficientnet-lite0", cache=False, quiet=True, batch_size=3)
    assert not (tmp_path / tuning.FILE).exists()  # an explicit size is never second-guessed
    tuning._memory.clear()
    fs = extract_features(files, "efficientnet-lite0", cache=False, quiet=True)
    saved = json.loads((tmp_path / tuning.FILE).read_text())
    (key, entry), = saved.items()
    assert "|160px|" in key and entry["batch_size"] in tuning.CANDIDATES  # 28-px images run at 160 px
    assert fs.embeddings.shape == (6, 1280) and np.isfinite(fs.embeddings).all()


def test_runners_are_built_once_per_process():
    from wordsight.features.engines.batch import EmbedBatch

    a, b = EmbedBatch("efficientnet-lite0").runner, EmbedBatch("efficientnet-lite0").runner
    assert a is b  # one ONNX session, not one per predict call
    assert EmbedBatch("efficientnet-lite0", engine="torch").runner is not a
