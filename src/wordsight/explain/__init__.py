"""Explanations: where in the image (Grad-CAM, Grad-CAM++, attention rollout, LIME) and in which
words (concepts, class descriptors, image vs text shares, an optional LLM sentence) a wordsight
model found the evidence for a class; and a check that the maps are faithful.

    from wordsight.explain import explain
    for e in explain("my-model/", ["cat.jpg"], method="gradcam"):
        e.overlay.save("cat.gradcam.png"); e.heatmap; e.evidence
"""
from . import ensemble_subject  # noqa: F401  (registers the ensemble's subject with as_subject)
from .api import METHODS, Explanation, explain, gradcam_overlay
from .evidence import class_texts, evidence_prompt, write_sentence
from .faithfulness import deletion_check

__all__ = ["METHODS", "Explanation", "class_texts", "deletion_check", "evidence_prompt", "explain",
           "gradcam_overlay", "write_sentence"]
