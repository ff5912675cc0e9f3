"""Next-token prediction on real text (Tian, Wang, Chen & Du 2023,
arXiv:2305.16380, Fig. 7 and App. G): a 1-layer transformer on a plain-text
corpus, WikiText-2 by default."""

import functools
import math
from collections import Counter
from pathlib import Path
from typing import ClassVar

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from ..._problem import AbstractProblem
from ..._typing import Array, Float
from .._common import check_choice, check_data_seed, check_float, check_int, find_shared_data

UNK = "<unk>"


def default_corpus() -> Path | None:
    """WikiText-2's validation split: `$GRADFLOW_DATA/wikitext-2/valid.txt`, else
    `shared/data/wikitext-2/valid.txt` beside the project (searched upwards from
    the working directory and from this package). None if not found."""
    return find_shared_data("wikitext-2/valid.txt")


def load_corpus(path: str, vocab: int) -> tuple[np.ndarray, tuple[str, ...]]:
    """Token ids of a whitespace-split text and its vocabulary.

    The file is read on every call; its tokenisation is memoised on the file's
    contents (never on its path, which may hold another text next time).

    **Arguments:**

    - `path`: the text file.
    - `vocab`: the vocabulary size: `<unk>` (id 0) plus the `vocab − 1` most
      frequent words; every other word maps to `<unk>`.

    **Returns:**

    `(ids, words)`: the token ids as an array, and the vocabulary as a tuple
    (word i has id i).
    """
    if vocab < 2:
        raise ValueError(f"field `vocab` must be >= 2 (<unk> and at least one word); got {vocab}.")
    try:
        raw = Path(path).read_bytes()
    except OSError as e:
        raise ValueError(f"field `path`: cannot read corpus {path!r} ({e.strerror or e}); give a readable text file.") from None
    ids, itos = _tokenise(raw, vocab)
    if ids is None:
        raise ValueError(f"field `path`: corpus {path!r} is empty; give a text file with words in it.")
    return ids, itos


@functools.lru_cache(maxsize=8)
def _tokenise(raw: bytes, vocab: int):
    words = raw.decode("utf-8", errors="replace").split()
    if not words:
        return None, ()
    counts = Counter(w for w in words if w != UNK)
    itos = (UNK, *[w for w, _ in counts.most_common(vocab - 1)])
    stoi = {w: i for i, w in enumerate(itos)}
    ids = np.fromiter((stoi.get(w, 0) for w in words), dtype=np.int32, count=len(words))
    ids.flags.writeable = False  # shared by every caller with the same text
    return ids, itos


