"""Evaluation of every model stage and the gate that promotes the chat model (see tasks/evaluate/stage.py)."""
