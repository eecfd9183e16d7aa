"""Train: build a small Qwen2/Llama causal LM (or take any HF model) and pretrain it on packed sequences.

Light on import (the configs); ``tasks.train.model``, ``.pretrain`` and ``.task`` import torch and
transformers and are imported where a model is built or trained.
"""

from tasks.train.config import ModelConfig, PretrainConfig, PretrainJob, check_hardware, to_training_arguments

__all__ = ["ModelConfig", "PretrainConfig", "PretrainJob", "check_hardware", "to_training_arguments"]
