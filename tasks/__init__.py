"""The work of liandan: pure steps over batches of records, and thin Prefect task wrappers."""
