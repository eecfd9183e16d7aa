"""A small client for OpenAI-compatible chat endpoints (DeepSeek, Ollama, vLLM, OpenAI …): one chat turn, retried.

``POST {base_url}/chat/completions`` with ``{"model", "messages", "temperature", "max_tokens"}``; the reply is
``choices[0].message.content``. The API key is read from the environment variable *named* in the config
(``api_key_env``), so no key sits in a recipe, a flow parameter or an MLflow param; it is sent only in the
Authorization header and cut out of every error message, in case a server echoes the request back.
429 and 5xx answers and dropped connections are retried with exponential back-off (honouring Retry-After);
any other 4xx is the caller's mistake and fails at once.
"""

from __future__ import annotations

import os
import time

import httpx

RETRY_STATUSES = frozenset({408, 409, 429, 500, 502, 503, 504})
MAX_RETRY_AFTER = 60.0  # a server asking for longer than this is down, not busy


class EndpointError(RuntimeError):
    """The endpoint refused or failed: the message has the status and the start of the body, never the key."""


def api_key(api_key_env: str) -> str:
    """Return the key held by the environment variable named ``api_key_env`` ("" when no variable is named)."""
    if not api_key_env:
        return ""
    key = os.environ.get(api_key_env, "")
    if not key:
        raise EndpointError(f"the environment variable {api_key_env} (named by api_key_env) is not set; export it with the endpoint's API key")
    return key


def _scrub(text: str, secret: str) -> str:
    """Return ``text`` with every occurrence of ``secret`` replaced by ***."""
    return text.replace(secret, "***") if secret else text


def _retry_after(response: httpx.Response, fallback: float) -> float:
    """Return the seconds a 429/503 asks to wait (Retry-After in seconds), else ``fallback``."""
    try:
        return min(float(response.headers.get("retry-after", "")), MAX_RETRY_AFTER)
    except ValueError:
        return fallback


def chat(
    base_url: str,
    model: str,
    messages: list[dict],
    api_key_env: str = "",
    timeout: float = 60.0,
    *,
    temperature: float = 0.0,
    max_tokens: int = 512,
    retries: int = 3,
    backoff: float = 1.0,
    client: httpx.Client | None = None,
) -> str:
    """Return the assistant's reply to ``messages`` from the endpoint at ``base_url`` (e.g. ``https://api.deepseek.com/v1``).

    Args:
        api_key_env: name of the environment variable that holds the key; empty: no Authorization header (Ollama).
        retries: further attempts after a 429, a 5xx or a dropped connection, waiting backoff × 2^attempt seconds.
        client: an httpx client to reuse across calls (connection pooling); one is made per call when None.
    """
    key = api_key(api_key_env)
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    body = {"model": model, "messages": messages, "temperature": temperature, "max_tokens": max_tokens, "stream": False}
    url = base_url.rstrip("/") + "/chat/completions"
    own = client is None
    http = client or httpx.Client(timeout=timeout)
    try:
        for attempt in range(retries + 1):
            wait = backoff * 2**attempt
            try:
                response = http.post(url, json=body, headers=headers, timeout=timeout)
            except httpx.TransportError as e:  # refused, reset, timed out: worth another try
                if attempt == retries:
                    raise EndpointError(_scrub(f"{url}: {type(e).__name__}: {e} (after {retries + 1} attempts)", key)) from None
                time.sleep(wait)
                continue
            if response.status_code in RETRY_STATUSES and attempt < retries:
                time.sleep(_retry_after(response, wait))
                continue
            if response.status_code != 200:
                raise EndpointError(_scrub(f"{url} answered {response.status_code}: {response.text[:300]}", key))
            try:
                return response.json()["choices"][0]["message"]["content"] or ""
            except (ValueError, KeyError, IndexError, TypeError):
                raise EndpointError(_scrub(f"{url} answered 200 without choices[0].message.content: {response.text[:300]}", key)) from None
        raise AssertionError("unreachable: the last attempt returns or raises")
    finally:
        if own:
            http.close()