def sinusoidal(length: int, d: int) -> np.ndarray:
    pos = np.arange(length)[:, None]
    freq = np.exp(-math.log(10000.0) * np.arange(0, d, 2) / d)
    out = np.zeros((length, d))
    out[:, 0::2] = np.sin(pos * freq)
    out[:, 1::2] = np.cos(pos * freq)[:, : d // 2]
    return out


class TextTransformer(eqx.Module):
    """Embeddings E, attention W_Q, W_K, W_V and an output layer.

    The last context token is the query and attends over the whole context; the
    attended value vector is ℓ2-normalised before the output layer (the paper's
    LN).

    **Arguments:**

    - `E`: the embeddings, vocab × d.
    - `WQ`, `WK`, `WV`: the attention matrices, d × d.
    - `out`: the output layer, vocab × d.
    - `pos`: the fixed positional encoding, context × d (zeros = none).
    """

    E: Float[Array, "vocab d"]
    WQ: Float[Array, "d d"]
    WK: Float[Array, "d d"]
    WV: Float[Array, "d d"]
    out: Float[Array, "vocab d"]
    pos: Float[Array, "context d"]  # fixed positional encoding (zeros = none)

    def attention(self, tokens):
        x = self.E[tokens] + self.pos
        q = x[..., -1, :] @ self.WQ.T
        k = x @ self.WK.T
        scores = jnp.einsum("...td,...d->...t", k, q) / math.sqrt(x.shape[-1])
        return jax.nn.softmax(scores, axis=-1), x

    def __call__(self, tokens):
        b, x = self.attention(tokens)
        h = jnp.einsum("...t,...td->...d", b, x @ self.WV.T)
        # ℓ2-normalised attended vector, LN(x) = x/‖x‖ as in the paper's model.
        h = h / jnp.sqrt(jnp.sum(h * h, axis=-1, keepdims=True) + 1e-12)
        return h @ self.out.T


class TextNextToken(AbstractProblem):
    """Predict the next word of a text window with a 1-layer transformer.

    Observables: training loss, held-out loss and accuracy, and the mean
    entropy of the query's attention over the context on held-out windows.

    **Arguments:**

    - `path`: a plain-text file; None = WikiText-2 validation split from
      `shared/data`.
    - `vocab`: most frequent words + <unk>.
    - `context`: the window length.
    - `n_train`, `n_heldout`: windows per seed: training windows from the first
      90% of the corpus, held-out windows from the last 10%.
    - `d`: the embedding width.
    - `positional`: "none" (the paper's setting) or "sinusoidal".
    - `init_scale`: the std of every weight matrix entry is init_scale/√d;
      embeddings have std init_scale.
    - `data_seed`: None: windows drawn per seed; an integer to share them
      across seeds.
    """

    default_t1: ClassVar[float] = 100.0

    path: str | None = None
    vocab: int = 500
    context: int = 16
    n_train: int = 512
    n_heldout: int = 256
    d: int = 32
    positional: str = "none"
    init_scale: float = 1.0
    data_seed: int | None = None

    def __check_init__(self):
        check_int("vocab", self.vocab, minimum=2)
        for name in ("context", "n_train", "n_heldout", "d"):
            check_int(name, getattr(self, name))
        check_choice("positional", self.positional, ("none", "sinusoidal"))
        check_float("init_scale", self.init_scale)
        check_data_seed(self.data_seed)
        if self.path is not None and not isinstance(self.path, str):
            raise ValueError(f"field `path` must be a file path (str) or None; got {self.path!r}.")
        ids, _ = self.corpus()
        if ids.size < 10 * (self.context + 1):
            raise ValueError(
                f"field `path`: the corpus has {ids.size} words, too few for windows of context {self.context} "
                "(need at least 10 × (context + 1)); give a longer text or a shorter context."
            )

    def corpus_path(self) -> str:
        if self.path is not None:
            return self.path
        found = default_corpus()
        if found is None:
            raise ValueError(
                "field `path`: no corpus given and WikiText-2 was not found (looked for "
                "shared/data/wikitext-2/valid.txt and $GRADFLOW_DATA); pass --set path=FILE."
            )
        return str(found)

    def corpus(self):
        return load_corpus(self.corpus_path(), self.vocab)

    def init(self, key):
        ids, itos = self.corpus()
        V, d, w = len(itos), self.d, self.context + 1
        split = int(0.9 * ids.size)
        corpus = jnp.asarray(ids)
        kd, *kw = jax.random.split(key, 7)
        kt, kh = jax.random.split(kd if self.data_seed is None else jax.random.PRNGKey(self.data_seed))
        starts_train = jax.random.randint(kt, (self.n_train,), 0, split - w)
        starts_held = jax.random.randint(kh, (self.n_heldout,), split, ids.size - w)
        window = lambda s: corpus[s[:, None] + jnp.arange(w)]  # noqa: E731
        s = self.init_scale / math.sqrt(d)
        pos = sinusoidal(self.context, d) if self.positional == "sinusoidal" else np.zeros((self.context, d))
        model = TextTransformer(
            E=self.init_scale * jax.random.normal(kw[0], (V, d)),
            WQ=s * jax.random.normal(kw[1], (d, d)),
            WK=s * jax.random.normal(kw[2], (d, d)),
            WV=s * jax.random.normal(kw[3], (d, d)),
            out=s * jax.random.normal(kw[4], (V, d)),
            pos=jnp.asarray(pos),
        )
        return model, {"train": window(starts_train), "heldout": window(starts_held)}

    def trainable(self, model):
        mask = jax.tree_util.tree_map(lambda _: True, model)
        return eqx.tree_at(lambda m: m.pos, mask, False)

    @staticmethod
    def _ce(model, windows):
        logits = model(windows[:, :-1])
        target = windows[:, -1]
        return jax.nn.logsumexp(logits, -1) - jnp.take_along_axis(logits, target[:, None], -1)[:, 0], logits

    def loss(self, model, data):
        return jnp.mean(self._ce(model, data["train"])[0])

    def observables(self, model, data):
        ce, logits = self._ce(model, data["heldout"])
        b, _ = model.attention(data["heldout"][:, :-1])
        entropy = -jnp.sum(b * jnp.log(jnp.maximum(b, 1e-300)), axis=-1)
        return {
            "loss": self.loss(model, data),
            "heldout_loss": jnp.mean(ce),
            "heldout_accuracy": jnp.mean(jnp.argmax(logits, -1) == data["heldout"][:, -1]),
            "attention_entropy": jnp.mean(entropy),
        }

    def describe_observables(self):
        return {
            "loss": "training cross-entropy",
            "heldout_loss": "held-out cross-entropy",
            "heldout_accuracy": "held-out next-token accuracy",
            "attention_entropy": "attention entropy (held-out mean)",
        }


def paper_scale_text(path: str | None = None) -> "TextNextToken":
    """A paper-scale configuration of the WikiText experiment.

    The sizes are our choice, not taken from the paper: a scale typical for a
    1-layer language model on WikiText-2: every
    word of the validation split in the vocabulary (13,776 distinct words, so no
    word maps to <unk> but <unk> itself), context 64, embedding width 128, 8,192
    training and 1,024 held-out windows per seed. One SGD step is about 45 GFLOP
    (the output layer dominates); see benchmarks/README.md for its measured cost.

    **Arguments:**

    - `path`: the text file, as for `TextNextToken` (None = WikiText-2's
      validation split).

    **Returns:**

    A `TextNextToken`.
    """
    return TextNextToken(path=path, vocab=13_776, context=64, d=128, n_train=8192, n_heldout=1024)
