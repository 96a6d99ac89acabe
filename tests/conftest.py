"""Shared fixtures: every test builds its own small files; features are cached per session."""
from __future__ import annotations

import functools
import json
import os
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest


@pytest.fixture(scope="session", autouse=True)
def _fp32_features():
    """The suite's numbers are fp32's on every CPU: ``precision="auto"`` (the default) is pinned to
    fp32 through $WORDSIGHT_PRECISION (subprocesses inherit it). The tests of the default itself
    (tests/engines/test_default_precision.py) remove the pin and force the CPU's flags."""
    old = os.environ.get("WORDSIGHT_PRECISION")
    os.environ["WORDSIGHT_PRECISION"] = "fp32"
    yield
    if old is None:
        os.environ.pop("WORDSIGHT_PRECISION", None)
    else:
        os.environ["WORDSIGHT_PRECISION"] = old


@pytest.fixture(scope="session", autouse=True)
def _isolated_cache(tmp_path_factory):
    """A fresh feature cache for the whole session, never the user's ~/.cache.

    ``WORDSIGHT_TEST_CACHE`` names a folder to use instead, kept between sessions: the mutation
    run (scripts/mutation.py) reruns a few test files hundreds of times and would otherwise embed
    the 1,000 ImageNet concept texts again each time (70 s on 2 cores)."""
    keep = os.environ.get("WORDSIGHT_TEST_CACHE")
    path = Path(keep) if keep else tmp_path_factory.mktemp("wordsight-cache")
    old = os.environ.get("WORDSIGHT_CACHE")
    os.environ["WORDSIGHT_CACHE"] = str(path)
    yield path
    if old is None:
        os.environ.pop("WORDSIGHT_CACHE", None)
    else:
        os.environ["WORDSIGHT_CACHE"] = old


@pytest.fixture(scope="session")
def cat_image():
    """scikit-image's cat photo (chelsea) as a PIL image."""
    from PIL import Image
    from skimage import data

    return Image.fromarray(data.chelsea())


@pytest.fixture(scope="session")
def fashion_mnist_root() -> Path:
    """The folder with the Fashion-MNIST IDX files ($WORDSIGHT_DATA or the Debian package's); the
    tests never download it: without it they skip and say how to install it."""
    from wordsight.io.datasets import find_fashion_mnist

    try:
        return find_fashion_mnist(download=False)
    except FileNotFoundError as e:
        pytest.skip(f"Fashion-MNIST is not installed (tests never download it): {e}")


@pytest.fixture(scope="session")
def fashion_folder(tmp_path_factory, fashion_mnist_root) -> Path:
    """A small Fashion-MNIST ImageFolder tree: 6 train and 4 test PNGs per class."""
    from wordsight.io.datasets import write_image_folder

    root = tmp_path_factory.mktemp("fashion")
    write_image_folder(root, "train", per_class=6, root=fashion_mnist_root)
    write_image_folder(root, "test", per_class=4, root=fashion_mnist_root)
    return root


@pytest.fixture(scope="session")
def photo_folder(tmp_path_factory) -> Path:
    """Real photos from scikit-image in a two-class ImageFolder tree (JPEG)."""
    from PIL import Image
    from skimage import data

    root = tmp_path_factory.mktemp("photos")
    groups = {"cat": [data.chelsea()], "coffee": [data.coffee()], "rocket": [data.rocket()],
              "astronaut": [data.astronaut()]}
    for label, arrays in groups.items():
        (root / label).mkdir()
        for i, arr in enumerate(arrays):
            img = Image.fromarray(np.asarray(arr))
            img.save(root / label / f"{i}.jpg", quality=90)
            img.transpose(Image.Transpose.FLIP_LEFT_RIGHT).save(root / label / f"{i}_flip.jpg", quality=90)
    return root


# Paired text (issue 12): the colour of an image and the condition named by its own text make the
# class; the image alone tells only the colour, the text alone only the condition.
PAIRED_COLOURS = {"red": (200, 30, 30), "blue": (30, 30, 200)}
PAIRED_TEXTS = {"new": ["brand new, never used", "new in its box", "unused and pristine"],
                "used": ["worn out and scratched", "heavily used, with stains", "old and battered"]}


