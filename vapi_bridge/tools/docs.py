"""The documentation's "Tool definitions to paste into Vapi" block, written from ``DEFINITIONS``.

``python -m vapi_bridge.tools.docs [REPO]`` rewrites the block between the markers in place;
``tests/test_vapi_setup.py`` fails when the committed block differs from ``block()``.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

from .definitions import DEFINITIONS, function

START = "<!-- tool-definitions:start (python -m vapi_bridge.tools.docs) -->"
END = "<!-- tool-definitions:end -->"
DOC_FILES = ("docs/tools.md", "README.md")  # the first that has the markers


def block() -> str:
    tools = [{"type": "function", "function": function(name),
              "server": {"url": "https://<your host>/vapi/webhook",
                         "credentialId": "<your credential id>"}} for name in DEFINITIONS]
    return f"{START}\n\n```json\n{json.dumps(tools, indent=2)}\n```\n\n{END}"


def doc_file(root: Path) -> Path:
    for name in DOC_FILES:
        path = root / name
        if path.exists() and START in path.read_text(encoding="utf-8"):
            return path
    raise FileNotFoundError(f"no file of {', '.join(DOC_FILES)} has the marker {START}")


def rewrite(text: str) -> str:
    """``text`` with the block between the markers replaced by ``block()``."""
    pattern = re.compile(re.escape(START) + r".*?" + re.escape(END), re.DOTALL)
    return pattern.sub(lambda _: block(), text, count=1)


if __name__ == "__main__":  # rewrites the block in place
    path = doc_file(Path(sys.argv[1] if len(sys.argv) > 1 else "."))
    path.write_text(rewrite(path.read_text(encoding="utf-8")), encoding="utf-8")
    print(f"wrote the tool definitions into {path}")
