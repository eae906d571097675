"""WSGI entry point: `flask --app wsgi run` and `gunicorn wsgi:app`."""

from api import create_app

app = create_app()
