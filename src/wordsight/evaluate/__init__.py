"""Metrics, the few-shot protocol and the evaluation report (JSON + HTML + PNG)."""
from .fewshot import draw_k_shot, few_shot_curve
from .metrics import calibration, classification_metrics, confusion, top_k_accuracy
from .report import evaluate, write_report
from .report_html import headline_table

__all__ = ["calibration", "classification_metrics", "confusion", "draw_k_shot", "evaluate", "few_shot_curve",
           "headline_table", "top_k_accuracy", "write_report"]
