"""WSGI entry point for gunicorn (``wsgi:app``) and Vercel.

Vercel's builder looks for ``app`` assigned at the top level of this file, and its
loader prefers a top-level name ``handler`` over ``app``: never define one here.
A configuration error raises (``ConfigError`` names the variable); gunicorn then stops
with "Worker failed to boot".
"""

from vapi_bridge import create_app

app = create_app()