@pytest.fixture(scope="session")
def paired_manifests(tmp_path_factory) -> tuple[Path, Path]:
    """(train.csv, test.csv): manifests ``path,label,text`` of 32-px noisy red or blue squares,
    classes ``<colour>-<condition>``; 6 training and 3 test images per class."""
    import csv

    from PIL import Image

    root = tmp_path_factory.mktemp("paired")
    rng = np.random.default_rng(0)
    out = []
    for split, n in (("train", 6), ("test", 3)):
        rows = []
        for colour, rgb in PAIRED_COLOURS.items():
            for condition, texts in PAIRED_TEXTS.items():
                for i in range(n):
                    a = np.clip(np.asarray(rgb) + rng.normal(0, 40, (32, 32, 3)), 0, 255).astype(np.uint8)
                    name = f"{split}-{colour}-{condition}-{i}.png"
                    Image.fromarray(a).save(root / name)
                    rows.append({"path": name, "label": f"{colour}-{condition}", "text": texts[i % len(texts)]})
        with open(root / f"{split}.csv", "w", newline="") as f:
            w = csv.DictWriter(f, ["path", "label", "text"])
            w.writeheader()
            w.writerows(rows)
        out.append(root / f"{split}.csv")
    return out[0], out[1]


# ---- fixtures of the estimator and training tests
@pytest.fixture(scope="session")
def fashion_blocks(fashion_folder):
    """(train, test) FeatureBlocks of the default encoder: 60 train and 40 test images."""
    from wordsight.estimator import Classifier

    clf = Classifier()
    return clf.extract(fashion_folder / "train"), clf.extract(fashion_folder / "test")


@pytest.fixture(scope="session")
def stripes(tmp_path_factory) -> Path:
    """Two classes of 24-px images: horizontal and vertical stripes under noise (4 each)."""
    from PIL import Image

    root = tmp_path_factory.mktemp("stripes")
    rng = np.random.default_rng(0)
    for label in ("horizontal", "vertical"):
        (root / label).mkdir()
        for i in range(4):
            bars = (np.arange(24) // 3 % 2 * 200)[:, None].repeat(24, 1)
            arr = bars if label == "horizontal" else bars.T
            arr = np.clip(arr + rng.normal(0, 30, (24, 24)), 0, 255).astype(np.uint8)
            Image.fromarray(arr).convert("RGB").save(root / label / f"{i}.png")
    return root


# ---- fixtures of the text and zero-shot tests
@pytest.fixture(scope="session")
def tiny_clip_dir(tmp_path_factory):
    """A random CLIPModel (16-d joint space, 32 px images) with a byte-level BPE tokenizer whose
    vocabulary and merges are written here, and a CLIP image processor."""
    import torch
    from transformers import CLIPConfig, CLIPImageProcessor, CLIPModel, CLIPTokenizer
    from transformers.convert_slow_tokenizer import bytes_to_unicode

    d = tmp_path_factory.mktemp("tiny-clip")
    chars = list(bytes_to_unicode().values())
    vocab = {c: i for i, c in enumerate(chars)}
    vocab.update({c + "</w>": len(chars) + i for i, c in enumerate(chars)})
    merges = [("c", "a"), ("ca", "t</w>"), ("d", "o"), ("do", "g</w>"), ("t", "r"), ("tr", "u"), ("tru", "c"),
              ("truc", "k</w>")]
    for a, b in merges:
        vocab[a + b] = len(vocab)
    vocab["<|startoftext|>"] = len(vocab)
    vocab["<|endoftext|>"] = len(vocab)
    tok = CLIPTokenizer(vocab=vocab, merges=merges)
    torch.manual_seed(0)
    eos = vocab["<|endoftext|>"]
    cfg = CLIPConfig(
        text_config=dict(vocab_size=len(vocab), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                         num_attention_heads=2, max_position_embeddings=77, bos_token_id=vocab["<|startoftext|>"],
                         eos_token_id=eos, pad_token_id=eos),
        vision_config=dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2,
                           image_size=32, patch_size=8),
        projection_dim=16)
    CLIPModel(cfg).save_pretrained(d)
    tok.save_pretrained(d)
    CLIPImageProcessor(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32}).save_pretrained(d)
    return d


