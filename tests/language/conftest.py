"""Fixtures of the language tests: tiny random joint and caption models built from configs and
saved to temporary folders (no hub access), a chat-completions server on loopback, and fakes."""
from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import pytest


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
