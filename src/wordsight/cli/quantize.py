"""``wordsight quantize``: build a lower precision of an encoder and run the quality gate on it."""
from __future__ import annotations

import sys

HELP = "build int8 (or check bf16) for an encoder and gate it on held-out images"
MAX_HOLDOUT = 2000  # images decoded into memory at once: 2000 x 3 x 224 x 224 float32 = 1.2 GB


def add_parser(sub):
    p = sub.add_parser("quantize", help=HELP)
    p.add_argument("--model", default="efficientnet-lite0", help="image encoder (default: efficientnet-lite0)")
    p.add_argument("--precision", choices=["int8", "bf16"], default="int8")
    p.add_argument("--engine", choices=["openvino", "onnx"], default="openvino",
                   help="openvino: the built-in NNCF recipe (int8) or bf16; onnx: ONNX Runtime's QDQ int8")
    p.add_argument("--holdout", default=None,
                   help="held-out images to gate on (folder with class sub-folders, manifest or files; labels "
                   "feed the probe); default: crops of scikit-image photos that calibration never sees")
    p.set_defaults(func=run)


def holdout_arrays(data, model: str):
    """Preprocessed held-out images and their labels (None where unlabelled), as extraction sees them."""
    import numpy as np

    from ..features.engines.batch import EmbedBatch, read_bytes
    from ..io.sources import open_source

    source = open_source(data)
    samples = source.samples
    for problem in source.problems:  # dangling links, unreadable entries: found while listing
        print(f"{problem.path}: skipped ({problem.reason})", file=sys.stderr)
    if len(samples) > MAX_HOLDOUT:
        raise ValueError(f"{data}: {len(samples)} held-out images, at most {MAX_HOLDOUT}")
    fn = EmbedBatch(model, engine="torch", cache=False)
    xs, labels = [], []
    for s in samples:
        raw, err = read_bytes(s)
        x, err = fn.decode(raw) if raw is not None else (None, err)
        if x is None:
            print(f"{s.path}: skipped ({err})", file=sys.stderr)
            continue
        xs.append(x)
        labels.append(s.label)
    if len(xs) < 10:
        raise ValueError(f"{data}: {len(xs)} readable held-out images; the gate needs at least 10")
    return np.stack(xs), (labels if all(v is not None for v in labels) else None)


def run(args) -> int:
    from ..encoders import load_model
    from ..features.engines.precisions import gate_report, gated_model, variants
    from ..features.engines.quality_gate import QuantizationRefused, summary

    enc = load_model(args.model)
    holdout = labels = None
    if args.holdout:
        holdout, labels = holdout_arrays(args.holdout, args.model)
    try:
        path = gated_model(enc, args.engine, args.precision, holdout=holdout, labels=labels)
    except QuantizationRefused as e:
        print(str(e), file=sys.stderr)
        return 1
    for variant in variants(args.engine, args.precision):  # what was tried, in turn (stored: only read here)
        report = gate_report(enc, args.engine, args.precision, holdout=holdout, labels=labels, variant=variant)
        if report["accepted"]:
            break
        print(f"{args.precision} ({args.engine}, {variant}) refused: {summary(report['figures'])}; tried next: "
              "accuracy-aware quantisation", file=sys.stderr)
    print(f"{args.precision} ({args.engine}) accepted for {args.model}: {summary(report['figures'])} "
          f"[{report['recipe']}] -> {path}")
    return 0