@pytest.fixture(scope="session")
def tiny_caption_dir(tmp_path_factory):
    """A random VisionEncoderDecoder captioner (tiny ViT encoder + tiny BERT decoder) with a
    WordPiece tokenizer from a vocabulary written here, and a ViT image processor."""
    import torch
    from transformers import (
        BertConfig,
        BertTokenizer,
        VisionEncoderDecoderConfig,
        VisionEncoderDecoderModel,
        ViTConfig,
        ViTImageProcessor,
    )

    d = tmp_path_factory.mktemp("tiny-caption")
    words = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "a", "photo", "of", "cat", "dog", "shoe", "bag", "on",
             "the", "grass", "red", "small", "with", "white", "background"]
    (d / "vocab.txt").write_text("\n".join(words) + "\n")
    tok = BertTokenizer(str(d / "vocab.txt"))
    torch.manual_seed(0)
    enc = ViTConfig(hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=64,
                    image_size=32, patch_size=8)
    dec = BertConfig(vocab_size=len(words), hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                     intermediate_size=64, is_decoder=True, add_cross_attention=True)
    cfg = VisionEncoderDecoderConfig.from_encoder_decoder_configs(enc, dec)
    cfg.decoder_start_token_id = tok.cls_token_id
    cfg.pad_token_id = tok.pad_token_id
    cfg.eos_token_id = tok.sep_token_id
    model = VisionEncoderDecoderModel(config=cfg)
    model.generation_config.decoder_start_token_id = tok.cls_token_id
    model.generation_config.pad_token_id = tok.pad_token_id
    model.generation_config.eos_token_id = tok.sep_token_id
    model.save_pretrained(d)
    tok.save_pretrained(d)
    ViTImageProcessor(size={"height": 32, "width": 32}).save_pretrained(d)
    return d


class ChatServer:
    """A chat-completions endpoint on 127.0.0.1 with scripted behaviour.

    ``mode``: ``ok`` (answers ``reply(body)``), ``flaky`` (HTTP 500 for the first ``fail`` requests,
    then ok), ``down`` (always 503), ``garbage`` (200 with HTML), ``nochoices`` (200, JSON without
    choices), ``slow`` (sleeps ``delay`` s), ``unauthorised`` (401).
    """

    def __init__(self):
        self.mode = "ok"
        self.fail = 0
        self.delay = 0.0
        self.requests: list[dict] = []
        self.headers: list[dict] = []
        self.reply = lambda body: f"A short answer to: {body['messages'][-1]['content']}"
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_POST(self):
                length = int(self.headers.get("Content-Length", 0))
                body = json.loads(self.rfile.read(length))
                server.requests.append(body)
                server.headers.append(dict(self.headers))
                if self.path != "/v1/chat/completions":
                    return self._send(404, b'{"error": "not found"}')
                mode = server.mode
                if mode == "flaky" and server.fail > 0:
                    server.fail -= 1
                    return self._send(500, b'{"error": "overloaded"}')
                if mode == "down":
                    return self._send(503, b"service unavailable")
                if mode == "unauthorised":
                    return self._send(401, b'{"error": {"message": "invalid api key"}}')
                if mode == "garbage":
                    return self._send(200, b"<html>hello</html>", "text/html")
                if mode == "nochoices":
                    return self._send(200, b'{"object": "chat.completion", "choices": []}')
                if mode == "slow":
                    time.sleep(server.delay)
                answer = {"id": "x", "object": "chat.completion", "model": body.get("model"),
                          "choices": [{"index": 0, "finish_reason": "stop",
                                       "message": {"role": "assistant", "content": server.reply(body)}}]}
                self._send(200, json.dumps(answer).encode())

            def _send(self, code, data, ctype="application/json"):
                try:
                    self.send_response(code)
                    self.send_header("Content-Type", ctype)
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def chat_server():
    server = ChatServer()
    yield server
    server.close()


