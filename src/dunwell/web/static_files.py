"""Serving a folder's static files: the hosted pages' and the dashboard's.

Each folder keeps its own allow-list (the caller passes the media type it
allows, or None); the headers are the same for both, so neither can drop
``nosniff`` and let a browser guess a script out of a style sheet.
"""

from __future__ import annotations

from pathlib import Path

from fastapi.responses import FileResponse, Response


def serve_static(folder: Path, name: str, media_type: str | None, max_age: int) -> Response:
    """The file ``name`` directly in ``folder``; 404 when not allowed (no media type) or absent."""
    path = folder / name
    # Only files that sit directly in the folder: no "..", no subfolders.
    if media_type is None or path.parent != folder or not path.is_file():
        return Response(status_code=404)
    headers = {"Cache-Control": f"public, max-age={max_age}", "X-Content-Type-Options": "nosniff"}
    return FileResponse(path, media_type=media_type, headers=headers)
