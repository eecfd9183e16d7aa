"""The one way liandan models generate: the chat template, stop at `<|im_end|>` and eos, greedy or sampled, batched.

SFT's samples, distillation's teacher answers and side-by-side replies, DPO's on-policy pairs, the
generation config every saved model carries (so GRPO's sampling and any later ``model.generate`` stop
where training taught the reply to end) and the evaluation all go through here.

A chat model trained on ChatML ends its reply with `<|im_end|>`; eos (`<|endoftext|>`) ends a document.
Stopping at eos alone lets a sampled reply run past the assistant turn into a made-up next user turn,
so both stop generation. Prompts are left-padded (generation continues from the right end of every row)
and each prompt's ``num_return_sequences`` completions are generated in the same batch.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from tasks.train.config import GenerationSettings

if TYPE_CHECKING:  # torch and transformers load in seconds; configs import GenerationSettings without them
    import torch
    from transformers import GenerationConfig, PreTrainedModel, PreTrainedTokenizerBase

__all__ = ["GenerationSettings", "chat_prompts", "completion_lengths", "generate_texts", "generation_config", "stop_token_ids"]

Prompt = str | list[dict]  # a user turn, or a conversation (system, earlier turns, the last user turn)
CHAT_END_TOKEN = "<|im_end|>"  # ChatML's end of turn, used when a template's end cannot be read from its assistant mask


def chat_prompts(tokenizer: PreTrainedTokenizerBase, prompts: Sequence[Prompt], system: str | None = None) -> list[str]:
    """Return each prompt rendered by the tokenizer's chat template, ending with the opened assistant turn.

    A prompt is a user message, or a whole conversation up to the reply (as SFT's held-out prompts and the
    arithmetic problems are). ``system`` is put first when the conversation has no system message.
    """
    rendered = []
    for prompt in prompts:
        messages = [{"role": "user", "content": prompt}] if isinstance(prompt, str) else list(prompt)
        if system is not None and not (messages and messages[0]["role"] == "system"):
            messages = [{"role": "system", "content": system}, *messages]
        rendered.append(tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False))
    return rendered


def stop_token_ids(tokenizer: PreTrainedTokenizerBase) -> list[int]:
    """Return the ids generation stops at: eos, and the token that ends an assistant turn (`<|im_end|>` for ChatML).

    The end of turn is the last token of the chat template's assistant span (its ``{% generation %}`` markers,
    what SFT trains on); a template without markers falls back to `<|im_end|>` when the vocabulary has it.
    """
    ids = [tokenizer.eos_token_id] if tokenizer.eos_token_id is not None else []
    end_of_turn = None
    try:
        enc = tokenizer.apply_chat_template(
            [{"role": "user", "content": "?"}, {"role": "assistant", "content": "!"}], tokenize=True, return_dict=True, return_assistant_tokens_mask=True
        )
        masked = [t for t, m in zip(enc["input_ids"], enc["assistant_masks"], strict=True) if m]
        end_of_turn = masked[-1] if masked else None
    except (ValueError, TypeError):  # no chat template, or one without {% generation %} markers
        pass
    if end_of_turn is None and CHAT_END_TOKEN in tokenizer.get_vocab():
        end_of_turn = tokenizer.convert_tokens_to_ids(CHAT_END_TOKEN)
    if end_of_turn is not None and end_of_turn not in ids:
        ids.append(end_of_turn)
    return ids


def pad_token_id(tokenizer: PreTrainedTokenizerBase) -> int | None:
    """Return the id generation pads finished rows with: pad, else eos."""
    return tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id


def generation_config(tokenizer: PreTrainedTokenizerBase, settings: GenerationSettings) -> GenerationConfig:
    """Return the transformers GenerationConfig of ``settings`` with this tokenizer's stops and padding (what saved models carry).

    One completion per call: ``num_return_sequences`` is applied by ``generate_texts``, which repeats each prompt
    (greedy search refuses several sequences); sampling knobs are set only when sampling, so the config validates.
    """
    from transformers import GenerationConfig

    sampling = {"do_sample": True, "temperature": settings.temperature, "top_p": settings.top_p, "top_k": settings.top_k or None} if settings.temperature > 0 else {"do_sample": False}
    return GenerationConfig(
        max_new_tokens=settings.max_new_tokens,
        eos_token_id=stop_token_ids(tokenizer),
        pad_token_id=pad_token_id(tokenizer),
        bos_token_id=tokenizer.bos_token_id,
        **sampling,
    )


def completion_lengths(new_tokens: torch.Tensor, stops: list[int]) -> torch.Tensor:
    """Return, per row of generated ids, how many come before the first stop token (the whole row when none does).

    >>> import torch
    >>> completion_lengths(torch.tensor([[5, 6, 0, 1], [7, 8, 9, 9], [3, 1, 5, 0]]), [0, 3]).tolist()
    [2, 4, 0]
    """
    import torch

    is_stop = torch.isin(new_tokens, torch.tensor(stops, device=new_tokens.device, dtype=new_tokens.dtype))
    first = is_stop.int().argmax(dim=1)
    return torch.where(is_stop.any(dim=1), first, torch.full_like(first, new_tokens.shape[1]))


def generate_texts(
    model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, prompts: Sequence[Prompt], settings: GenerationSettings, chat: bool = True
) -> list[list[str]]:
    """Return ``settings.num_return_sequences`` completions per prompt, each cut at its first stop, special tokens removed.

    Args:
        chat: render the prompts with the chat template (a user message, or a conversation, each); off: the
            prompts are raw text continued as they are (a base model's perplexity-style prompts).
    """
    import torch

    texts = chat_prompts(tokenizer, prompts) if chat else [str(p) for p in prompts]
    config = generation_config(tokenizer, settings)
    stops = stop_token_ids(tokenizer)
    n = settings.num_return_sequences
    torch.manual_seed(settings.seed)  # seeds CUDA too
    side, tokenizer.padding_side = tokenizer.padding_side, "left"
    was_training = model.training
    model.eval()
    completions: list[list[str]] = []
    try:
        for start in range(0, len(texts), settings.batch_size):
            enc = tokenizer(texts[start : start + settings.batch_size], return_tensors="pt", padding=True, add_special_tokens=False).to(model.device)
            ids, mask = enc.input_ids.repeat_interleave(n, dim=0), enc.attention_mask.repeat_interleave(n, dim=0)  # a prompt's completions side by side
            with torch.no_grad():
                out = model.generate(input_ids=ids, attention_mask=mask, generation_config=config)
            new = out[:, ids.shape[1] :]
            lengths = completion_lengths(new, stops).tolist()
            decoded = [tokenizer.decode(row[:k], skip_special_tokens=True).strip() for row, k in zip(new.tolist(), lengths, strict=True)]
            completions.extend(decoded[i : i + n] for i in range(0, len(decoded), n))
    finally:
        tokenizer.padding_side = side
        model.train(was_training)
    return completions
