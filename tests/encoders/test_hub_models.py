"""The hub paths (hf:, st:) on tiny random-weight models built here: no network needed."""
import numpy as np
import pytest

from wordsight.encoders import create, get_config


@pytest.fixture(scope="module")
def tiny_vit(tmp_path_factory):
    from transformers import ViTConfig, ViTImageProcessor, ViTModel

    d = tmp_path_factory.mktemp("tiny-vit")
    cfg = ViTConfig(image_size=32, patch_size=8, hidden_size=24, num_hidden_layers=1,
                    num_attention_heads=2, intermediate_size=48)
    ViTModel(cfg).save_pretrained(d)
    ViTImageProcessor(size={"height": 32, "width": 32}, image_mean=[0.4] * 3, image_std=[0.2] * 3).save_pretrained(d)
    return d


@pytest.fixture(scope="module")
def tiny_sentence_model(tmp_path_factory):
    from sentence_transformers import SentenceTransformer, models
    from transformers import BertConfig, BertModel, BertTokenizerFast

    raw = tmp_path_factory.mktemp("tiny-bert")
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "a", "cat", "dog", "photo", "of"]
    (raw / "vocab.txt").write_text("\n".join(vocab))
    BertTokenizerFast(vocab_file=str(raw / "vocab.txt")).save_pretrained(raw)
    BertModel(BertConfig(vocab_size=len(vocab), hidden_size=16, num_hidden_layers=1,
                         num_attention_heads=2, intermediate_size=32)).save_pretrained(raw)
    out = tmp_path_factory.mktemp("tiny-st")
    SentenceTransformer(modules=[models.Transformer(str(raw)), models.Pooling(16)]).save(str(out))
    return out


def test_hf_vit_preprocessing_from_its_config(tiny_vit, cat_image):
    cfg = get_config(f"hf:{tiny_vit}")
    assert (cfg.input_size, cfg.resize_mode, cfg.interpolation) == (32, "exact", "bilinear")
    assert cfg.mean == pytest.approx((0.4,) * 3)
    enc = create(f"hf:{tiny_vit}")
    x = enc.preprocess(cat_image)
    assert x.shape == (3, 32, 32)
    out = enc.encode_arrays(np.stack([x, x]))
    assert out["embedding"].shape == (2, 24) and enc.config.dim == 24
    assert "logits" not in out


def test_st_text_encoder(tiny_sentence_model):
    enc = create(f"st:{tiny_sentence_model}")
    v = enc.encode(["a photo of a cat", "dog"])
    assert v.shape == (2, 16) and enc.config.dim == 16
    assert np.allclose(np.linalg.norm(v, axis=1), 1, atol=1e-5)
