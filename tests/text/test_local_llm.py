"""The packaged SmolLM2 through transformers: converted from GGUF once into the wordsight cache,
then generating seeded, batched class descriptions. The one test that runs the real local LLM."""
from __future__ import annotations

import pytest

from wordsight.text import LocalLLM, generate_class_descriptions
from wordsight.text.llm import converted_dir


@pytest.mark.slow
def test_local_llm_converts_once_and_writes_descriptions(_isolated_cache):
    llm = LocalLLM()
    d = generate_class_descriptions(["sandal", "bag"], llm, k=2, seed=0, max_new_tokens=24)
    assert list(d) == ["sandal", "bag"]
    for texts in d.values():
        assert 1 <= len(texts) <= 2 and all(len(t.split()) >= 3 and "\n" not in t for t in texts)
    folder = converted_dir()
    assert str(folder).startswith(str(_isolated_cache))  # under $WORDSIGHT_CACHE
    assert (folder / "model.safetensors").exists() and (folder / "config.json").exists()
    assert not list(folder.glob("*.gguf")) and not list(folder.glob("*.bin"))  # safetensors, no pickle
    # seeded: the same prompts and seed give the same answers; greedy decoding ignores the seed
    prompts = ["Describe a red shoe in one short sentence."]
    assert llm.generate(prompts, max_new_tokens=8, seed=3) == llm.generate(prompts, max_new_tokens=8, seed=3)
    assert llm.generate(prompts, max_new_tokens=8, temperature=0) == llm.generate(prompts, max_new_tokens=8,
                                                                                   temperature=0, seed=9)


@pytest.mark.slow
def test_local_llm_writes_the_explanation_sentence_from_the_evidence(tmp_path):
    from PIL import Image
    from skimage import data

    from wordsight.explain import evidence_prompt, explain

    path = tmp_path / "cat.png"
    Image.fromarray(data.chelsea()).save(path)
    llm = LocalLLM()
    e = explain("efficientnet-lite0", path, sentence=True, llm=llm)[0]
    sentence = e.evidence["sentence"]
    assert sentence["llm"] == llm.describe() and "smollm2" in sentence["llm"].lower()
    assert len(sentence["text"].split()) >= 4 and "\n" not in sentence["text"]
    prompt = evidence_prompt(e.evidence)  # the facts it was given, and nothing else
    assert e.evidence["concepts"][0]["name"] in prompt and "tabby" in prompt.lower()
    again = explain("efficientnet-lite0", path, sentence=True, llm=llm)[0]
    assert again.evidence["sentence"] == sentence  # seeded
