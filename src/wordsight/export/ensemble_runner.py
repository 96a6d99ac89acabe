"""Standalone runner of an exported wordsight ensemble (needs numpy, Pillow, onnxruntime and the
``runner.py`` beside it): each member's exported pipeline, then ``combine.onnx``.

    from ensemble_runner import EnsemblePipeline
    EnsemblePipeline("exported/").predict_proba(["a.png", "b.jpg"])
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from runner import Pipeline  # noqa: E402


class EnsemblePipeline:
    def __init__(self, folder, threads: int | None = None):
        import onnxruntime as ort

        folder = Path(folder)
        spec = json.loads((folder / "ensemble.json").read_text())
        self.classes = spec["classes"]
        self.members = [Pipeline(folder / m, threads=threads) for m in spec["members"]]
        self.combine = ort.InferenceSession(str(folder / spec["combine"]), providers=["CPUExecutionProvider"])

    def predict_proba(self, images) -> np.ndarray:
        Z = np.concatenate([m.predict_proba(images) for m in self.members], 1).astype(np.float32)
        return self.combine.run(["probabilities"], {"member_probabilities": Z})[0]

    def predict(self, images) -> list:
        return [self.classes[i] for i in self.predict_proba(images).argmax(1)]
