"""The one folder discipline every saved object uses (:mod:`wordsight.storage`): a save killed
at any instant leaves the old model or the new one, never neither; a folder that is not a saved
wordsight folder is never written over; ``wordsight.load`` reads the kind a folder declares; the
zero-shot folders are verified like the Classifier's."""
from __future__ import annotations

import hashlib
import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import wordsight
from wordsight.estimator import Classifier, FittedModel
from wordsight.estimator.heads import LogisticHead
from wordsight.storage import ModelFolderError, read_folder, write_folder

from .conftest import resign

FORMAT = "wordsight-test-object"


def _save(folder: Path, payload: bytes) -> str:
    def write(tmp: Path) -> dict:
        for i in range(3):
            (tmp / f"part{i}.bin").write_bytes(payload)
        return {"format": FORMAT, "format_version": 1, "payload": hashlib.sha256(payload).hexdigest()}

    return write_folder(folder, write)


def _read(folder: Path):
    return read_folder(folder, (FORMAT,), version=1, what="test object")


# A child that overwrites the folder again and again, alternating two payloads (3 x 4 MB each).
CHILD = """
import hashlib, itertools, sys
from pathlib import Path
from wordsight.storage import write_folder

def save(payload):
    def write(tmp):
        for i in range(3):
            (tmp / f"part{{i}}.bin").write_bytes(payload)
        return {{"format": {fmt!r}, "format_version": 1, "payload": hashlib.sha256(payload).hexdigest()}}
    write_folder(Path(sys.argv[1]), write)

print("ready", flush=True)
for i in itertools.count():
    save((b"A" if i % 2 else b"B") * (4 << 20))
"""

SLOW_CHILD = """
import sys, time
from pathlib import Path
from wordsight.storage import write_folder

def write(tmp):
    (tmp / "part0.bin").write_bytes(b"new")
    print("writing", flush=True)
    time.sleep(120)
    return {{"format": {fmt!r}, "format_version": 1}}

write_folder(Path(sys.argv[1]), write)
"""


def _child(code: str, folder: Path) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    return subprocess.Popen([sys.executable, "-c", code, str(folder)], stdout=subprocess.PIPE, text=True, env=env)


def test_kill_9_while_overwriting_leaves_a_whole_model_each_time(tmp_path):
    folder = tmp_path / "model"
    _save(folder, b"B" * (4 << 20))
    payloads = {hashlib.sha256(p * (4 << 20)).hexdigest() for p in (b"A", b"B")}
    rng = random.Random(0)
    for _ in range(6):
        child = _child(CHILD.format(fmt=FORMAT), folder)
        assert child.stdout.readline().strip() == "ready"
        time.sleep(rng.uniform(0.05, 0.6))  # somewhere in a write, a seal or a swap
        child.send_signal(signal.SIGKILL)
        child.wait(30)
        child.stdout.close()
        stored = _read(folder)  # every checksum right: one whole model, not a mix
        assert stored.config["payload"] in payloads
        assert all(hashlib.sha256(stored.read(f"part{i}.bin")).hexdigest() == stored.config["payload"]
                   for i in range(3))
    _save(folder, b"C")  # the next save clears what the killed ones left beside the folder
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model"]
    assert _read(folder).read("part0.bin") == b"C"


def test_kill_9_before_the_swap_keeps_the_old_model(tmp_path):
    folder = tmp_path / "model"
    _save(folder, b"old")
    child = _child(SLOW_CHILD.format(fmt=FORMAT), folder)
    assert child.stdout.readline().strip() == "writing"
    child.send_signal(signal.SIGKILL)
    child.wait(30)
    child.stdout.close()
    assert _read(folder).read("part0.bin") == b"old"
    assert any(p.name.startswith(".model.wordsight-") for p in tmp_path.iterdir())  # the killed save's files


def test_a_save_that_fails_midway_leaves_the_old_model_and_no_debris(tmp_path):
    folder = tmp_path / "model"
    _save(folder, b"old")

    def write(tmp):
        (tmp / "part0.bin").write_bytes(b"half")
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError, match="disk full"):
        write_folder(folder, write)
    assert _read(folder).read("part0.bin") == b"old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model"]


def test_overwriting_a_real_classifier_swaps_in_the_new_one(model_dir, tmp_path, photo_folder):
    clf = Classifier.load(model_dir)
    folder = tmp_path / "m"
    clf.save(folder)
    other = Classifier(head=LogisticHead(C=0.01)).fit(photo_folder)
    other.save(folder)
    back = Classifier.load(folder)
    assert back.head_.C == 0.01
    np.testing.assert_array_equal(back.head_.arrays["coef"], other.head_.arrays["coef"])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m"]


@pytest.mark.parametrize("content", [None, '{"format": "not-ours"}', "[]"], ids=["photos", "other-json", "list"])
def test_a_folder_that_is_not_a_saved_model_is_never_written_over(model_dir, tmp_path, content):
    clf = Classifier.load(model_dir)
    folder = tmp_path / "photos"
    folder.mkdir()
    (folder / "holiday.jpg").write_bytes(b"\xff\xd8 a photo")
    if content is not None:
        (folder / "config.json").write_text(content)
    with pytest.raises(ModelFolderError, match=r"photos: not empty and not a saved wordsight folder") as info:
        clf.save(folder)
    assert "\n" not in str(info.value)
    assert (folder / "holiday.jpg").read_bytes() == b"\xff\xd8 a photo"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["photos"]


