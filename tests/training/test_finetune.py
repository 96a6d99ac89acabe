"""Fine-tuning: the schedule, the split, the trained blocks, the bf16 switch, a real kill and
resume (the resumed run ends with the uninterrupted run's weights), and a fine-tuned model's
features kept apart from the frozen encoder's, saved, loaded and served from its folder."""
from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from wordsight.training.finetune import (
    FinetuneError,
    FinetuneOptions,
    cpu_has_bf16,
    finetune,
    lr_factor,
    split_train_val,
    trainable_names,
)

# Six training images, two held out; batches of two: 3 steps per epoch, 6 in all.
OPTIONS = dict(epochs=2, batch_size=2, val_fraction=0.25, checkpoint_every=1, small_input=32, blocks=2)


def test_schedule_warms_up_then_follows_a_cosine():
    total, warmup = 100, 0.1
    assert lr_factor(0, total, warmup) == pytest.approx(0.1) and lr_factor(9, total, warmup) == pytest.approx(1.0)
    for step in (10, 30, 55, 99):
        assert lr_factor(step, total, warmup) == pytest.approx(0.5 * (1 + math.cos(math.pi * (step - 10) / 90)))
    assert lr_factor(100, total, warmup) == pytest.approx(0.0, abs=1e-12)


def test_split_is_stratified_and_seeded():
    labels = ["a"] * 10 + ["b"] * 4 + ["c"]
    tr, va = split_train_val(labels, 0.2, seed=3)
    assert sorted(np.concatenate([tr, va]).tolist()) == list(range(15))
    held = [labels[i] for i in va]
    assert held.count("a") == 2 and held.count("b") == 1 and held.count("c") == 0  # a lone image always trains
    assert split_train_val(labels, 0.2, seed=3)[1].tolist() == va.tolist()
    assert split_train_val(labels, 0.0, seed=3)[1].size == 0


def test_bf16_only_where_the_cpu_has_it(monkeypatch):
    assert cpu_has_bf16("flags\t: fpu sse avx2 fma\n") is False
    assert cpu_has_bf16("flags\t: fpu avx512f avx512_bf16\n") is True
    assert cpu_has_bf16("flags\t: fpu amx_tile amx_bf16\n") is True
    assert cpu_has_bf16("model name : avx512_bf16 in a name\nflags : sse\n") is False
    # the run's own decision follows $WORDSIGHT_CPU_FLAGS like every other (an AVX2-only CPU trains in fp32)
    monkeypatch.setenv("WORDSIGHT_CPU_FLAGS", "fpu sse4_2 avx2 fma f16c")
    assert cpu_has_bf16() is False
    monkeypatch.setenv("WORDSIGHT_CPU_FLAGS", "fpu avx2 avx512f avx512_bf16")
    assert cpu_has_bf16() is True


def test_last_blocks_are_the_end_of_the_block_stack():
    from wordsight.encoders import create

    enc = create("efficientnet-lite0")
    names = trainable_names(enc, "last-blocks", 2)
    blocks = sorted({n.split("._blocks.")[1].split(".")[0] for n in names if "._blocks." in n}, key=int)
    assert blocks == ["14", "15"]  # EfficientNet-Lite0 has 16 blocks
    assert any("_conv_head" in n for n in names) and not any("_conv_stem" in n for n in names)
    assert len(trainable_names(enc, "all", 2)) == len(list(enc.parameters()))


def test_tiny_images_train_at_the_size_the_engine_extracts_them():
    from wordsight.features.engines.batch import SMALL_INPUT

    assert FinetuneOptions().small_input == SMALL_INPUT


def test_options_are_checked(stripes, tmp_path):
    with pytest.raises(FinetuneError, match="mode must be one of last-blocks, all"):
        finetune(stripes, "efficientnet-lite0", tmp_path, FinetuneOptions(mode="some"))
    with pytest.raises(FinetuneError, match="packaged image encoder"):
        finetune(stripes, "minilm", tmp_path, FinetuneOptions())


