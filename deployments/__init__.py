"""Prefect deployments of liandan's flows: schedules, work pools, the data-completed trigger (deploy.py)."""
