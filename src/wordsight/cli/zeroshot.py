from __future__ import annotations

import sys
from pathlib import Path

from ._common import add_feature_options, cache_arg, report_failures


def add_parser(sub):
    p = sub.add_parser("zeroshot", help="classify images from class names and descriptions, without training")
    p.add_argument("data", nargs="+", help="a folder, a .csv/.jsonl manifest, or image files")
    g = p.add_mutually_exclusive_group(required=True)
    g.add_argument("--classes", help='comma-separated class names: "cat,dog,bird"')
    g.add_argument("--classes-file", help="class names, one per line (.txt) or a JSON list")
    p.add_argument("--descriptions", default=None, help="class descriptions JSON {class: [texts]}; classes it "
                   "lacks are generated with --llm (or reported with --llm none)")
    p.add_argument("--method", default="descriptions",
                   choices=["names", "templates", "descriptions", "descriptors", "waffle"])
    p.add_argument("--llm", default="local", choices=["local", "openai", "none"],
                   help="who writes missing class descriptions (default: the packaged SmolLM2)")
    p.add_argument("--llm-url", default=None, help="openai: base URL of a chat-completions endpoint")
    p.add_argument("--llm-model", default=None, help="openai: model name")
    p.add_argument("--llm-key-env", default="OPENAI_API_KEY", help="openai: environment variable holding the key")
    p.add_argument("--k", type=int, default=5, help="descriptions per class to generate")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--save-descriptions", default=None, help="write the class descriptions used to this JSON file")
    p.add_argument("--view", default=None, choices=["plain", "light-background", "invert"],
                   help="transform images first (light-background: invert light-on-dark images, e.g. Fashion-MNIST)")
    p.add_argument("--way", default="linear", choices=["conse", "linear"],
                   help="ImageNet CNNs: into the text space by the DeViSE-style linear map (default) or ConSE")
    p.add_argument("--center", default="auto", choices=["auto", "yes", "no"],
                   help="subtract the mean of the given images' text vectors (auto: with 50 images or more)")
    p.add_argument("--top-t", type=int, default=None, help="ConSE: concepts mixed per image")
    p.add_argument("--text-model", default="minilm", help="text encoder for CNN and caption features")
    p.add_argument("--top-k", type=int, default=3, help="classes listed per image")
    p.add_argument("--out", default=None, help="write one row per image to .json, .jsonl or .csv")
    add_feature_options(p)
    p.set_defaults(func=run)


def read_classes(args) -> list[str]:
    import json

    if args.classes:
        classes = [c.strip() for c in args.classes.split(",") if c.strip()]
    else:
        path = Path(args.classes_file)
        if not path.exists():
            raise FileNotFoundError(f"{path}: classes file not found")
        text = path.read_text(encoding="utf-8")
        if path.suffix.lower() == ".json":
            data = json.loads(text)
            classes = list(data) if isinstance(data, (list, dict)) else []
        else:
            classes = [line.strip() for line in text.splitlines() if line.strip() and not line.startswith("#")]
    if len(classes) < 2:
        raise ValueError("zero-shot needs at least two classes (--classes \"a,b\" or --classes-file)")
    return classes


def run(args) -> int:
    from ..features import extract_features
    from ..language import (ZeroShotClassifier, cached_class_descriptions, generate_class_descriptions, get_view,
                            load_class_descriptions, save_class_descriptions)
    from ..language.images import image_text_vectors, text_side
    from ..language.records import write_records, zeroshot_records
    from ..language.semantic import DEFAULT_TOP_T

    classes = read_classes(args)
    llm_options = {}
    if args.llm == "openai":
        llm_options = {"base_url": args.llm_url, "model": args.llm_model, "api_key_env": args.llm_key_env}
    descriptions = None
    if args.method in ("descriptions", "descriptors"):
        if args.descriptions:
            descriptions = load_class_descriptions(args.descriptions, classes, missing="empty")
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

    view, view_key = get_view(args.view)
    feats = extract_features(args.data[0] if len(args.data) == 1 else args.data, args.model, cache=cache_arg(args),
                             batch_size=args.batch_size, quiet=args.quiet, view=view, view_key=view_key)
    status = report_failures(feats.failures, len(feats.samples), args.strict)
    if not feats.samples:
        return status or 1
    text_model = text_side(args.model, args.text_model)
    X = image_text_vectors(feats, args.model, text_model=text_model, way=args.way, top_t=args.top_t or DEFAULT_TOP_T)
    center = args.center == "yes" or (args.center == "auto" and len(X) >= 50)
    clf = ZeroShotClassifier(classes, descriptions=descriptions, method=args.method, text_model=text_model,
                             llm=args.llm, llm_options=llm_options, k=args.k, seed=args.seed,
                             center=center).fit(X if center else None)
    records = zeroshot_records(feats.paths, feats.labels, clf.classes_, clf.predict_proba(X), args.top_k)
    for r in records:
        top = ", ".join(f"{t['class']} ({t['score']:.2f})" for t in r["top"])
        print(f"{r['path']}\t{r['predicted']}\t{top}")
    # Folder labels name classes with "/" replaced ("T-shirt-top" for "T-shirt/top").
    by_label = {**{c.replace("/", "-"): c for c in classes}, **{c: c for c in classes}}
    labelled = [r for r in records if r["label"] in by_label]
    if labelled:
        acc = sum(r["predicted"] == by_label[r["label"]] for r in labelled) / len(labelled)
        print(f"accuracy on {len(labelled)} labelled image(s): {100 * acc:.1f}%", file=sys.stderr)
    if args.out:
        write_records(records, args.out)
        print(f"{len(records)} prediction(s) -> {args.out}", file=sys.stderr)
    return status
