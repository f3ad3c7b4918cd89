"""Kefu agent workspace: the web app where human agents take over conversations.

Run ``python -m workspace --port 8081`` (see ``__main__`` for the
environment variables) or build the app yourself with
``workspace.app.create_app(store, rasa_client)``.
"""
