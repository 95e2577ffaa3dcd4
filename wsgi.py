"""WSGI entry point for gunicorn (``wsgi:app``) and Vercel.

Vercel's loader prefers a top-level name ``handler`` over ``app``: never define one here.
"""

from vapi_bridge import create_app

app = create_app()
