"""The faceprint REST service: collections of enrolled people behind API keys, and a web page.

Start it with ``faceprint serve --data DIR``; :func:`faceprint.service.app.create_app` builds the
ASGI application for embedding or testing.
"""
