"""``wordsight engines``: what ``engine='auto'`` measured on this machine, when, and what it chose."""
from __future__ import annotations

import sys

HELP = "show (or --measure again) the engine and precision auto chose on this CPU"


def add_parser(sub):
    p = sub.add_parser("engines", help=HELP)
    p.add_argument("--measure", action="store_true",
                   help="measure the engines of --model again (and run the bf16 gate if it has not run)")
    p.add_argument("--model", action="append", default=None,
                   help="image encoder to measure (repeatable; default efficientnet-lite0)")
    p.add_argument("--precision", default="auto", choices=["auto", "fp32"],
                   help="what auto may choose among: auto (every precision that passed the gate) or fp32 engines")
    p.set_defaults(func=run)


def header_lines() -> list[str]:
    """The CPU, what it can compute, the versions and the precision pin, one line each."""
    import os

    from ..features.engines.cpu import ENV, capabilities, cpu_model
    from ..features.engines.default_precision import ENV as PIN
    from ..features.engines.default_precision import pinned
    from ..features.engines.engine_choice import versions

    caps = capabilities()
    forced = f" (forced by ${ENV})" if os.environ.get(ENV) is not None else ""
    yes = {True: "yes", False: "no"}
    pin = pinned()
    return [f"CPU: {cpu_model()}; bf16 (AVX512_BF16/AMX): {yes[caps['bf16']]}; int8 dot products "
            f"(VNNI/AMX-INT8): {yes[caps['int8_vnni']]}{forced}",
            "versions: " + ", ".join(f"{k} {v}" for k, v in versions().items()),
            "default precision: auto" + (f", pinned to {pin} by ${PIN}" if pin else "")]


def entry_line(key: str, entry: dict) -> str:
    """One stored choice: model, choice, every rate, when, and whether it is stale."""
    from ..features.engines.engine_choice import stale

    name = entry.get("model") or key.split("|", 1)[0]
    why = stale(entry)
    if why == "unreadable":
        return f"{name}: an unreadable entry, measured again on next use"
    rates = ", ".join(f"{k} {v:.1f}" for k, v in sorted(entry.get("images_per_second", {}).items(),
                                                          key=lambda kv: -kv[1]))
    return (f"{name} (precision {entry.get('asked', key.split('precision=')[-1].split('|')[0])}): "
            f"{entry['engine']}/{entry['precision']}; img/s {rates}; measured {entry.get('measured', '?')}"
            + (f"; stale, measured again on next use: {why}" if why else ""))


def run(args) -> int:
    from ..encoders import load_model
    from ..features.engines import engine_choice
    from ..features.engines.runners import make_runner

    if args.measure:
        for name in args.model or ["efficientnet-lite0"]:
            engine_choice.forget(load_model(name))
            r = make_runner(name, "auto", args.precision)
            print(f"measured {name}: {r.engine}/{r.precision}", file=sys.stderr)
    for line in header_lines():
        print(line)
    entries = engine_choice.stored()
    if not entries:
        print("nothing measured yet: the first run with engine auto measures (or run `wordsight engines --measure`)")
    for key, entry in sorted(entries.items(), key=lambda kv: kv[1].get("measured", "")):
        print(entry_line(key, entry))
    return 0