CHILD = """
import sys
from wordsight.training.finetune import FinetuneOptions, finetune
finetune(sys.argv[1], "efficientnet-lite0", sys.argv[2], FinetuneOptions(**{options}), quiet=True)
"""


def test_killed_run_resumes_and_ends_with_the_uninterrupted_weights(stripes, tmp_path):
    from wordsight.encoders.finetuned import registered

    out = tmp_path / "killed"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    child = subprocess.Popen([sys.executable, "-c", CHILD.format(options=OPTIONS), str(stripes), str(out)], env=env,
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    state = {}
    try:
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline and child.poll() is None:
            try:
                state = json.loads((out / "state.json").read_text())
            except (OSError, ValueError):
                state = {}
            if state.get("step", 0) >= 1:
                os.kill(child.pid, signal.SIGKILL)  # mid-run, no chance to clean up
                break
            time.sleep(0.05)
    finally:
        if child.poll() is None:
            os.kill(child.pid, signal.SIGKILL)
        child.wait()
        err = child.stderr.read().decode()
    assert child.returncode == -signal.SIGKILL, err[-2000:]
    state = json.loads((out / "state.json").read_text())
    assert 1 <= state["step"] < 6 and not state["finished"], state

    resumed = finetune(stripes, "efficientnet-lite0", out, FinetuneOptions(**OPTIONS), quiet=True)
    assert resumed.resumed_at_step == state["step"] and resumed.steps == 6 and resumed.epochs_run == 2
    straight = finetune(stripes, "efficientnet-lite0", tmp_path / "straight", FinetuneOptions(**OPTIONS), quiet=True)
    assert straight.resumed_at_step == 0 and straight.steps == 6
    assert [h["val_loss"] for h in resumed.history] == pytest.approx([h["val_loss"] for h in straight.history],
                                                                     abs=1e-5)
    # the same weights (two processes, the same maths: equal up to float summation order)
    a, b = registered(resumed.name), registered(straight.name)
    assert sorted(a) == sorted(b)
    assert max(float(np.abs(a[k].astype(np.float64) - b[k]).max()) for k in a) < 1e-5
    # a finished run is not trained again; other options are refused, not mixed in
    again = finetune(stripes, "efficientnet-lite0", out, FinetuneOptions(**OPTIONS), quiet=True)
    assert again.steps == 6 and again.name == resumed.name
    with pytest.raises(FinetuneError, match="another fine-tuning run .*options"):
        finetune(stripes, "efficientnet-lite0", out, FinetuneOptions(**{**OPTIONS, "lr": 1e-3}), quiet=True)
    # one weight file of each kind is left, the newest (older steps removed once state.json named the newer)
    names = sorted(p.name for p in out.glob("*.safetensors"))
    assert len(names) == 2 and names[0].startswith("best-") and names[1] == "checkpoint-6.safetensors", names
    (out / "checkpoint-6.safetensors").write_bytes(b"damaged")
    with pytest.raises(FinetuneError, match="changed since its state was written"):
        finetune(stripes, "efficientnet-lite0", out, FinetuneOptions(**OPTIONS), quiet=True)


def test_the_trained_blocks_change_and_the_rest_stay(stripes, tmp_path):
    from wordsight.encoders import load_model
    from wordsight.encoders.finetuned import registered

    r = finetune(stripes, "efficientnet-lite0", tmp_path / "run", FinetuneOptions(**{**OPTIONS, "epochs": 1}),
                 quiet=True)
    frozen = {k: v.numpy() for k, v in load_model("efficientnet-lite0").state_dict().items()}
    tuned = registered(r.name)
    changed = {k for k in frozen if not np.array_equal(frozen[k], tuned[k])}
    assert changed and all("_blocks.14." in k or "_blocks.15." in k or "_conv_head" in k or "_bn1" in k
                           for k in changed), sorted(changed)[:5]
    assert any("_blocks.14." in k for k in changed)
    assert r.name.startswith("ft:efficientnet-lite0@") and len(r.history) == 1 and r.trained_tensors > 0
    assert r.bf16 is cpu_has_bf16()  # bf16 autocast exactly where the one detection says the CPU has it
