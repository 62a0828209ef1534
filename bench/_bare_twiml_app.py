"""The bound for ``bench/inbound_sms.py``: Twilio's webhook path answered with fixed TwiML.

    python bench/_bare_twiml_app.py --port 8001 [--log-level warning]

The same stack as ``dunwell serve`` (FastAPI on uvicorn, one process, the
same ``uvicorn.run`` call) with one bare route at the webhook's path. It
reads the request body, as any handler must before answering on a
keep-alive connection, and returns a constant empty ``<Response/>``: no
form parsing, no signature check, no database. Whatever rate it holds is
the ceiling the server stack and the load generator put on the real route.
"""

from __future__ import annotations

import argparse

import uvicorn
from fastapi import FastAPI, Request, Response

TWIML = '<?xml version="1.0" encoding="UTF-8"?><Response />'

app = FastAPI(title="bare TwiML")


@app.post("/twilio/{slug}/sms")
async def inbound_sms(slug: str, request: Request) -> Response:
    await request.body()
    return Response(TWIML, media_type="application/xml")


@app.get("/health")
def health() -> dict[str, str]:
    return {"status": "ok"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--log-level", default="warning")
    args = parser.parse_args()
    # As dunwell.cli's serve: the app object itself, so no import string or reload.
    uvicorn.run(app, host=args.host, port=args.port, log_level=args.log_level)


if __name__ == "__main__":
    main()
