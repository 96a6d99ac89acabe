"""One frame of a video, DICOM or TIFF (or a plain image) as a PIL image: thumbnails, the timeline picture."""
from __future__ import annotations

from pathlib import Path

from .images import decode_image
from .media_ref import MediaError, media_of


def sample_image(sample, draft_size: int | None = None):
    """The RGB image of ``sample`` (a frame decoded alone: for a few thumbnails, not for extraction);
    ``draft_size``: a JPEG decoded reduced, both sides at least this large (``decode_image``)."""
    from PIL import Image

    ref = media_of(sample.path)
    data = getattr(sample, "data", None)
    if ref is None or ref.kind == "image":
        from .images import DEFAULT_MAX_FILE_BYTES
        from .safe_files import read_regular

        raw = data if data is not None else read_regular(str(sample.path), DEFAULT_MAX_FILE_BYTES)
        return decode_image(raw, draft_size=draft_size, window=ref.window if ref is not None else None)
    src = data if data is not None else Path(ref.file)
    if ref.kind == "video":
        from .video import decode_frames

        for _, pixels, err in decode_frames(src, [ref.frame]):
            if pixels is None:
                raise MediaError(err)
            return Image.fromarray(pixels, "RGB")
    from .dicom import decode_frame
    from .tiff import decode_page

    read = decode_frame if ref.kind == "dicom" else decode_page
    return Image.fromarray(read(src, ref.frame, ref.window), "RGB")
