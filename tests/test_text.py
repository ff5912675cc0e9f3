"""The real-text pipeline (Tian et al.'s WikiText experiment): corpus reading,
vocabulary, windows, the model, training; on a tiny fixture and on WikiText-2."""

import jax
import numpy as np
import optax
import pytest

import gradflow as gf
from gradflow.problems import TextNextToken, load_corpus
from gradflow.problems.scan_snap import default_corpus

SENTENCES = [
    "the cat sat on the mat .", "the dog sat on the rug .", "a cat ran to the dog .",
    "the bird sang on the tree .", "a dog saw the cat on the mat .",
]


@pytest.fixture(scope="module")
def tiny_corpus(tmp_path_factory):
    rng = np.random.default_rng(0)
    path = tmp_path_factory.mktemp("text") / "tiny.txt"
    path.write_text("\n".join(SENTENCES[i] for i in rng.integers(0, len(SENTENCES), 200)) + "\n")
    return str(path)


def test_vocabulary_and_ids(tiny_corpus):
    ids, itos = load_corpus(tiny_corpus, 6)
    assert itos[0] == "<unk>" and len(itos) == 6
    words = open(tiny_corpus).read().split()
    assert ids.size == len(words)
    assert itos[1] == "the"  # the most frequent word
    # Words outside the vocabulary map to <unk>; words inside map back to themselves.
    for w, i in zip(words[:50], ids[:50]):
        assert itos[i] == (w if w in itos else "<unk>")


def test_windows_and_training(tiny_corpus):
    problem = TextNextToken(path=tiny_corpus, vocab=16, context=4, n_train=64, n_heldout=32, d=8)
    model, data = problem.init(jax.random.PRNGKey(0))
    assert data["train"].shape == (64, 5) and data["heldout"].shape == (32, 5)
    run = gf.train(problem, optax.sgd(1.0), steps=200, dt=1.0, seeds=2, save=gf.LinearGrid(5))
    assert run.ok.all()
    loss = run.obs["loss"]
    assert (loss[:, -1] < 0.7 * loss[:, 0]).all()
    ent = run.obs["attention_entropy"]
    assert (ent <= np.log(4) + 1e-9).all() and (ent >= 0).all()  # entropy over 4 positions


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(path="/nonexistent/corpus.txt"), "cannot read"),
        (dict(vocab=1), "`vocab`"),
        (dict(positional="learned"), "`positional`"),
        (dict(context=0), "`context`"),
    ],
)
def test_bad_inputs(kwargs, match, tiny_corpus):
    kwargs.setdefault("path", tiny_corpus)
    with pytest.raises(ValueError, match=match):
        TextNextToken(**kwargs)


def test_empty_and_short_corpora(tmp_path):
    empty = tmp_path / "empty.txt"
    empty.write_text("   \n")
    with pytest.raises(ValueError, match="empty"):
        TextNextToken(path=str(empty))
    short = tmp_path / "short.txt"
    short.write_text("just a few words here")
    with pytest.raises(ValueError, match="too few"):
        TextNextToken(path=str(short))
    folder = tmp_path / "dir.txt"
    folder.mkdir()
    with pytest.raises(ValueError, match="cannot read"):
        TextNextToken(path=str(folder))


@pytest.mark.skipif(default_corpus() is None, reason="shared/data/wikitext-2 is not present on this machine")
def test_wikitext_validation_split():
    ids, itos = load_corpus(str(default_corpus()), 1000)
    assert ids.size == 213_886  # the split's whitespace-separated words (shared/data/README.md)
    assert itos[:4] == ("<unk>", "the", ",", ".")
    problem = TextNextToken(vocab=1000)
    _, data = problem.init(jax.random.PRNGKey(0))
    assert int(data["heldout"].min()) >= 0 and int(data["train"].max()) < 1000
