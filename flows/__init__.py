"""Prefect flows of liandan: orchestration only; the work lives in ``tasks``."""