class CountingEncoder:
    """A deterministic text encoder (hashes words into a vector) that counts its calls."""

    def __init__(self, dim: int = 64, name: str | None = None):
        self.dim = dim
        self.calls = 0
        self.texts_seen = 0
        if name:
            from wordsight.encoders import EncoderConfig

            self.config = EncoderConfig(name=name, modality="text", dim=dim, licence="test", weight_source="test")

    def encode(self, texts, batch_size=64):
        import zlib

        self.calls += 1
        self.texts_seen += len(texts)
        out = np.zeros((len(texts), self.dim), np.float32)
        for i, t in enumerate(texts):
            for w in t.lower().replace(",", " ").replace(".", " ").split():
                out[i, zlib.crc32(w.encode()) % self.dim] += 1.0
        return out / np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-12)


@pytest.fixture
def counting_encoder():
    return CountingEncoder


@pytest.fixture(scope="session")
def mosaic_manifests(tmp_path_factory, fashion_mnist_root) -> tuple[Path, Path]:
    """Fashion-MNIST mosaics (issue 24: 2x2 / 3x3 grids, 1-4 garments, labels the classes present):
    a training and a test manifest (``path,labels``), 120 and 40 mosaics, seeded."""
    from wordsight.io.datasets import FASHION_MNIST_CLASSES, load_fashion_mnist
    from wordsight.io.mosaics import mosaics, write_mosaics

    images, labels = load_fashion_mnist("test", root=fashion_mnist_root)
    root = tmp_path_factory.mktemp("mosaics")
    train = write_mosaics(root / "train", mosaics(images[:5000], labels[:5000], FASHION_MNIST_CLASSES, 120, seed=0))
    test = write_mosaics(root / "test", mosaics(images[5000:], labels[5000:], FASHION_MNIST_CLASSES, 40, seed=1))
    return Path(train), Path(test)


def first_mosaics(manifest: Path, n: int, out: Path) -> Path:
    """A manifest ``out`` of the first ``n`` rows of ``manifest`` (a mosaic_manifests one), paths absolute."""
    import csv

    rows = list(csv.DictReader(open(manifest)))[:n]
    with open(out, "w", newline="") as f:
        w = csv.DictWriter(f, ["path", "labels"])
        w.writeheader()
        w.writerows({"path": str(manifest.parent / r["path"]), "labels": r["labels"]} for r in rows)
    return out


def tag_reports(folder: Path, paths: list[str], classes: list[str], tmp_path: Path) -> dict:
    """What CLI ``predict``, the server's ``/v1/predict`` and the Ray batch report for ``paths`` with
    the multi-label model in ``folder``: per view ``(probabilities (rows x classes), label sets)``,
    and ``server_results``, ``server_model`` (``/v1/model``) and ``batch`` (the batch's columns)."""
    import httpx

    from wordsight.cli import main
    from wordsight.estimator.batch_predict import PredictBatch
    from wordsight.serve import BackgroundServer, ServeSettings

    def table(rows):
        return np.array([[{t["class"]: t["probability"] for t in r["top_k"]}[c] for c in classes] for r in rows])

    out = tmp_path / "tag_reports.json"
    assert main(["predict", str(folder), *paths, "--top-k", str(len(classes)), "--out", str(out), "--quiet"]) == 0
    rows = json.loads(out.read_text())
    with BackgroundServer(ServeSettings(model_dir=str(folder), warm_up=False)) as server:
        files = [("files", (p.rsplit("/", 1)[1], open(p, "rb").read(), "image/png")) for p in paths]
        r = httpx.post(server.url + "/v1/predict", files=files, data={"top_k": str(len(classes))}, timeout=300)
        info = httpx.get(server.url + "/v1/model", timeout=60).json()
    assert r.status_code == 200, r.text
    results = r.json()["results"]
    batch = PredictBatch(folder)
    cols = batch({"path": np.array(paths, dtype=object),
                  "bytes": np.array([open(p, "rb").read() for p in paths], dtype=object)})
    return {"cli": (table(rows), [tuple(r["predicted"]) for r in rows]),
            "server": (table(results), [tuple(r["predicted"]) for r in results]),
            "ray": (cols["probabilities"], [tuple(s.split("|")) if s else () for s in cols["predicted"]]),
            "server_results": results, "server_model": info, "batch": (batch, cols)}


