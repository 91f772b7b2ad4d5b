"""The session stores behind `llmstreamer.open_session_store`: one module per kind of store."""
