from __future__ import annotations

import sys

HELP = "export a saved model to ONNX (image encoder, text encoder, head, runner)"


def add_parser(sub):
    p = sub.add_parser("export", help=HELP)
    p.add_argument("model_dir", help="a folder written by Classifier.save / `wordsight fit`")
    p.add_argument("--format", choices=["onnx"], default="onnx")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--no-text", action="store_true", help="leave out the text encoder")
    p.set_defaults(func=run)


def run(args) -> int:
    from ..export import export_onnx
    from ..io.output_files import check_output_folder

    check_output_folder(args.out)
    out = export_onnx(args.model_dir, args.out, text=not args.no_text)
    files = sorted(p.name for p in out.iterdir())
    print(f"exported {args.model_dir} -> {out}: {', '.join(files)}\n"
          f"run it: python -c \"import sys; sys.path.insert(0, '{out}'); from runner import Pipeline; "
          f"print(Pipeline('{out}').predict(['IMAGE.jpg']))\"", file=sys.stderr)
    lower = _lower_precisions(args.model_dir)
    if lower:
        print(f"note: the model's features were {lower} at fit; the ONNX export computes fp32 features, so its "
              "probabilities agree with `wordsight predict` within the quality gate's tolerance, not bit for bit "
              "(fit with --precision fp32 for an export equal to predict_proba within 1e-5)", file=sys.stderr)
    return 0


def _lower_precisions(model_dir) -> str:
    """The encoders whose features the fit computed below fp32 (``"efficientnet-lite0 bf16"``), or ""."""
    from ..estimator import read_config
    from ..storage import ModelFolderError

    try:
        encoders = read_config(model_dir).get("encoders") or []
    except ModelFolderError:  # a folder of an earlier version (exported all the same): fp32 then
        return ""
    return ", ".join(f"{e['name']} {e['precision']}" for e in encoders
                     if isinstance(e, dict) and e.get("precision", "fp32") != "fp32")
