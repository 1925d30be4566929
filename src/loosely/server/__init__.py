"""The HTTP server: an ASGI application (`build_app`) run by uvicorn (`loosely.server.run`)."""
