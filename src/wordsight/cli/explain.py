from __future__ import annotations

import json
import sys

HELP = "heatmaps and the words behind a model's predictions"


def add_parser(sub):
    from ..explain.api import METHODS
    from ..frontend.counts import count_option

    p = sub.add_parser("explain", help=HELP)
    p.add_argument("model", help="a saved wordsight model folder, or an encoder name (explains its ImageNet head)")
    p.add_argument("images", nargs="+", help="image files or folders; videos, DICOM and multi-page TIFF give a "
                   "heatmap per sampled frame (the frame options below, as predict)")
    p.add_argument("--out", required=True, help="output folder: <image>.<method>.png overlays, .npy maps, "
                   "evidence.json")
    p.add_argument("--method", default="gradcam", choices=METHODS,
                   help="gradcam/gradcam++ (CNN encoders; inside each tile of a tile bag), rollout (hf: ViTs), "
                   "lime or shap (any model), tiles (a tile bag's mil head: each tile's pooling weight)")
    p.add_argument("--class", dest="target", default=None, help="class to explain (default: the predicted one)")
    p.add_argument("--encoder", default=None, help="which encoder's pixels to explain (models with several)")
    p.add_argument("--lime-samples", **count_option("lime_samples"), default=None,
                   help="LIME perturbations per image (default 200)")
    p.add_argument("--shap-evals", **count_option("shap_evals"), default=None,
                   help="SHAP: at most this many model calls per image (default 200)")
    p.add_argument("--sentence", action="store_true", help="also write a sentence from the evidence with an LLM")
    p.add_argument("--llm", default="local", help="LLM backend for --sentence: local, openai, none")
    from ._media import add_media_options

    add_media_options(p)
    p.set_defaults(func=run)


def run(args) -> int:
    from ..explain._pipeline import as_subject
    from ..explain.api import explain_one, output_stem
    from ..io.images import ImageError
    from ..io.media_ref import media_of
    from ..io.output_files import check_output_folder
    from ..io.sources import open_source

    out = check_output_folder(args.out)
    subject = as_subject(args.model, args.encoder)
    out.mkdir(parents=True, exist_ok=True)
    source = open_source(list(args.images))  # videos, DICOM, multi-page TIFF: a row per sampled frame
    for p in source.problems:
        print(f"  {p.path}: {p.reason}", file=sys.stderr)
    records, failed, stems = [], len(source.problems), set()
    for sample in source.samples:
        path = sample if media_of(sample.path) is not None else sample.path
        try:
            e = explain_one(subject, path, args.method, args.target, lime_samples=args.lime_samples,
                            shap_evals=args.shap_evals, sentence=args.sentence, llm=args.llm)
        except ImageError as err:
            print(f"  {err}", file=sys.stderr)
            failed += 1
            continue
        path = sample.path
        stem = output_stem(path)
        while stem in stems:  # same file name in two folders
            stem += "_"
        stems.add(stem)
        written = e.save(out, stem)
        records.append({**e.to_json(), "files": written})
        ev = e.evidence
        words = ", ".join(c["name"] for c in ev["concepts"][:3] if c.get("listed", True))  # above the threshold
        print(f"{path}: {ev['predicted']} ({ev['top_k'][0][1]:.2f}); explained {e.target} -> {written['overlay']}"
              + (f"; resembles {words}" if words else "; no ImageNet concept fits well" if ev["concepts"] else ""))
    (out / "evidence.json").write_text(json.dumps(records, indent=2))
    print(f"{len(records)} image(s) explained with {args.method} -> {out}", file=sys.stderr)
    return 1 if failed and not records else 0
