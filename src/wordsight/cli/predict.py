from __future__ import annotations

import csv
import json
import sys

from ._common import add_feature_options, add_ray_options, cache_arg, report_failures


def add_parser(sub):
    p = sub.add_parser("predict", help="classify images with a saved model")
    p.add_argument("model", help="model folder written by `wordsight fit`")
    p.add_argument("images", nargs="+", help="image files, folders or a .csv/.jsonl manifest")
    p.add_argument("--top-k", type=int, default=5, help="classes listed per image")
    p.add_argument("--out", default=None, help="write one row per image to .csv or .json (default: print)")
    p.add_argument("--no-describe", action="store_true", help="leave out the description in words")
    add_feature_options(p, model_default=None)
    p.add_argument("--engine", choices=["local", "ray"], default="local",
                   help="ray: the same batch callable on a Ray actor pool (no descriptions)")
    add_ray_options(p)
    p.set_defaults(func=run)


def ray_records(args, data) -> list[dict]:
    """The rows of ``predict_records``, computed on Ray by the engine-agnostic PredictBatch."""
    import numpy as np

    from ..features.engines.predict import PredictBatch, ray_predict

    classes = PredictBatch(args.model).classes
    rows = []
    for part in ray_predict(args.model, data, address=args.address, concurrency=args.concurrency,
                            num_cpus=args.num_cpus, num_gpus=args.num_gpus, cache=cache_arg(args),
                            quiet=args.quiet):
        for path, status, proba in zip(part["path"], part["status"], part["probabilities"]):
            ok = status == "ok"
            top = np.argsort(-proba)[: args.top_k] if ok else []
            rows.append({"path": str(path), "label": None, "predicted": classes[top[0]] if ok else None,
                         "top_k": [(classes[j], float(proba[j])) for j in top], "description": None,
                         "error": None if ok else str(status).removeprefix("error: ")})
    return rows


def run(args) -> int:
    from ..io.sources import Problem
    from ..models import Classifier

    data = args.images[0] if len(args.images) == 1 else args.images
    if args.engine == "ray":
        rows = ray_records(args, data)
    else:
        clf = Classifier.load(args.model)
        clf.set_params(cache=cache_arg(args), batch_size=args.batch_size, quiet=args.quiet)
        rows = clf.predict_records(data, top_k=args.top_k, describe=not args.no_describe)
    ok = [r for r in rows if r["error"] is None]
    if args.out:
        write_rows(rows, args.out)
        print(f"{len(ok)} image(s) classified -> {args.out}", file=sys.stderr)
    else:
        for r in ok:
            top = ", ".join(f"{c} {p:.2f}" for c, p in r["top_k"])
            print(f"{r['path']}\t{r['predicted']}\t{top}" + (f"\t{r['description']}" if r["description"] else ""))
    failures = [Problem(r["path"], r["error"]) for r in rows if r["error"] is not None]
    return report_failures(failures, len(ok), args.strict)


def write_rows(rows: list[dict], out: str) -> None:
    if out.lower().endswith(".json"):
        with open(out, "w", encoding="utf-8", errors="surrogateescape") as f:
            json.dump([{**r, "top_k": [{"class": c, "probability": p} for c, p in r["top_k"]]} for r in rows], f, indent=2)
        return
    if not out.lower().endswith(".csv"):
        raise ValueError(f"--out must end in .csv or .json, not {out!r}")
    k = max((len(r["top_k"]) for r in rows), default=0)
    # surrogateescape: a file name that is not UTF-8 is written as its own bytes, like ls does
    with open(out, "w", encoding="utf-8", errors="surrogateescape", newline="") as f:
        w = csv.writer(f)
        w.writerow(["path", "predicted", "probability"] + [x for i in range(1, k + 1) for x in (f"top{i}", f"p{i}")]
                   + ["description", "error"])
        for r in rows:
            top = [x for c, p in r["top_k"] for x in (c, f"{p:.6f}")]
            top += [""] * (2 * k - len(top))
            prob = f"{r['top_k'][0][1]:.6f}" if r["top_k"] else ""
            w.writerow([r["path"], r["predicted"] or "", prob] + top + [r["description"] or "", r["error"] or ""])