def fit_mil_tagger(manifest: Path, n: int, folder: Path, bag: str = "tilebag:2:efficientnet-lite0"):
    """A multi-label mil tagger over the global embedding and ``bag``, fitted on the first ``n``
    mosaics of ``manifest`` and saved to ``folder / "m"``: (the Classifier, the saved folder)."""
    from wordsight.estimator import Classifier

    first_mosaics(manifest, n, folder / "train.csv")
    clf = Classifier(encoders=("efficientnet-lite0", bag), task="multi-label", head="mil").fit(folder / "train.csv")
    clf.save(folder / "m")
    return clf, folder / "m"


@pytest.fixture(scope="session")
def mil_tagger(mosaic_manifests, tmp_path_factory):
    """The mil tagger over a 2x2 tile bag fitted once on 48 training mosaics (read only: the parity,
    explain-parity and hostile explain tests share it)."""
    return fit_mil_tagger(mosaic_manifests[0], 48, tmp_path_factory.mktemp("mil-tagger"))


@pytest.fixture
def loads(monkeypatch):
    """The sizes of the images PIL decodes (their pixels loaded) while the test runs."""
    from PIL import ImageFile

    sizes = []
    real = ImageFile.ImageFile.load

    def load(self):
        sizes.append(self.size)
        return real(self)

    monkeypatch.setattr(ImageFile.ImageFile, "load", load)
    return sizes


# oneDNN's ISA cap (scripts/test_avx2_only.sh) reaches OpenVINO's kernels but not its capability
# check: capped to AVX2 on an AVX-512/AMX CPU, OpenVINO still takes bf16 and then fails to compile
# a convolution or returns empty outputs. A real AVX2 CPU never sees that: OpenVINO ignores a bf16
# hint where the CPU lacks bf16 and computes f32.
ISA_CAPS = ("ONEDNN_MAX_CPU_ISA", "DNNL_MAX_CPU_ISA")


@functools.lru_cache(maxsize=1)
def _openvino_bf16_broken_by_a_cap() -> str | None:
    """Why OpenVINO's bf16 cannot run in this process because of an ISA cap, or None (always None
    without a cap: the normal path never skips or adapts)."""
    caps = [f"{v}={os.environ[v]}" for v in ISA_CAPS if os.environ.get(v)]
    if not caps:
        return None
    import openvino as ov

    x = ov.opset13.parameter([2, 3, 8, 8], np.float32)
    conv = ov.opset13.convolution(x, ov.opset13.constant(np.ones((4, 3, 3, 3), np.float32)),
                                  [1, 1], [0, 0], [0, 0], [1, 1])
    try:
        compiled = ov.Core().compile_model(ov.Model([conv], [x]), "CPU", {"INFERENCE_PRECISION_HINT": "bf16"})
        shape = compiled(np.ones((2, 3, 8, 8), np.float32))[compiled.outputs[0]].shape
    except RuntimeError as e:
        return f"OpenVINO bf16 fails under {' '.join(caps)} on this CPU ({str(e).strip().splitlines()[-1]})"
    if tuple(shape) != (2, 4, 6, 6):
        return f"OpenVINO bf16 returns shape {tuple(shape)} under {' '.join(caps)} on this CPU"
    return None


