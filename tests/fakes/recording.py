"""Where Vapi keeps recordings: GET /recordings/<name> answers a WAV (or whatever a test sets)."""

from __future__ import annotations

import io
import re
import threading
import wave

from werkzeug import Request, Response

from .http import Fake


def wav(seconds: float = 0.25, rate: int = 8000) -> bytes:
    """A real WAV file of silence (16-bit mono), as Vapi records (``wav;l16``)."""
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as file:
        file.setnchannels(1)
        file.setsampwidth(2)
        file.setframerate(rate)
        file.writeframes(b"\0\0" * int(seconds * rate))
    return buffer.getvalue()


class FakeRecordings(Fake):
    def __init__(self):
        super().__init__()
        self.body = wav()
        self.content_type = "audio/wav"
        self.gate: threading.Event | None = None  # set: answers wait until it is set
        self.streamed = False  # chunked, without a Content-Length
        self.redirect_to: str | None = None
        self.route(re.compile(r"/recordings/.+"), "GET", self._get)

    def url_for(self, name: str = "call-1-mono.wav") -> str:
        return self.server.url_for(f"/recordings/{name}")

    def _handle(self, request: Request, handler) -> Response:
        if self.gate is not None:
            self.gate.wait(timeout=30)  # outside the fake's lock: other requests still answer
        return super()._handle(request, handler)

    def _get(self, request: Request) -> Response:
        if self.redirect_to:
            return Response(status=302, headers={"Location": self.redirect_to})
        if self.streamed:
            chunks = [self.body[i:i + 512] for i in range(0, len(self.body), 512)]
            return Response(iter(chunks), content_type=self.content_type)
        return Response(self.body, content_type=self.content_type)
