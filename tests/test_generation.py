"""The one generation module: ChatML prompts, stop at `<|im_end|>` and eos, batching, completions per prompt."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch", reason="generation needs torch")

from tasks.train.generation import GenerationSettings, chat_prompts, generate_texts, generation_config, stop_token_ids  # noqa: E402

TWO_TURNS = [
    {"role": "user", "content": "你好吗"},
    {"role": "assistant", "content": "很好"},
    {"role": "user", "content": "再见"},
    {"role": "assistant", "content": "明天见"},
]


@pytest.fixture(scope="module")
def tokenizer(tiny_base):
    from tasks.tokenize.train import load_tokenizer

    return load_tokenizer(tiny_base[1])


@pytest.fixture(scope="module")
def chatty_model(tiny_base, tokenizer):
    """The tiny model overfit on one two-turn conversation: after its first reply it goes on with the next user turn."""
    from tasks.train.model import load_model_strict

    model = load_model_strict(str(tiny_base[0]))
    text = tokenizer.apply_chat_template(TWO_TURNS, tokenize=False)
    ids = tokenizer(text, return_tensors="pt", add_special_tokens=False).input_ids
    torch.manual_seed(0)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    model.train()
    for _ in range(600):  # ~150 steps usually; the exact count moves with the tokenizer library's merges
        loss = model(input_ids=ids, labels=ids).loss
        if loss.item() < 0.05:
            break
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    assert loss.item() < 0.1  # it has learnt the conversation by heart
    return model.eval()


def test_chat_prompts_render_chatml_with_the_assistant_turn_open(tokenizer):
    assert chat_prompts(tokenizer, ["你好吗"], system="你是助手。") == [
        "<|im_start|>system\n你是助手。<|im_end|>\n<|im_start|>user\n你好吗<|im_end|>\n<|im_start|>assistant\n"
    ]
    conversation = [{"role": "system", "content": "只用中文回答。"}, {"role": "user", "content": "一加一等于几"}]
    assert chat_prompts(tokenizer, [conversation], system="你是助手。") == [
        "<|im_start|>system\n只用中文回答。<|im_end|>\n<|im_start|>user\n一加一等于几<|im_end|>\n<|im_start|>assistant\n"
    ]


def test_stop_token_ids_are_eos_and_im_end(tokenizer):
    assert stop_token_ids(tokenizer) == [tokenizer.eos_token_id, tokenizer.convert_tokens_to_ids("<|im_end|>")]


def test_generation_stops_at_im_end_where_eos_alone_runs_into_the_next_turn(chatty_model, tokenizer):
    settings = GenerationSettings(max_new_tokens=24)
    assert generate_texts(chatty_model, tokenizer, ["你好吗"], settings) == [["很好"]]

    prompt = tokenizer(chat_prompts(tokenizer, ["你好吗"]), return_tensors="pt", add_special_tokens=False)
    eos_only = chatty_model.generate(**prompt, max_new_tokens=24, do_sample=False, eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id)
    ran_on = tokenizer.decode(eos_only[0, prompt.input_ids.shape[1] :], skip_special_tokens=True)
    assert ran_on.startswith("很好") and "再见" in ran_on  # the old stop: the reply runs into a made-up user turn


def test_batched_greedy_equals_one_by_one(chatty_model, tokenizer):
    prompts = ["你好吗", "今天天气怎么样？", [{"role": "system", "content": "只用中文回答。"}, {"role": "user", "content": "一加一等于几"}]]
    batched = generate_texts(chatty_model, tokenizer, prompts, GenerationSettings(max_new_tokens=12, batch_size=3))
    single = generate_texts(chatty_model, tokenizer, prompts, GenerationSettings(max_new_tokens=12, batch_size=1))
    assert batched == single
    assert len(batched) == 3 and all(len(c) == 1 for c in batched)
    assert tokenizer.padding_side == "right" and not chatty_model.training  # restored as they were


def test_num_return_sequences_gives_that_many_completions_per_prompt(chatty_model, tokenizer):
    settings = GenerationSettings(max_new_tokens=8, temperature=1.5, top_k=50, top_p=0.95, num_return_sequences=3, batch_size=2, seed=7)
    first = generate_texts(chatty_model, tokenizer, ["你好吗", "再见", "一加一等于几"], settings)
    assert [len(c) for c in first] == [3, 3, 3]
    assert first == generate_texts(chatty_model, tokenizer, ["你好吗", "再见", "一加一等于几"], settings)  # the seed decides the samples
    assert all("<|im_end|>" not in t and "<|pad|>" not in t for c in first for t in c)


def test_raw_text_prompts_continue_without_the_template(chatty_model, tokenizer):
    text = chat_prompts(tokenizer, ["你好吗"])[0]
    assert generate_texts(chatty_model, tokenizer, [text], GenerationSettings(max_new_tokens=24), chat=False) == [["很好"]]


def test_generation_config_carries_the_stops_and_survives_a_save(tmp_path, tokenizer):
    from transformers import GenerationConfig

    greedy = generation_config(tokenizer, GenerationSettings(max_new_tokens=40))
    assert (greedy.eos_token_id, greedy.pad_token_id, greedy.do_sample, greedy.max_new_tokens) == (stop_token_ids(tokenizer), tokenizer.pad_token_id, False, 40)
    sampled = generation_config(tokenizer, GenerationSettings(temperature=0.7, top_p=0.9, top_k=20))
    assert (sampled.do_sample, sampled.temperature, sampled.top_p, sampled.top_k) == (True, 0.7, 0.9, 20)
    sampled.save_pretrained(tmp_path)
    assert GenerationConfig.from_pretrained(tmp_path).eos_token_id == stop_token_ids(tokenizer)


def test_settings_refuse_out_of_range_values():
    from pydantic import ValidationError

    with pytest.raises(ValidationError):
        GenerationSettings(temperature=-0.1)
    with pytest.raises(ValidationError):
        GenerationSettings(top_p=0)
    with pytest.raises(ValidationError):
        GenerationSettings(num_return_sequences=0)
