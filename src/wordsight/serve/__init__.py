"""Serving over HTTP: FastAPI app, micro-batcher, limits, metrics and a web page.

Needs the ``serve`` extra (``pip install 'wordsight[serve]'``). See docs/manual.md, "Serving".
"""
from .app import create_app
from .batcher import MicroBatcher
from .server import BackgroundServer, serve
from .settings import Batching, Limits, ServeSettings

__all__ = ["BackgroundServer", "Batching", "Limits", "MicroBatcher", "ServeSettings", "create_app", "serve"]
