from __future__ import annotations

HELP = "list the registered models and whether their weights are here"


def add_parser(sub):
    p = sub.add_parser("models", help=HELP)
    p.add_argument("pattern", nargs="?", default="*", help="shell-style filter, e.g. 'efficientnet*'")
    p.set_defaults(func=run)


def run(args) -> int:
    from ..encoders import get_config, list_models, list_prefixes

    rows = [("name", "kind", "dim", "input", "licence", "offline", "weights")]
    for name in list_models(args.pattern):
        c = get_config(name)
        size = f"{c.input_size}px" if c.input_size else "-"
        rows.append((name, c.modality, str(c.dim), size, c.licence, "yes" if c.available() else "no",
                     c.weight_source if c.available() else f"missing: {c.install_hint}"))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]) - 1)]
    for r in rows:
        print("  ".join(v.ljust(w) for v, w in zip(r, widths)) + "  " + r[-1])
    from ..encoders.finetuned import PREFIX as FT
    from ..encoders.tilebag import PREFIX as BAG
    from ..encoders.tiles import PREFIX as TILES

    print(f"\nprefixes for fine-tuned encoders: {FT}:<base>@<weights digest>, loaded from the saved model that holds "
          "them (wordsight fit --finetune)")
    print(f"prefixes for tiles of an image encoder: {TILES}:<grid>:<encoder> (e.g. {TILES}:2:efficientnet-lite0: "
          "the 2x2 tiles' embeddings, max- and mean-pooled)")
    print(f"prefixes for bags of tiles: {BAG}:<grid>[,<grid>]:<encoder> (e.g. {BAG}:2,3:efficientnet-lite0: "
          "the 13 tiles of a 2x2 and a 3x3 split, each read as its own image, for --head mil)")
    print("prefixes (weights from the Hugging Face hub or a local folder): "
          + ", ".join(f"{p}:<id or folder>" for p in list_prefixes() if p not in (FT, TILES, BAG)))
    return 0
