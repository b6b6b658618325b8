"""A tiny character-level transformer language model on a text file shipped in the repo.

    python examples/char_transformer.py [--steps 600] [--text examples/data/frameworks.txt]

Token and position embeddings, two causal TransformerEncoderLayers (d_model 64, 4 heads),
a linear head over the characters. The training loss (nats per character) falls well
below the text's unigram entropy, the loss of the best model that ignores context;
then the model samples a few lines.
"""

from __future__ import annotations

import argparse
import pathlib
import time

import numpy as np

import ember
from ember import nn

TEXT = pathlib.Path(__file__).with_name("data") / "frameworks.txt"


class CharTransformer(nn.Module):
    def __init__(self, vocab: int, context: int, d_model: int = 64, layers: int = 2) -> None:
        super().__init__()
        self.tokens = nn.Embedding(vocab, d_model)
        self.positions = nn.Embedding(context, d_model)
        layer = nn.TransformerEncoderLayer(
            d_model,
            nhead=4,
            dim_feedforward=4 * d_model,
            dropout=0.0,
            batch_first=True,
            norm_first=True,
        )
        self.encoder = nn.TransformerEncoder(layer, layers)
        self.norm = nn.LayerNorm(d_model)
        self.head = nn.Linear(d_model, vocab)
        mask = np.triu(np.full((context, context), -np.inf, dtype=np.float32), 1)
        self.register_buffer("causal", ember.from_numpy(mask), persistent=False)

    def forward(self, idx: ember.Tensor) -> ember.Tensor:
        t = idx.shape[1]
        x = self.tokens(idx) + self.positions(ember.arange(t))
        x = self.encoder(x, mask=self.causal[:t, :t])
        return self.head(self.norm(x))


def unigram_entropy(ids: np.ndarray, vocab: int) -> float:
    p = np.bincount(ids, minlength=vocab) / len(ids)
    p = p[p > 0]
    return float(-(p * np.log(p)).sum())


def main(argv: list[str] | None = None) -> tuple[float, float]:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--text", type=pathlib.Path, default=TEXT)
    ap.add_argument("--steps", type=int, default=600)
    ap.add_argument("--context", type=int, default=64)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--lr", type=float, default=3e-3)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)

    text = args.text.read_text(encoding="utf-8")
    chars = sorted(set(text))
    stoi = {c: i for i, c in enumerate(chars)}
    ids = np.array([stoi[c] for c in text], dtype=np.int64)
    h_unigram = unigram_entropy(ids, len(chars))
    print(f"{len(text)} characters, vocabulary {len(chars)}, unigram entropy {h_unigram:.3f}")

    ember.manual_seed(args.seed)
    rng = np.random.default_rng(args.seed)
    model = CharTransformer(len(chars), args.context)
    opt = ember.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=0.01)
    sched = ember.optim.lr_scheduler.OneCycleLR(opt, max_lr=args.lr, total_steps=args.steps)
    loss_fn = nn.CrossEntropyLoss()

    start = time.perf_counter()
    recent: list[float] = []
    for step in range(1, args.steps + 1):
        starts = rng.integers(0, len(ids) - args.context - 1, args.batch_size)
        window = np.stack([ids[s : s + args.context + 1] for s in starts])
        x, y = ember.from_numpy(window[:, :-1]), ember.from_numpy(window[:, 1:])
        opt.zero_grad()
        logits = model(x)
        loss = loss_fn(logits.reshape(-1, len(chars)), y.reshape(-1))
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
        recent = [*recent, loss.item()][-50:]
        if step % 100 == 0 or step == args.steps:
            print(f"step {step:4d}  loss {sum(recent) / len(recent):.3f} nats/char")
    final = sum(recent) / len(recent)
    print(
        f"final loss {final:.3f} vs unigram entropy {h_unigram:.3f} "
        f"({final / h_unigram:.0%}) in {time.perf_counter() - start:.1f}s"
    )
    print("sample:", repr(sample(model, chars, stoi, "A framework ", 120, args.context)))
    return final, h_unigram


def sample(
    model: nn.Module, chars: list[str], stoi: dict[str, int], prompt: str, n: int, context: int
) -> str:
    model.eval()
    out = [stoi[c] for c in prompt]
    g = ember.Generator().manual_seed(1)
    with ember.no_grad():
        for _ in range(n):
            idx = ember.tensor([out[-context:]])
            probs = ember.softmax(model(idx)[0, -1], dim=-1).numpy().astype(np.float64)
            out.append(int(g.numpy.choice(len(chars), p=probs / probs.sum())))
    model.train()
    return "".join(chars[i] for i in out)


if __name__ == "__main__":
    main()
