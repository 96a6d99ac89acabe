"""What the JPEG scan limit costs and saves: Pillow's decoding time against the number of scans
(a flat progressive JPEG with copies of its last scan appended, as in issue 28's file), the time
to count the scans of a real photo (the work added to every JPEG read), and the time to refuse a
file over the limit.

    OMP_NUM_THREADS=1 nice python benchmarks/jpeg_scans.py --side 1000 --scans 10 100 1000 5000
"""
from __future__ import annotations

import argparse
import io
import time

import numpy as np
from PIL import Image

from wordsight.io.images import ImageError, decode_image
from wordsight.io.jpeg_scans import count_scans


def progressive(side: int, extra: int) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(np.full((side, side, 3), 128, np.uint8)).save(buf, "JPEG", progressive=True)
    data = buf.getvalue()
    last = data.rfind(b"\xff\xda")
    return data[:-2] + data[last:-2] * extra + b"\xff\xd9"


def best_of(fn, repeat: int = 3) -> float:
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def photo(side: int) -> bytes:
    from skimage import data

    img = Image.fromarray(data.chelsea()).resize((side, side * 3 // 4))
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=90, progressive=True)
    return buf.getvalue()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--side", type=int, default=1000)
    ap.add_argument("--scans", type=int, nargs="+", default=[10, 100, 1000, 5000])
    args = ap.parse_args()
    print(f"flat {args.side}x{args.side} progressive JPEG, Pillow decode (no limit) vs wordsight's decode_image")
    for n in args.scans:
        data = progressive(args.side, n - 10)
        raw = best_of(lambda: Image.open(io.BytesIO(data)).load(), 1 if n > 1000 else 3)

        def guarded():
            try:
                decode_image(data)
            except ImageError:
                pass

        ours = best_of(guarded, 1 if n <= 100 and args.side > 2000 else 3)
        print(f"  {n:6d} scans, {len(data):9,d} bytes: Pillow {raw * 1000:9.1f} ms   "
              f"decode_image {ours * 1000:9.1f} ms ({'decoded' if n <= 100 else 'refused'})")
    for side in (1000, 4000):
        data = photo(side)
        t_count = best_of(lambda: count_scans(data), 20)
        t_decode = best_of(lambda: Image.open(io.BytesIO(data)).load(), 3)
        print(f"real photo {side}x{side * 3 // 4} progressive, {len(data):,} bytes, {count_scans(data)} scans: "
              f"counting {t_count * 1000:.2f} ms, decoding {t_decode * 1000:.1f} ms "
              f"({100 * t_count / t_decode:.2f}% added)")


if __name__ == "__main__":
    main()
