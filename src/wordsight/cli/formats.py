from __future__ import annotations

HELP = "list the image, video, DICOM and TIFF formats this installation reads"


def add_parser(sub):
    p = sub.add_parser("formats", help=HELP)
    p.set_defaults(func=run)


def run(args) -> int:
    from ..io.formats import format_lines

    for line in format_lines():
        state = "yes" if line.readable else "NO "
        print(f"{state}  {line.kind:<11} {line.extensions}\n     {line.detail}")
        if line.adds:
            print(f"     {'to read it' if not line.readable else 'for the rest'}: {line.adds}")
    return 0
