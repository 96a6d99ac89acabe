"""Standalone runner of an exported wordsight ensemble (needs numpy, Pillow, onnxruntime and the
``runner.py`` beside it): each member's exported pipeline, then ``combine.onnx``.

    from ensemble_runner import EnsemblePipeline
    EnsemblePipeline("exported/").predict_proba(["a.png", "b.jpg"])
"""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from runner import ExportFolderError, Pipeline, inside, verified  # noqa: E402


class EnsemblePipeline:
    def __init__(self, folder, threads: int | None = None):
        import onnxruntime as ort

        folder = Path(folder)
        spec = verified(folder, "ensemble.json")  # its checksum and every file's, members' included
        for name in [spec.get("combine"), *[f"{m}/pipeline.json" for m in spec.get("members") or []]]:
            if name not in spec["files"]:
                raise ExportFolderError(f"{folder / 'ensemble.json'}: {name!r} is run but not listed in 'files'")
        self.classes = spec["classes"]
        self.members = [Pipeline(inside(folder, m), threads=threads) for m in spec["members"]]
        self.combine = ort.InferenceSession(str(folder / spec["combine"]), providers=["CPUExecutionProvider"])

    def predict_proba(self, images) -> np.ndarray:
        Z = np.concatenate([m.predict_proba(images) for m in self.members], 1).astype(np.float32)
        return self.combine.run(["probabilities"], {"member_probabilities": Z})[0]

    def predict(self, images) -> list:
        return [self.classes[i] for i in self.predict_proba(images).argmax(1)]
