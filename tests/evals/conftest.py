"""Tiny real checkpoints for eval tests: a random GPT-2 and a small BPE tokenizer on disk."""

from pathlib import Path

import pytest

from app.evals.corpus import demo_corpus, make_corpus, split

torch = pytest.importorskip("torch")


@pytest.fixture(scope="session")
def tiny_corpus():
    # A slice of the demo corpus keeps every suite to a second or two on a tiny model.
    return make_corpus("pydoc-slice", demo_corpus().texts[:80])


def save_tiny_model(out: Path, texts: list[str], seed: int = 0, n_layer: int = 1) -> Path:
    from transformers import GPT2Config, GPT2LMHeadModel

    from app.evals.demo_family import EOT, _train_tokenizer

    tok = _train_tokenizer(texts, 300)
    eot = tok.convert_tokens_to_ids(EOT)
    torch.manual_seed(seed)
    cfg = GPT2Config(vocab_size=len(tok), n_positions=128, n_embd=32, n_layer=n_layer,
                     n_head=2, bos_token_id=eot, eos_token_id=eot)
    GPT2LMHeadModel(cfg).save_pretrained(out, safe_serialization=True)
    tok.save_pretrained(out)
    return out


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory, tiny_corpus) -> Path:
    train, _ = split(tiny_corpus)
    return save_tiny_model(tmp_path_factory.mktemp("tiny-a"), train)


@pytest.fixture(scope="session")
def tiny_model_b(tmp_path_factory, tiny_corpus) -> Path:
    train, _ = split(tiny_corpus)
    return save_tiny_model(tmp_path_factory.mktemp("tiny-b"), train, seed=1, n_layer=2)


def pytest_configure(config):
    config.addinivalue_line("markers", "slow: builds real checkpoints; still run by default")


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict[str, bytes]:
    """The files of a tiny GPT-2 checkpoint (modules may define their own `files`)."""
    from tests.checkpoints.tiny import checkpoint_files, tiny_gpt2

    return checkpoint_files(tiny_gpt2(tmp_path_factory.mktemp("tiny")))
