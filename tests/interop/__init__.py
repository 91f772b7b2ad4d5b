"""Interop tests: llmstreamer against third-party servers started on 127.0.0.1 (see README.md)."""
