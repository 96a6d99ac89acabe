"""Issue 14, model-folder cases 14-17: every edit re-signed with fresh checksums (an attacker who
knows the format), then loaded; plus ``wordsight serve`` refusing in one line."""
from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest

from wordsight.estimator import Classifier
from wordsight.estimator.heads import RandomForestHead
from wordsight.estimator.saved.persistence import ModelFolderError

from .conftest import refused_load, resign, write_head


def test_the_untouched_copy_loads(model_copy):
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no stray-file warning on a clean folder
        clf = Classifier.load(model_copy)
    assert list(clf.classes_) == ["astronaut", "cat", "coffee", "rocket"]


# ---------------------------------------------------------------- case 14: devices, absolute names, tta
def test_case14_head_linked_to_dev_zero(model_copy):
    (model_copy / "head.safetensors").unlink()
    (model_copy / "head.safetensors").symlink_to("/dev/zero")
    refused_load(model_copy, r"listed file 'head.safetensors' is a link that leads out of the folder")


def test_case14_head_replaced_by_a_fifo(model_copy):
    (model_copy / "head.safetensors").unlink()
    os.mkfifo(model_copy / "head.safetensors")
    refused_load(model_copy, r"head.safetensors: is a FIFO \(named pipe\), not a regular file")


def test_case14_config_linked_to_dev_zero(model_copy):
    (model_copy / "config.json").unlink()
    (model_copy / "config.json").symlink_to("/dev/zero")
    refused_load(model_copy, r"config.json: is a character device, not a regular file")


def test_case14_oversized_config(model_copy):
    from wordsight.estimator.saved.checks import MAX_CONFIG_BYTES

    with open(model_copy / "config.json", "ab") as f:
        f.write(b" " * MAX_CONFIG_BYTES)
    refused_load(model_copy, r"more than the limit of 8,388,608")


def test_case14_absolute_file_entry(model_copy):
    resign(model_copy, lambda c: c["files"].update({"/dev/zero": "0" * 64}))
    refused_load(model_copy, r"listed file '/dev/zero' is an absolute path")


@pytest.mark.parametrize("value", [1_000_000, -1, 2.5, "3"])
def test_case14_tta_bounded(model_copy, value):
    resign(model_copy, lambda c: c["params"].update(tta=value))
    refused_load(model_copy, r"params.tta' must be an integer in 0..64")


# ---------------------------------------------------------------- case 15: files outside the folder
def test_case15_parent_path_entry_is_never_read(model_copy):
    real = hashlib.sha256(Path("/etc/passwd").read_bytes()).hexdigest()
    resign(model_copy, lambda c: c["files"].update({"../../../../etc/passwd": "f" * 64}))
    msg = refused_load(model_copy, r"'../../../../etc/passwd' leaves the folder")
    assert real[:6] not in msg


def test_case15_link_out_of_the_folder(model_copy, tmp_path):
    (tmp_path / "outside.bin").write_bytes(b"x")
    (model_copy / "inner.bin").symlink_to(tmp_path / "outside.bin")
    resign(model_copy, lambda c: c["files"].update({"inner.bin": "f" * 64}))
    refused_load(model_copy, r"'inner.bin' is a link that leads out of the folder")


# ---------------------------------------------------------------- case 16: malformed fields, one line each
@pytest.mark.parametrize("edit, match", [
    (lambda c: c.update(classes=[]), "'classes' must be a list of at least two names"),
    (lambda c: c.update(classes=c["classes"][:3]), "lists 3 classes but the head answers 4"),
    (lambda c: c.update(classes="cat"), "'classes' must be a list"),
    (lambda c: c.update(encoders="efficientnet-lite0"), "'encoders' must be a list"),
    (lambda c: c.update(files=[]), "'files' must be an object listing head.safetensors"),
    (lambda c: c.update(head=None), "'head' must be"),
    (lambda c: c["encoders"][0].update(name="hf:../../etc"), "'hf:../../etc', a local path"),
    (lambda c: c.update(n_features_in="1280"), "'n_features_in' must be an integer"),
    (lambda c: c.update(prior={"folder": "../x", "weight": 0.5, "temperature": 1.0}), "'../x' leaves the folder"),
    (lambda c: c.update(prior={"folder": "zero_shot"}), "'prior.weight' must be a finite number"),
], ids=["no-classes", "three-of-four", "string-classes", "string-encoders", "files-list", "head-null",
        "encoder-path", "n-features-string", "prior-outside", "prior-no-weight"])
def test_case16_malformed_config_fields(model_copy, edit, match):
    resign(model_copy, edit)
    refused_load(model_copy, match)


def test_case16_config_is_a_folder(model_copy):
    (model_copy / "config.json").unlink()
    (model_copy / "config.json").mkdir()
    refused_load(model_copy, r"config.json: is a folder, not a file")


