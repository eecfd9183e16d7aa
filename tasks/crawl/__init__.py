"""Crawl: fetch pages and files from seed URLs into a WARC file and records for the extract/OCR stages."""