def test_a_folder_holding_only_saved_folders_is_replaced_one_holding_more_is_not(tmp_path):
    """``fit --finetune`` checkpoints into its --out folder before the model is saved there."""
    folder = tmp_path / "model"
    (folder / "finetune-checkpoint").mkdir(parents=True)
    (folder / "finetune-checkpoint" / "state.json").write_text('{"format": "wordsight-finetune-checkpoint"}')
    _save(folder, b"new")
    assert sorted(p.name for p in folder.iterdir()) == ["config.json", "part0.bin", "part1.bin", "part2.bin"]
    other = tmp_path / "other"
    (other / "album").mkdir(parents=True)
    (other / "album" / "notes.json").write_text('{"format": "holiday"}')
    with pytest.raises(ModelFolderError, match="other: not empty and not a saved wordsight folder"):
        _save(other, b"new")
    assert (other / "album" / "notes.json").exists()


def test_a_link_or_a_file_as_the_target_is_refused(model_dir, tmp_path):
    clf = Classifier.load(model_dir)
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "link").symlink_to(tmp_path / "elsewhere")
    with pytest.raises(ModelFolderError, match="link: is a symbolic link"):
        clf.save(tmp_path / "link")
    (tmp_path / "file").write_text("x")
    with pytest.raises(ModelFolderError, match="file: exists and is not a folder"):
        clf.save(tmp_path / "file")


def test_wordsight_load_reads_the_declared_kind(model_dir, model_copy):
    clf = wordsight.load(model_dir)
    assert type(clf) is Classifier and isinstance(clf, FittedModel)
    assert not isinstance(Classifier(), FittedModel)  # not fitted: no classes_
    resign(model_copy, lambda c: c.update(format="wordsight-mystery"))
    with pytest.raises(ModelFolderError, match=r"declares format 'wordsight-mystery', not a model wordsight loads "
                                               r"\(wordsight-classifier, wordsight-ensemble, wordsight-anomaly-detector\)"):
        wordsight.load(model_copy)
    with pytest.raises(ModelFolderError, match="config.json: missing; .* is not a saved wordsight model"):
        wordsight.load(model_copy.parent)


# ---------------------------------------------------------------- the zero-shot folders
@pytest.fixture(scope="module")
def zero_shot_dir(tmp_path_factory):
    from wordsight.zeroshot import ZeroShotClassifier

    folder = tmp_path_factory.mktemp("zs") / "zs"
    ZeroShotClassifier(["cat", "dog", "kite"], method="templates").fit().save(folder)
    return folder


def _zs_copy(src, tmp_path):
    import shutil

    shutil.copytree(src, tmp_path / "zs")
    return tmp_path / "zs"


def test_a_zero_shot_folder_is_sealed_and_verified(zero_shot_dir, tmp_path):
    from wordsight.zeroshot import ZeroShotClassifier

    config = json.loads((zero_shot_dir / "zeroshot.json").read_text())
    data = (zero_shot_dir / "class_embeddings.safetensors").read_bytes()
    assert config["files"] == {"class_embeddings.safetensors": hashlib.sha256(data).hexdigest()}
    assert config["format"] == "wordsight-zero-shot-classifier"
    back = ZeroShotClassifier.load(zero_shot_dir)
    assert list(back.classes_) == ["cat", "dog", "kite"]
    dst = _zs_copy(zero_shot_dir, tmp_path)
    edited = json.loads((dst / "zeroshot.json").read_text())
    edited["classes"] = edited["classes"][::-1]  # reversed: every prediction mislabelled
    (dst / "zeroshot.json").write_text(json.dumps(edited))
    with pytest.raises(ModelFolderError, match="zeroshot.json: checksum mismatch: the config was edited"):
        ZeroShotClassifier.load(dst)


def test_a_zero_shot_folder_saved_before_checksums_still_loads(zero_shot_dir, tmp_path):
    from wordsight.zeroshot import ZeroShotClassifier

    dst = _zs_copy(zero_shot_dir, tmp_path)
    config = json.loads((dst / "zeroshot.json").read_text())
    for key in ("format", "format_version", "library_version", "files", "config_sha256"):
        config.pop(key)
    (dst / "zeroshot.json").write_text(json.dumps(config))
    back, want = ZeroShotClassifier.load(dst), ZeroShotClassifier.load(zero_shot_dir)
    np.testing.assert_array_equal(back.class_embeddings_, want.class_embeddings_)
    (dst / "class_embeddings.safetensors").unlink()
    (dst / "class_embeddings.safetensors").symlink_to("/dev/zero")
    with pytest.raises(ModelFolderError, match="is a link that leads out of the folder"):
        ZeroShotClassifier.load(dst)


def test_a_way_folder_linked_out_of_the_pipeline_is_refused(tmp_path, zero_shot_dir):
    """A pipeline's way folder may not be a link out of it, even re-signed."""
    from wordsight.zeroshot.pipeline import ZeroShotPipeline

    pipe = tmp_path / "pipe"
    pipe.mkdir()
    os.symlink(zero_shot_dir, pipe / "conse")
    (pipe / "pipeline.json").write_text(json.dumps({"format": "wordsight-zero-shot-pipeline", "encoder": "x",
                                                    "view": "plain", "ways": ["conse"]}))
    with pytest.raises(ModelFolderError, match="way folder 'conse' is a link that leads out of the folder"):
        ZeroShotPipeline.load(pipe)
    (pipe / "pipeline.json").write_text(json.dumps({"format": "wordsight-zero-shot-pipeline", "encoder": "x",
                                                    "view": "plain", "ways": ["../x"]}))
    with pytest.raises(ModelFolderError, match=r"field 'ways' must be a non-empty list of conse, linear"):
        ZeroShotPipeline.load(pipe)
