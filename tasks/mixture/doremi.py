"""DoReMi: per-source mixture weights learnt by small proxy models (Xie et al. 2023, arXiv 2305.10429).

1. A reference model trains on a fixed mixture (uniform over sources, as in the paper) for ``ref_steps``.
2. A proxy of the same size trains with Group DRO for ``doremi_steps``. Every step draws the same number of
   windows from each source, and for each source i takes the excess loss
   λ_i = mean over its tokens of max(ℓ_proxy − ℓ_reference, 0): how much the proxy still has to learn there
   that is learnable (the reference learnt it). The weights follow the exponentiated gradient
   α ← normalise(α · exp(η λ)), mixed with uniform by the smoothing ε, and the proxy then steps on
   Σ_i α_i · (its mean loss on source i): the sources it lags on most get the most gradient.
3. The answer is α averaged over all proxy steps.

A source of pure noise has excess ≈ 0 (the reference cannot learn it either) and loses weight; a source the
reference learnt well and the proxy has not yet gains it. The loop is plain PyTorch: HF's Trainer has no room for
per-source loss weights that change every step, and a reader should see the whole algorithm on one screen.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from tasks.mixture.config import DoremiConfig
from tasks.tokenize.config import TokenizerConfig
from tasks.tokenize.encode import DocumentEncoder
from tasks.train.model import build_model

Streams = dict[str, torch.Tensor]  # source → its documents' token ids end to end (each document ends in eos)


@dataclass
class DoremiResult:
    """What DoReMi learnt: the averaged weights, the weights and excess losses of every proxy step, final losses."""

    weights: dict[str, float]  # α averaged over the proxy's steps: the mixture to train on
    history: list[dict[str, float]]  # α after each proxy step (plot it with weights_chart)
    excess: list[dict[str, float]]  # per-source excess loss λ measured at each proxy step
    reference_loss: dict[str, float]  # per-source loss of the reference model, mean of its last steps
    proxy_loss: dict[str, float]  # per-source loss of the proxy model, mean of its last steps
    tokens: dict[str, int]  # tokens per source the proxies sampled from
    seconds: float

    def to_dict(self) -> dict:
        return asdict(self)


@contextmanager
def torch_threads(n: int) -> Iterator[None]:
    """Run the block with ``n`` torch intra-op threads (0: leave torch's setting), then restore it."""
    before = torch.get_num_threads()
    if n:
        torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def proxy_tokenizer(texts_by_source: Mapping[str, list[str]], cfg: DoremiConfig) -> PreTrainedTokenizerBase:
    """Return the tokenizer saved in ``cfg.tokenizer_dir``, or a byte-level BPE trained on the texts in memory."""
    from tasks.tokenize.train import load_tokenizer, train_tokenizer  # transformers' tokenizer classes load slowly

    if cfg.tokenizer_dir:
        return load_tokenizer(cfg.tokenizer_dir)
    return train_tokenizer((t for texts in texts_by_source.values() for t in texts), TokenizerConfig(vocab_size=cfg.vocab_size))


def encode_streams(texts_by_source: Mapping[str, list[str]], tokenizer: PreTrainedTokenizerBase) -> Streams:
    """Return each source's texts encoded end to end, an eos after each (the pack stage's encoder); blank texts skipped."""
    encoder = DocumentEncoder(tokenizer.backend_tokenizer, tokenizer.eos_token_id)
    streams: Streams = {}
    for source, texts in sorted(texts_by_source.items()):
        encoded = [r for r in encoder([{"text": t} for t in texts]) if isinstance(r, dict)]
        if encoded:
            streams[source] = torch.tensor([i for r in encoded for i in r["input_ids"]], dtype=torch.long)
    return streams


def sample_windows(streams: Streams, counts: Mapping[str, int], seq_len: int, gen: torch.Generator) -> torch.Tensor:
    """Return ``counts[source]`` random windows of seq_len + 1 tokens from each stream, sources in name order.

    A stream shorter than a window is repeated end to end until it fills one.
    """
    rows = []
    for source in sorted(counts):
        stream = streams[source]
        if len(stream) < seq_len + 1:
            stream = stream.repeat(math.ceil((seq_len + 1) / len(stream)))
        starts = torch.randint(0, len(stream) - seq_len, (counts[source],), generator=gen)
        rows.extend(stream[s : s + seq_len + 1] for s in starts.tolist())
    return torch.stack(rows)


def token_losses(model: PreTrainedModel, windows: torch.Tensor) -> torch.Tensor:
    """Return the next-token loss of every position of every window: shape (windows, seq_len)."""
    logits = model(input_ids=windows[:, :-1]).logits
    return F.cross_entropy(logits.flatten(0, 1).float(), windows[:, 1:].flatten(), reduction="none").view(windows.shape[0], -1)


def per_source(losses: torch.Tensor, k: int) -> torch.Tensor:
    """Return the mean of (k × n windows, seq_len) losses per source, for windows grouped by source."""
    return losses.view(k, -1, losses.shape[-1]).mean(dim=(1, 2))


def _optimizer(model: torch.nn.Module, cfg: DoremiConfig) -> torch.optim.Optimizer:
    return torch.optim.AdamW(model.parameters(), lr=cfg.learning_rate, weight_decay=cfg.weight_decay, betas=(0.9, 0.95))


def _tail_mean(rows: list[torch.Tensor], sources: list[str]) -> dict[str, float]:
    """Return the per-source mean of the last tenth of the rows (steady-state loss, not one noisy batch)."""
    tail = torch.stack(rows[-max(1, len(rows) // 10) :]).mean(dim=0)
    return {s: round(float(v), 4) for s, v in zip(sources, tail)}


def train_weighted(model: PreTrainedModel, streams: Streams, weights: Mapping[str, float], steps: int, cfg: DoremiConfig, gen: torch.Generator) -> list[torch.Tensor]:
    """Train ``model`` on Σ weight × per-source loss over balanced batches; return each step's per-source losses."""
    sources = sorted(streams)
    w = torch.tensor([weights[s] for s in sources], device=model.device)
    per = max(1, cfg.batch_size // len(sources))
    opt = _optimizer(model, cfg)
    model.train()
    history = []
    for _ in range(steps):
        windows = sample_windows(streams, dict.fromkeys(sources, per), cfg.seq_len, gen).to(model.device)
        losses = per_source(token_losses(model, windows), len(sources))
        (w * losses).sum().backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)
        history.append(losses.detach().cpu())
    return history


def train_proxy(proxy: PreTrainedModel, reference: PreTrainedModel, streams: Streams, cfg: DoremiConfig, gen: torch.Generator) -> tuple[list[torch.Tensor], list[torch.Tensor], list[torch.Tensor], list[torch.Tensor]]:
    """Train the proxy with Group DRO against the reference; return per step α, excess loss, proxy and reference losses."""
    sources = sorted(streams)
    k = len(sources)
    per = max(1, cfg.batch_size // k)
    alpha = torch.full((k,), 1.0 / k, device=proxy.device)
    opt = _optimizer(proxy, cfg)
    reference.eval()
    proxy.train()
    alphas, excesses, proxy_losses, ref_losses = [], [], [], []
    for _ in range(cfg.doremi_steps):
        windows = sample_windows(streams, dict.fromkeys(sources, per), cfg.seq_len, gen).to(proxy.device)
        with torch.no_grad():
            ref_tokens = token_losses(reference, windows)
        proxy_tokens = token_losses(proxy, windows)
        excess = per_source((proxy_tokens.detach() - ref_tokens).clamp_min(0), k)  # clipped per token, then averaged
        alpha = alpha * torch.exp(cfg.eta * excess)
        alpha = (1 - cfg.smoothing) * alpha / alpha.sum() + cfg.smoothing / k
        losses = per_source(proxy_tokens, k)
        (alpha * losses).sum().backward()
        torch.nn.utils.clip_grad_norm_(proxy.parameters(), 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)
        alphas.append(alpha.cpu())
        excesses.append(excess.cpu())
        proxy_losses.append(losses.detach().cpu())
        ref_losses.append(per_source(ref_tokens, k).cpu())
    return alphas, excesses, proxy_losses, ref_losses


def doremi_weights(
    texts_by_source: Mapping[str, list[str]],
    cfg: DoremiConfig,
    reference_weights: Mapping[str, float] | None = None,
    tokenizer: PreTrainedTokenizerBase | None = None,
) -> DoremiResult:
    """Return the DoReMi weights of the sources with text, learnt by a reference and a Group DRO proxy model.

    Args:
        reference_weights: the reference model's mixture; None: uniform.
        tokenizer: encodes the texts; None: ``cfg.tokenizer_dir``'s, or one trained on the texts.
    """
    started = time.perf_counter()
    tokenizer = tokenizer if tokenizer is not None else proxy_tokenizer(texts_by_source, cfg)
    streams = encode_streams(texts_by_source, tokenizer)
    sources = sorted(streams)
    if not sources:
        raise ValueError("DoReMi needs at least one source with text")
    ref_w = {s: (reference_weights or {}).get(s, 0.0) for s in sources} if reference_weights else dict.fromkeys(sources, 1.0 / len(sources))
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    with torch_threads(cfg.cpu_threads):
        gen = torch.Generator().manual_seed(cfg.seed)
        reference = build_model(cfg.model, tokenizer, seed=cfg.seed).to(device)
        train_weighted(reference, streams, ref_w, cfg.ref_steps, cfg, gen)
        proxy = build_model(cfg.model, tokenizer, seed=cfg.seed + 1).to(device)
        alphas, excesses, proxy_losses, ref_losses = train_proxy(proxy, reference, streams, cfg, gen)
    mean = torch.stack(alphas).mean(dim=0)
    mean = mean / mean.sum()  # each α sums to 1; dividing again only removes float drift
    return DoremiResult(
        weights={s: float(v) for s, v in zip(sources, mean)},
        history=[{s: round(float(v), 6) for s, v in zip(sources, a)} for a in alphas],
        excess=[{s: round(float(v), 4) for s, v in zip(sources, e)} for e in excesses],
        reference_loss=_tail_mean(ref_losses, sources),
        proxy_loss=_tail_mean(proxy_losses, sources),
        tokens={s: len(streams[s]) for s in sources},
        seconds=round(time.perf_counter() - started, 3),
    )


def train_on_mixture(model: PreTrainedModel, streams: Streams, weights: Mapping[str, float], steps: int, cfg: DoremiConfig, gen: torch.Generator) -> list[float]:
    """Train ``model`` on windows whose sources are drawn by ``weights`` (how the main model uses a mixture); return the losses."""
    sources = sorted(streams)
    probs = torch.tensor([weights.get(s, 0.0) for s in sources], dtype=torch.float)
    opt = _optimizer(model, cfg)
    model.train()
    losses = []
    for _ in range(steps):
        drawn = torch.multinomial(probs, cfg.batch_size, replacement=True, generator=gen)
        counts = {s: int((drawn == i).sum()) for i, s in enumerate(sources)}
        windows = sample_windows(streams, {s: n for s, n in counts.items() if n}, cfg.seq_len, gen).to(model.device)
        loss = token_losses(model, windows).mean()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)
        losses.append(loss.item())
    return losses


@torch.no_grad()
def heldout_loss(model: PreTrainedModel, streams: Streams, seq_len: int) -> dict[str, float]:
    """Return each source's mean next-token loss over its whole stream, read in consecutive windows."""
    model.eval()
    out = {}
    for source, stream in sorted(streams.items()):
        total, count = 0.0, 0
        for start in range(0, len(stream) - 1, seq_len):
            window = stream[start : start + seq_len + 1].unsqueeze(0).to(model.device)
            losses = token_losses(model, window)
            total += float(losses.sum())
            count += losses.numel()
        out[source] = total / count
    return out