# Under the same cap OpenVINO's layer norm (MVN, in every transformer: ViT, CLIP, captioning) keeps
# an AVX-512 kernel of its own and crashes the process (segmentation fault) at inference; it runs on
# an AVX2-only CPU. Probed in a subprocess: a crash cannot be caught.
_MVN_PROBE = """
import numpy as np, openvino as ov
o = ov.opset13
x = o.parameter([-1, 5, 24], np.float32)
y = o.mvn(x, o.constant(np.array([-1])), True, 1e-5, "inside_sqrt")
c = ov.Core().compile_model(ov.Model([y], [x]), "CPU", {"INFERENCE_PRECISION_HINT": "f32"})
assert c(np.ones((2, 5, 24), np.float32))[c.outputs[0]].shape == (2, 5, 24)
"""


@functools.lru_cache(maxsize=1)
def _openvino_layer_norm_crashes_under_a_cap() -> str | None:
    """Why OpenVINO cannot run a transformer's layer norm in this environment because of an ISA cap,
    or None (always None without a cap)."""
    import subprocess
    import sys

    caps = [f"{v}={os.environ[v]}" for v in ISA_CAPS if os.environ.get(v)]
    if not caps:
        return None
    r = subprocess.run([sys.executable, "-c", _MVN_PROBE], capture_output=True, text=True, timeout=300)
    if r.returncode != 0:
        return f"OpenVINO's layer norm (MVN) exits {r.returncode} under {' '.join(caps)} on this CPU"
    return None


def skip_where_openvino_layer_norm_is_capped() -> None:
    """Skip a test (or a fixture) that would run a transformer on OpenVINO where an ISA cap makes
    OpenVINO crash the process on it (an artefact: a real AVX2 CPU runs it)."""
    why = _openvino_layer_norm_crashes_under_a_cap()
    if why:
        pytest.skip(f"{why}; a real AVX2 CPU runs it")


def openvino_bf16_as_on_avx2(monkeypatch) -> None:
    """Where an ISA cap breaks OpenVINO's bf16 in this process, ask OpenVINO for f32 in its place, as
    OpenVINO itself does on a CPU without bf16: a test that claims bf16 through $WORDSIGHT_CPU_FLAGS
    then runs what it runs on a real AVX2-only CPU. Nothing changes without a cap."""
    if _openvino_bf16_broken_by_a_cap():
        from wordsight.features.engines import openvino_runner

        monkeypatch.setitem(openvino_runner.HINTS, "bf16", "f32")


def skip_where_openvino_bf16_is_capped() -> None:
    """Skip the rest of a test that runs OpenVINO at bf16 in another process where an ISA cap breaks
    it (:func:`openvino_bf16_as_on_avx2` reaches this process only)."""
    why = _openvino_bf16_broken_by_a_cap()
    if why:
        pytest.skip(f"{why}; a real AVX2 CPU runs f32 for it")


class DecodeCounter:
    """The real ``decode_image`` of ``features.engines.batch`` (where every extraction decodes),
    counted: calls per file content (``counter(path)``), in all (``total()``) and the JPEG draft size
    each call asked (``drafts``, None without one). Thread-safe (the reads run on a pool)."""

    def __init__(self, real):
        import threading
        from collections import Counter

        self._real = real
        self._lock = threading.Lock()
        self._seen: Counter = Counter()
        self.drafts: list = []

    def decode(self, data, *args, **kw):
        import hashlib

        with self._lock:
            self._seen[hashlib.sha256(bytes(data)).digest()] += 1
            self.drafts.append(kw.get("draft_size"))
        return self._real(data, *args, **kw)

    def __call__(self, path) -> int:
        """Decodes of this file's bytes so far."""
        import hashlib

        return self._seen[hashlib.sha256(Path(path).read_bytes()).digest()]

    def total(self) -> int:
        return sum(self._seen.values())

    def clear(self) -> None:
        """Forget what was counted (after a test's set-up)."""
        with self._lock:
            self._seen.clear()
            self.drafts.clear()


@pytest.fixture
def decodes(monkeypatch):
    """A ``DecodeCounter`` over the real decoder for the whole test."""
    from wordsight.features.engines import batch as batch_module

    counter = DecodeCounter(batch_module.decode_image)
    monkeypatch.setattr(batch_module, "decode_image", counter.decode)
    return counter
