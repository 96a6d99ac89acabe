from __future__ import annotations

import sys

from ._common import add_feature_options, cache_arg, report_failures

HELP = "classify images from class names and descriptions, without training"


def add_parser(sub):
    from ..features.views import VIEW_CHOICES
    from ..frontend.counts import count_option
    from ..text.llm import BACKENDS
    from ..zeroshot.pipeline import CENTER_CHOICES, WAY_CHOICES
    from ..zeroshot.text_classifier import METHODS

    p = sub.add_parser("zeroshot", help=HELP)
    p.add_argument("data", nargs="+", help="a folder, a .csv/.jsonl manifest, or image files")
    g = p.add_mutually_exclusive_group(required=True)
    g.add_argument("--classes", help='class names, comma-separated ("cat,dog,bird") or a JSON list')
    g.add_argument("--classes-file", help="class names, one per line (.txt) or a JSON list (.json)")
    p.add_argument("--descriptions", "--class-descriptions", dest="descriptions", default=None,
                   help="class descriptions JSON {class: [texts]} (or as `wordsight describe-classes` writes it, with "
                   "weights); classes it lacks are generated with --llm (or reported with --llm none)")
    p.add_argument("--method", default="auto", choices=["auto", *METHODS],
                   help="auto: descriptions when --descriptions is given, else the class names (no LLM run)")
    p.add_argument("--llm", default="local", choices=list(BACKENDS),
                   help="who writes missing class descriptions for --method descriptions|descriptors "
                   "(default: the packaged SmolLM2)")
    p.add_argument("--llm-url", default=None, help="openai: base URL of a chat-completions endpoint")
    p.add_argument("--llm-model", default=None, help="openai: model name")
    p.add_argument("--llm-key-env", default="OPENAI_API_KEY", help="openai: environment variable holding the key")
    p.add_argument("--k", **count_option("k"), default=5, help="descriptions per class to generate")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--save-descriptions", default=None, help="write the class descriptions used to this JSON file")
    p.add_argument("--view", default="auto", choices=VIEW_CHOICES,
                   help="auto: invert light-on-dark images (Fashion-MNIST, scans), chosen from the images")
    p.add_argument("--ways", default="auto", choices=WAY_CHOICES,
                   help="ImageNet CNNs: into the text space by ConSE, the linear map, or both averaged (auto)")
    p.add_argument("--center", default="auto", choices=CENTER_CHOICES,
                   help="subtract the images' mean text vector (auto: with 50 images or more; others: (C-1)/C of it for C classes)")
    p.add_argument("--text-model", default="minilm", help="text encoder for CNN and caption features")
    p.add_argument("--top-k", **count_option("top_k"), default=3, help="classes listed per image")
    p.add_argument("--out", default=None, help="write one row per image to .json, .jsonl, .csv or .parquet")
    p.add_argument("--multilabel", action="store_true",
                   help="score each class as an independent tag against 'none' (several or no tags per image); "
                   "a manifest's 'labels' column gives mAP and F1")
    p.add_argument("--tiles", type=int, default=None, choices=[0, 2, 3, 4],
                   help="--multilabel: also score each tag on the grid x grid tiles of the image (the larger of "
                   "the whole image's and the best tile's score; 0: the whole image only; default 2, measured)")
    add_feature_options(p)
    p.set_defaults(func=run)


def read_classes(args) -> list[str]:
    """``--classes`` or ``--classes-file``, by the one class-list rule (:mod:`wordsight.frontend.classes`)."""
    from ..frontend import parse_classes, read_classes_file

    return parse_classes(args.classes, "--classes") if args.classes else read_classes_file(args.classes_file)


def _descriptions(args, classes, llm_options) -> dict | None:
    from ..frontend import read_descriptions
    from ..text import cached_class_descriptions, generate_class_descriptions, save_class_descriptions

    if args.method not in ("descriptions", "descriptors") and not (args.method == "auto" and args.descriptions):
        return None
    if args.descriptions:
        descriptions = read_descriptions(args.descriptions, classes)
        missing = [c for c in classes if not descriptions[c]]
        if missing and args.llm == "none":
            raise ValueError(f"{args.descriptions}: no descriptions for {', '.join(missing)} "
                             "(add them to the file, or let an LLM write them with --llm local|openai)")
        if missing:
            print(f"{args.descriptions}: no descriptions for {', '.join(missing)}; asking the {args.llm} LLM",
                  file=sys.stderr)
            descriptions.update(generate_class_descriptions(missing, args.llm, k=args.k, seed=args.seed, **llm_options))
    else:
        descriptions = cached_class_descriptions(classes, args.llm, k=args.k, seed=args.seed, **llm_options)
    if args.save_descriptions:
        save_class_descriptions(descriptions, args.save_descriptions)
        print(f"class descriptions -> {args.save_descriptions}", file=sys.stderr)
    return descriptions


def run(args) -> int:
    import numpy as np

    from ..frontend import check_top_k
    from ..io.output_files import check_output_file
    from ..io.records import FORMATS, predictions, write_records
    from ..zeroshot.image_text import describe_features
    from ..zeroshot.pipeline import ZeroShotPipeline

    if args.out:
        check_output_file(args.out, FORMATS)
    classes = read_classes(args)
    top_k = check_top_k(args.top_k, len(classes))
    llm_options = {}
    if args.llm == "openai":
        llm_options = {"base_url": args.llm_url, "model": args.llm_model, "api_key_env": args.llm_key_env}
    descriptions = _descriptions(args, classes, llm_options)
    options = dict(encoder=args.model, text_model=args.text_model, method=args.method, descriptions=descriptions,
                   view=args.view, ways=args.ways, center=args.center, zero_shot_options={"k": args.k, "seed": args.seed},
                   cache=cache_arg(args), batch_size=args.batch_size, quiet=args.quiet)
    if args.multilabel:
        from ._tags import run_tags

        return run_tags(args, classes, top_k, options)
    pipeline = ZeroShotPipeline(classes, **options)
    data = args.data[0] if len(args.data) == 1 else args.data
    pipeline.fit(data)
    logp, feats = pipeline.predict_log_proba(data)
    status = report_failures(feats.failures, len(feats.samples), args.strict)
    if not feats.samples:
        return status or 1
    print(f"zero-shot: view {pipeline.view_}, ways {', '.join(pipeline.ways_)}, "
          f"{'centred on these images' if pipeline.centered_ else 'not centred'}", file=sys.stderr)
    words = describe_features(feats, args.model, text_model=args.text_model)  # as POST /v1/zeroshot answers
    records = predictions(feats.paths, feats.labels, pipeline.classes_, np.exp(logp), top_k, words)
    for r in records:
        top = ", ".join(f"{c} ({p:.2f})" for c, p in r.top_k)
        print(f"{r.path}\t{r.predicted}\t{top}")
    from ..io.datasets import folder_label_index

    by_label = folder_label_index(classes)
    labelled = [r for r in records if r.label in by_label]
    if labelled:
        acc = sum(r.predicted == by_label[r.label] for r in labelled) / len(labelled)
        print(f"accuracy on {len(labelled)} labelled image(s): {100 * acc:.1f}%", file=sys.stderr)
    if args.out:
        write_records(records, args.out)
        print(f"{len(records)} prediction(s) -> {args.out}", file=sys.stderr)
    from ._media import print_record_timelines

    print_record_timelines(records, to_stdout=bool(args.out))
    return status
