"""ONNX export of wordsight's encoders: the image encoder and the text encoder as separate files.

The image graph takes ``pixel_values`` (B, 3, H, W) float32, preprocessed as the encoder's config
says, and returns ``embedding`` (and ``logits`` for encoders with an ImageNet head); batch, height
and width are dynamic. The text graph takes the tokenizer's ``input_ids`` / ``attention_mask``
(int64) and returns the pooled, L2-normalised ``embedding``, the same vectors as
``TextEncoder.encode``.

Uses torch's TorchScript-based exporter (``dynamo=False``): it needs nothing beyond ``onnx``.
"""
from __future__ import annotations

import hashlib
import os
import warnings
from pathlib import Path

import numpy as np
import torch
from torch import nn

OPSET = 17
IMAGE_INPUT = "pixel_values"


def weights_digest(module: nn.Module) -> str:
    """A short hash of a module's parameters and buffers: two models with the same name and
    preprocessing but different weights (fine-tuned, random test models) never share an export."""
    h = hashlib.sha256()
    for name, t in sorted(module.state_dict().items()):
        h.update(name.encode())
        h.update(t.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()[:16]


class _ImageGraph(nn.Module):
    def __init__(self, encoder, names):
        super().__init__()
        self.encoder, self.names = encoder, names

    def forward(self, x):
        out = self.encoder(x)
        return tuple(out[n] for n in self.names)


def image_output_names(encoder) -> list[str]:
    return ["embedding", "logits"] if encoder.config.has_imagenet_head else ["embedding"]


def _atomic_export(module, args, path, **kwargs) -> Path:
    """Export to a temporary name and rename: concurrent exporters (Ray actors) never see half a file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with warnings.catch_warnings(), torch.inference_mode(False), torch.no_grad():
        warnings.simplefilter("ignore")
        torch.onnx.export(module, args, str(tmp), opset_version=OPSET, dynamo=False, **kwargs)
    os.replace(tmp, path)
    return path


def export_image_encoder(encoder, path) -> Path:
    """Write ``encoder`` (an ``ImageEncoder``) as one ONNX file; returns its path."""
    names = image_output_names(encoder)
    size = encoder.config.input_size or 224
    dummy = torch.zeros(2, 3, size, size)
    dynamic = {IMAGE_INPUT: {0: "batch", 2: "height", 3: "width"}, **{n: {0: "batch"} for n in names}}
    was_training = encoder.training
    encoder.eval()
    try:
        return _atomic_export(_ImageGraph(encoder, names), (dummy,), path, input_names=[IMAGE_INPUT],
                              output_names=names, dynamic_axes=dynamic)
    finally:
        encoder.train(was_training)


class _TextGraph(nn.Module):
    """Transformer -> mean pooling over the attention mask -> L2 normalisation, the
    sentence-transformers recipe of all-MiniLM-style models."""

    def __init__(self, transformer, normalize: bool):
        super().__init__()
        self.transformer, self.normalize = transformer, normalize

    def forward(self, input_ids, attention_mask):
        hidden = self.transformer(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
        pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
        if self.normalize:
            pooled = pooled / pooled.norm(dim=-1, keepdim=True).clamp(min=1e-12)
        return pooled


def _sentence_parts(text_encoder):
    """(HF transformer, tokenizer, max_seq_length) of a sentence-transformers text encoder; only
    mean pooling is supported (the packaged MiniLM and most ``st:`` models)."""
    st = text_encoder.model
    first = st[0]
    modules = list(st)
    pooling = next((m for m in modules if type(m).__name__ == "Pooling"), None)
    mode = getattr(pooling, "get_pooling_mode_str", lambda: "mean")()
    if mode != "mean":
        raise ValueError(f"text encoder {text_encoder.config.name!r} uses {mode!r} pooling; ONNX export "
                         "supports mean pooling only")
    return first.auto_model, first.tokenizer, int(getattr(first, "max_seq_length", 256) or 256)


def export_text_encoder(text_encoder, folder) -> Path:
    """Write the text encoder as ``folder/text_encoder.onnx`` plus its tokenizer files."""
    folder = Path(folder)
    transformer, tokenizer, max_len = _sentence_parts(text_encoder)
    tokenizer.save_pretrained(str(folder / "tokenizer"))
    toks = tokenizer(["a photo", "an example sentence"], padding=True, return_tensors="pt")
    graph = _TextGraph(transformer.eval(), normalize=True)
    names = {"input_ids": {0: "batch", 1: "tokens"}, "attention_mask": {0: "batch", 1: "tokens"},
             "embedding": {0: "batch"}}
    path = _atomic_export(graph, (toks["input_ids"], toks["attention_mask"]), folder / "text_encoder.onnx",
                          input_names=["input_ids", "attention_mask"], output_names=["embedding"],
                          dynamic_axes=names)
    (folder / "tokenizer" / "wordsight_max_len.txt").write_text(str(max_len))
    return path


def session(path, threads: int | None = None):
    """An ONNX Runtime CPU session with all graph optimisations."""
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    so.intra_op_num_threads = threads or min(os.cpu_count() or 1, 8)
    so.inter_op_num_threads = 1
    so.log_severity_level = 3
    return ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])


class OnnxTextEncoder:
    """Runs an exported text encoder: texts in, L2-normalised float32 embeddings out."""

    def __init__(self, folder, threads: int | None = None):
        from transformers import AutoTokenizer

        folder = Path(folder)
        self.tokenizer = AutoTokenizer.from_pretrained(str(folder / "tokenizer"))
        len_file = folder / "tokenizer" / "wordsight_max_len.txt"
        self.max_len = int(len_file.read_text()) if len_file.exists() else 256
        self.session = session(folder / "text_encoder.onnx", threads)

    def encode(self, texts: list[str], batch_size: int = 64) -> np.ndarray:
        """L2-normalised sentence embeddings of ``texts`` through the ONNX session, ``batch_size`` at a time."""
        parts = []
        for i in range(0, len(texts), batch_size):
            t = self.tokenizer(list(texts[i : i + batch_size]), padding=True, truncation=True,
                               max_length=self.max_len, return_tensors="np")
            feeds = {"input_ids": t["input_ids"].astype(np.int64),
                     "attention_mask": t["attention_mask"].astype(np.int64)}
            parts.append(self.session.run(None, feeds)[0])
        return np.concatenate(parts).astype(np.float32) if parts else np.zeros((0, 0), np.float32)
