"""An OpenAI-compatible HTTP server for our encoder-decoder models.

  python -m aya_t5x.serve --checkpoint=DIR [--gin_file=...] [--port=8000]

Rooms: `protocol.py` (requests in, responses out: validation, the chat
prompt format, stop strings, usage), `engine.py` (dynamic batching of
concurrent requests into the jitted decoding of `inference.Predictor`),
`app.py` (the Starlette routes, streaming, limits and errors) and
`__main__.py` (the command line, model loading, uvicorn, shutdown).
See docs/serving.md.
"""
