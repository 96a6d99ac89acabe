"""``wordsight zeroshot --multilabel``: each class scored as an independent tag against "none"
(:mod:`wordsight.zeroshot.tags`); with label sets in a manifest, the metrics ``evaluate`` prints."""
from __future__ import annotations

import sys

import numpy as np


def tag_metrics(tags, labels, proba) -> dict:
    """mAP, micro/macro-F1 at 0.5 and the label-frequency baseline of labelled images."""
    from ..estimator.tasks import MultiLabelTask
    from ..evaluate.multi_label import label_set_scores

    task = MultiLabelTask(np.full(len(tags), 0.5))
    Y = task.targets(labels, tags)  # a label that is none of the tags: one line naming it
    return label_set_scores(task, Y, proba, tags)


def run_tags(args, classes, top_k: int, pipeline_options: dict) -> int:
    from ..io.label_sets import label_cell
    from ..io.records import write_records
    from ..zeroshot.tags import DEFAULT_TILES, fit_tag_probabilities, tag_pipeline, tag_records
    from ._common import report_failures

    pipeline = tag_pipeline(classes, **pipeline_options)
    data = args.data[0] if len(args.data) == 1 else args.data
    tiles = DEFAULT_TILES if getattr(args, "tiles", None) is None else args.tiles
    proba, feats = fit_tag_probabilities(pipeline, data, tiles=tiles)  # fit and score: one read of each image
    status = report_failures(feats.failures, len(feats.samples), args.strict)
    if not feats.samples:
        return status or 1
    records = tag_records(feats.paths, feats.labels, classes, proba, top_k)
    for r in records:
        print(f"{r.path}\t{label_cell(r.predicted)}\t" + ", ".join(f"{c} ({p:.2f})" for c, p in r.top_k))
    labelled = [i for i, lab in enumerate(feats.labels) if isinstance(lab, tuple)]
    if labelled:
        m = tag_metrics(classes, [feats.labels[i] for i in labelled], proba[labelled])
        print(f"on {len(labelled)} labelled image(s): mAP {m['mAP']:.2%} (label-frequency baseline "
              f"{m['frequency_baseline_mAP']:.2%}), micro-F1 {m['micro_f1']:.4f}, macro-F1 {m['macro_f1']:.4f}",
              file=sys.stderr)
    if args.out:
        write_records(records, args.out)
        print(f"{len(records)} prediction(s) -> {args.out}", file=sys.stderr)
    return status
