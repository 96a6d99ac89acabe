"""Fine-tuning reads labelled videos, DICOM and multi-page TIFF as frames like ``fit``: each sampled
frame is a training row with its file's label, decoded when its batch needs it (never all held),
checked in one pass per file; a file that cannot be listed or frames that do not decode are reported."""
from __future__ import annotations

import json
import math

import numpy as np
import pytest

from wordsight.io.media_options import MediaOptions, use_media_options
from wordsight.training.finetune import FinetuneOptions, finetune

from .conftest import photo, write_dicom, write_video

OPTIONS = dict(epochs=1, batch_size=4, val_fraction=0.25, checkpoint_every=100, blocks=1)


@pytest.fixture(scope="module")
def labelled(tmp_path_factory):
    """cat/: a 1 s cat video and a 2-frame DICOM of the cat; coffee/: a 1 s coffee video, a 2-page
    TIFF of coffee and a truncated video."""
    import tifffile

    root = tmp_path_factory.mktemp("ft-media")
    cat, coffee = photo("chelsea"), photo("coffee")
    (root / "cat").mkdir()
    (root / "coffee").mkdir()
    write_video(root / "cat" / "walk.mp4", [(cat, 10)])
    write_video(root / "coffee" / "cup.mp4", [(coffee, 10)])
    grey = np.stack([cat[..., 1], np.roll(cat[..., 1], 3, axis=1)]).astype(np.uint16) * 100
    write_dicom(root / "cat" / "xray.dcm", grey)
    with tifffile.TiffWriter(root / "coffee" / "scan.tif") as tw:
        for shift in (0, 5):
            tw.write(np.roll(coffee, shift, axis=0), photometric="rgb")
    cut = write_video(root / "cut.mp4", [(coffee, 10)])
    (root / "coffee" / "cut.mp4").write_bytes(cut.read_bytes()[:300])
    cut.unlink()
    return root


def test_frames_are_training_rows_with_their_files_label(labelled, tmp_path):
    with use_media_options(MediaOptions(sample="every", every=2)):
        r = finetune(labelled, "efficientnet-lite0", tmp_path / "run", FinetuneOptions(**OPTIONS), quiet=True)
    assert r.classes == ["cat", "coffee"]
    assert [(f.path, f.reason.split(":")[0]) for f in r.failures] == [
        (str(labelled / "coffee" / "cut.mp4"), "cannot read the video container")]
    # cat: 5 video frames + 2 DICOM frames; coffee: 5 video frames + 2 TIFF pages = 14 rows, 4 held out
    state = json.loads((tmp_path / "run" / "state.json").read_text())
    assert r.steps == state["step"] == math.ceil((14 - 4) / OPTIONS["batch_size"])
    assert r.trained_tensors > 0 and r.history and np.isfinite(r.history[0]["train_loss"])


def test_a_frame_trains_on_the_pixels_extraction_embeds(labelled):
    from wordsight.encoders import get_config
    from wordsight.features.engines.batch import EmbedBatch
    from wordsight.features.engines.media_frames import decode_group
    from wordsight.io.sources import open_source
    from wordsight.training.finetune import _Images, _readable

    src = open_source(labelled, media=MediaOptions(sample="every", every=2))
    kept, failures = _readable(src)
    assert len(kept) == 14 and [f.path for f in failures] == [str(labelled / "coffee" / "cut.mp4")]
    frames = [s for s in kept if s.path.kind in ("video", "dicom", "tiff")]
    assert {s.label for s in frames if s.path.file.endswith("walk.mp4")} == {"cat"}
    images = _Images(kept, get_config("efficientnet-lite0"), FinetuneOptions(augment=False), flexible=True)
    fn = EmbedBatch("efficientnet-lite0", engine="torch", cache=False)
    assert [kept[i].path.kind for i in (0, 3, 5, 9, 12)] == ["video", "video", "dicom", "video", "tiff"]
    for i in (0, 3, 5, 9, 12):  # cat video, cat DICOM, coffee video, coffee TIFF rows
        s = kept[i]
        want = decode_group([s], fn.frame_input)[s.path.frame][0]
        np.testing.assert_allclose(images.array(i, None), want, atol=1e-6)


def test_fit_finetune_on_a_folder_of_videos(labelled, tmp_path, capsys):
    from wordsight.cli import main

    out = tmp_path / "model"
    rc = main(["fit", str(labelled), "--finetune", "last-blocks", "--finetune-epochs", "1", "--finetune-blocks", "1",
               "--finetune-batch-size", "8", "--every", "5", "--fusion", "image", "--out", str(out), "--quiet"])
    err = capsys.readouterr().err
    assert rc == 0, err
    assert "fine-tuned efficientnet-lite0 (last-blocks" in err and "cut.mp4" in err
    rows = tmp_path / "rows.jsonl"
    assert main(["predict", str(out), str(labelled / "cat" / "walk.mp4"), "--every", "5", "--out", str(rows),
                 "--quiet"]) == 0
    assert [(r["frame"], r["time_s"]) for r in map(json.loads, rows.read_text().splitlines())] == [(0, 0.0), (5, 0.5)]