def test_case16_serve_refuses_in_one_line(model_copy):
    resign(model_copy, lambda c: c.update(classes=c["classes"][:3]))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    r = subprocess.run([sys.executable, "-m", "wordsight", "serve", str(model_copy), "--port", "0"],
                       capture_output=True, text=True, timeout=180, env=env)
    assert r.returncode == 1
    lines = r.stderr.strip().splitlines()
    assert "Traceback" not in r.stderr and len(lines) == 1, r.stderr
    assert lines[0].startswith("wordsight serve: error: ") and "lists 3 classes but the head answers 4" in lines[0]


def test_case16_server_startup_failure_is_one_line(model_copy):
    """A folder that breaks after the CLI's check (or a server built in Python) still fails in one line."""
    from wordsight.serve import BackgroundServer, ServeSettings

    resign(model_copy, lambda c: c.update(classes=["a", "a", "b", "c"]))
    server = BackgroundServer(ServeSettings(model_dir=str(model_copy), warm_up=False), startup_timeout=120)
    with pytest.raises(RuntimeError, match="start-up failed"):
        server.start()
    assert server.app.state.wordsight.startup_error.startswith("wordsight serve: cannot start")
    assert "holds a name twice" in server.app.state.wordsight.startup_error


# ---------------------------------------------------------------- case 17: silently accepted before
def test_case17_nan_weights(model_copy):
    def poison(a):
        a["coef"][0, 0] = np.nan

    write_head(model_copy, poison)
    refused_load(model_copy, r"head.safetensors: field 'coef' holds 1 NaN or infinite value")


def test_case17_inf_weights(model_copy):
    write_head(model_copy, lambda a: a["intercept"].__setitem__(0, np.inf))
    refused_load(model_copy, r"'intercept' holds 1 NaN or infinite")


def test_case17_int8_weights(model_copy):
    write_head(model_copy, lambda a: a.update(coef=a["coef"].astype(np.int8)))
    refused_load(model_copy, r"'coef' must be float32 or float64, not int8")


def test_case17_wrong_shape_weights(model_copy):
    write_head(model_copy, lambda a: a.update(coef=a["coef"][:, :10].copy()))
    refused_load(model_copy, r"the head does not take 1280 features")


def test_case17_reordered_and_duplicate_classes(model_copy):
    resign(model_copy, lambda c: c.update(classes=["cat", "astronaut", "coffee", "rocket"]))
    refused_load(model_copy, r"'classes' is not in the sorted order")
    resign(model_copy, lambda c: c.update(classes=["astronaut", "cat", "cat", "rocket"]))
    refused_load(model_copy, r"'classes' holds a name twice")


def test_case17_extra_pickle_is_reported_never_loaded(model_copy, tmp_path):
    marker = tmp_path / "executed"
    import pickle

    class Boom:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    (model_copy / "model.pkl").write_bytes(pickle.dumps(Boom()))
    with pytest.warns(UserWarning, match=r"model.pkl: not part of the saved model \(a pickle"):
        clf = Classifier.load(model_copy)
    assert not marker.exists() and len(clf.classes_) == 4


def test_case17_forest_nodes_that_loop_arerefused_load(photo_folder, tmp_path):
    """A random-forest head whose child index points back at its parent would walk forever."""
    folder = tmp_path / "forest"
    Classifier(head=RandomForestHead(n_estimators=2)).fit(photo_folder).save(folder)
    Classifier.load(folder)

    def loop(a):
        first_inner = int(np.flatnonzero(a["children_left"] != -1)[0])
        a["children_left"][first_inner] = first_inner

    write_head(folder, loop)
    refused_load(folder, r"'children_left' points outside its tree or backwards")


def test_held_unsigned_edits_arerefused_load(model_copy):
    config = json.loads((model_copy / "config.json").read_text())
    config["classes"][0] = "zebra"
    (model_copy / "config.json").write_text(json.dumps(config))
    refused_load(model_copy, "checksum mismatch: the config was edited")


@pytest.mark.parametrize("value", ["fp64", "../int8", 8, None])
def test_case13_recorded_feature_precision_must_be_one_we_know(model_copy, value):
    resign(model_copy, lambda c: c["encoders"][0].update(precision=value))
    with pytest.raises(ModelFolderError, match=r"config\.json: encoder precision .* is not one of fp32, bf16, int8"):
        Classifier.load(model_copy)


def test_case13_a_folder_without_recorded_precision_loads_as_fp32(model_copy):
    resign(model_copy, lambda c: c["encoders"][0].pop("precision"))
    assert Classifier.load(model_copy).state_.precisions == {"efficientnet-lite0": "fp32"}
