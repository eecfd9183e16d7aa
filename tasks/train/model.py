"""Build a small Qwen2/Llama causal LM from ``ModelConfig``, or load one strictly from a path or hub id.

Strict means: a checkpoint whose keys or shapes do not match the architecture raises. ``from_pretrained``
alone only warns and leaves the missing weights random, which is how small-LLM projects ship models that
silently never loaded.
"""

from __future__ import annotations

import hashlib
import math

import torch
from transformers import AutoModelForCausalLM, LlamaConfig, PretrainedConfig, PreTrainedModel, PreTrainedTokenizerBase, Qwen2Config

from tasks.train.config import ModelConfig


class LoadError(RuntimeError):
    """A checkpoint that does not fit its architecture: the message lists the keys."""


def model_config(cfg: ModelConfig, tokenizer: PreTrainedTokenizerBase) -> PretrainedConfig:
    """Return the HF config of a new model sized by ``cfg`` with the tokenizer's vocabulary and special ids."""
    vocab = math.ceil(len(tokenizer) / cfg.pad_vocab_to_multiple) * cfg.pad_vocab_to_multiple
    common = dict(
        vocab_size=vocab,
        hidden_size=cfg.hidden_size,
        intermediate_size=cfg.intermediate_size,
        num_hidden_layers=cfg.num_layers,
        num_attention_heads=cfg.num_heads,
        num_key_value_heads=cfg.num_kv_heads,
        max_position_embeddings=cfg.max_position_embeddings,
        rope_parameters={"rope_type": "default", "rope_theta": cfg.rope_theta},
        tie_word_embeddings=cfg.tie_word_embeddings,
        initializer_range=cfg.initializer_range,
        rms_norm_eps=cfg.rms_norm_eps,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    return Qwen2Config(**common) if cfg.arch == "qwen2" else LlamaConfig(**common)


def load_model_strict(path: str, **kwargs) -> PreTrainedModel:
    """Return the causal LM at ``path`` (folder or hub id); raise LoadError on missing, unexpected or mis-shaped weights."""
    model, info = AutoModelForCausalLM.from_pretrained(path, output_loading_info=True, **kwargs)
    problems = {k: sorted(v) for k, v in info.items() if k in ("missing_keys", "unexpected_keys", "mismatched_keys", "error_msgs") and v}
    if problems:
        raise LoadError(f"{path} does not load strictly: {problems}")
    return model


def build_model(cfg: ModelConfig, tokenizer: PreTrainedTokenizerBase, seed: int) -> PreTrainedModel:
    """Return a new model initialised from ``seed`` — or, with ``cfg.base_model``, that model loaded strictly."""
    if cfg.base_model:
        model = load_model_strict(cfg.base_model, attn_implementation=cfg.attn_implementation)
        if model.get_input_embeddings().num_embeddings < len(tokenizer):
            raise LoadError(f"{cfg.base_model} has {model.get_input_embeddings().num_embeddings} embeddings for a tokenizer of {len(tokenizer)} tokens")
        return model
    torch.manual_seed(seed)  # every rank builds the same weights (DDP also broadcasts rank 0's)
    return AutoModelForCausalLM.from_config(model_config(cfg, tokenizer), attn_implementation=cfg.attn_implementation)


def count_parameters(model: torch.nn.Module) -> int:
    """Return the number of distinct parameters (tied embeddings counted once)."""
    return sum(getattr(p, "ds_numel", p.numel()) for p in model.parameters())  # ZeRO-3 leaves numel() 0 on partitioned ones


def parameter_checksum(model: torch.nn.Module) -> str:
    """Return a sha256 over every parameter's bytes in name order: equal on two ranks means equal weights."""
    h = hashlib.sha256()
    for name, p in sorted(model.named_parameters()):
        h.update(name.encode())
        h.update(p.detach().float().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()


def generate_text(model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, prompt: str, max_new_tokens: int = 32) -> str:
    """Return the greedy continuation of ``prompt`` (the new text only)."""
    ids = tokenizer(prompt, return_tensors="pt", add_special_tokens=False).input_ids.to(model.device)
    with torch.no_grad():
        out = model.generate(ids, max_new_tokens=max_new_tokens, do_sample=False, pad_token_id=tokenizer.pad_token_id or tokenizer.eos_token_id)
    return tokenizer.decode(out[0, ids.shape[1] :], skip_special_tokens=True)
