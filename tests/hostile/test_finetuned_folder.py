"""A saved model with a fine-tuned encoder: its weights file tampered with, missing, unlisted,
re-signed with other weights, NaN or the wrong shapes; each refused in one line before use."""
from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from wordsight.estimator import Classifier
from wordsight.estimator.heads import LogisticHead

from .conftest import refused_load, resign, time_limit

BASE = "efficientnet-lite0"


@pytest.fixture(scope="module")
def ft_folder(tmp_path_factory) -> Path:
    from wordsight.encoders import create
    from wordsight.encoders.finetuned import register_module

    root = tmp_path_factory.mktemp("ft-hostile")
    for label, colour in (("red", (200, 30, 30)), ("blue", (30, 30, 200))):
        (root / "data" / label).mkdir(parents=True)
        for i in range(2):
            Image.new("RGB", (40, 40), tuple(c + 20 * i for c in colour)).save(root / "data" / label / f"{i}.png")
    enc = create(BASE).eval()
    with torch.no_grad():
        next(p for n, p in enc.named_parameters() if "_conv_head" in n).mul_(1.01)
    name = register_module(BASE, enc)
    Classifier(encoders=(name,), head=LogisticHead(C=1.0)).fit(root / "data").save(root / "model")
    return root / "model"


@pytest.fixture
def copy(ft_folder, tmp_path) -> Path:
    dst = tmp_path / "model"
    shutil.copytree(ft_folder, dst)
    return dst


def _weights(folder: Path) -> Path:
    return next(folder.glob("encoder-*.safetensors"))


def _rewrite(folder: Path, change) -> None:
    from safetensors.numpy import load_file, save_file

    path = _weights(folder)
    tensors = load_file(str(path))
    change(tensors)
    save_file(tensors, str(path))
    resign(folder)


def test_the_untouched_copy_loads(copy):
    assert Classifier.load(copy).encoder_names[0].startswith("ft:efficientnet-lite0@")


def test_a_changed_byte_isrefused_load(copy):
    path = _weights(copy)
    data = bytearray(path.read_bytes())
    data[-10] ^= 0xFF
    path.write_bytes(bytes(data))
    refused_load(copy, r"encoder-.*\.safetensors: checksum mismatch")


def test_a_missing_weights_file_isrefused_load(copy):
    _weights(copy).unlink()
    refused_load(copy, r"encoder-.*\.safetensors")


def test_a_config_without_the_weights_entry_isrefused_load(copy):
    def edit(config):
        file = config["encoders"][0].pop("weights")
        config["files"].pop(file)

    _weights(copy).unlink()
    resign(copy, edit)
    refused_load(copy, r"fine-tuned encoder 'ft:efficientnet-lite0@[0-9a-f]+' has no weights file listed")


def test_other_weights_resigned_are_refused_by_their_digest(copy):
    def change(t):
        key = next(k for k in t if k.endswith("_conv_head.weight"))
        t[key] = t[key] * 1.5

    _rewrite(copy, change)
    refused_load(copy, r"weights digest [0-9a-f]+ does not match the encoder name")


def _rename_to_digest(folder: Path) -> None:
    """Give the encoder the name its (edited) weights hash to, as an attacker who knows the scheme would."""
    from safetensors.numpy import load_file

    from wordsight.encoders.finetuned import finetuned_name, tensors_digest

    name = finetuned_name(BASE, tensors_digest(load_file(str(_weights(folder)))))

    def edit(config):
        config["encoders"][0]["name"] = name
        config["params"]["encoders"] = [name]

    resign(folder, edit)


def test_nan_weights_are_refused_even_under_their_own_digest(copy):
    def change(t):
        key = next(k for k in t if k.endswith("_conv_head.weight"))
        t[key] = t[key].copy()
        t[key].flat[0] = np.nan

    _rewrite(copy, change)
    _rename_to_digest(copy)
    refused_load(copy, r"holds NaN or infinite values")


def test_weights_of_another_shape_are_refused_even_under_their_own_digest(copy):
    def change(t):
        key = next(k for k in t if k.endswith("_conv_head.weight"))
        t[key] = np.zeros((3, 3), np.float32)

    _rewrite(copy, change)
    _rename_to_digest(copy)
    refused_load(copy, r"the weights do not fit efficientnet-lite0")


def test_a_weights_file_on_a_frozen_encoder_isrefused_load(copy):
    def edit(config):
        config["encoders"][0]["name"] = BASE

    resign(copy, edit)
    refused_load(copy, r"encoder 'efficientnet-lite0' is not fine-tuned but names a weights file")


# ---------------------------------------------------------------- the fine-tuning checkpoint folder
@pytest.fixture
def two_classes(tmp_path) -> Path:
    for label, colour in (("red", (200, 30, 30)), ("blue", (30, 30, 200))):
        (tmp_path / "data" / label).mkdir(parents=True)
        for i in range(2):
            Image.new("RGB", (40, 40), colour).save(tmp_path / "data" / label / f"{i}.png")
    return tmp_path / "data"


def test_a_checkpoint_state_linked_to_a_device_isrefused_load(two_classes, tmp_path):
    from wordsight.training.finetune import FinetuneError, FinetuneOptions, finetune

    ck = tmp_path / "ck"
    ck.mkdir()
    (ck / "state.json").symlink_to("/dev/zero")
    with time_limit(120), pytest.raises(FinetuneError, match="cannot read the checkpoint state") as info:
        finetune(two_classes, BASE, ck, FinetuneOptions(epochs=1, batch_size=2), quiet=True)
    assert "\n" not in str(info.value)


def test_a_checkpoint_state_with_fields_of_the_wrong_type_isrefused_load(two_classes, tmp_path):
    import json

    from wordsight.training.finetune import FinetuneError, FinetuneOptions, finetune

    options = FinetuneOptions(epochs=1, batch_size=2, small_input=32, val_fraction=0)
    ck = tmp_path / "ck"
    finetune(two_classes, BASE, ck, options, quiet=True, stop_after=1)  # a real checkpoint, then edited
    state = json.loads((ck / "state.json").read_text())
    state["step"] = "1; rm -rf /"
    (ck / "state.json").write_text(json.dumps(state))
    with time_limit(120), pytest.raises(FinetuneError, match="fields of the wrong type"):
        finetune(two_classes, BASE, ck, options, quiet=True)
