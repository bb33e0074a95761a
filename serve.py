#!/usr/bin/env python
"""Local use: the prediction function with the shipped checkpoint, and the web page beside it,
served the way Cloud Functions serves the function (functions-framework's gunicorn server).

  python serve.py            # then open http://localhost:8080/web/
"""

import argparse
import os
from pathlib import Path

from flask import redirect, send_from_directory
from functions_framework import create_app

from hdr_jax import webpage

ROOT = Path(__file__).resolve().parent


def build_app():
    """The function's own app (functions-framework) plus the static page under /web/."""
    webpage.register_mime_types()
    app = create_app(target="predict", source=str(ROOT / "function" / "main.py"))
    web = ROOT / "web"
    app.add_url_rule("/web", "web_root", lambda: redirect("/web/"))
    app.add_url_rule("/web/", "web_index", lambda: send_from_directory(web, "index.html"))
    app.add_url_rule("/web/<path:name>", "web_file", lambda name: send_from_directory(web, name))
    return app


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8080)
    parser.add_argument("--checkpoint", default=None,
                        help="the model the page reads with on the device (default: the "
                             "shipped one, or $HDR_CHECKPOINT)")
    args = parser.parse_args()
    try:  # The page reads on the device too once it has the model and the runtime beside it.
        webpage.build(args.checkpoint or os.environ.get("HDR_CHECKPOINT")
                      or webpage.ROOT / "checkpoints" / "alexnet-mnist")
    except (OSError, ValueError, webpage.WebpageError) as e:
        print(f"hdr-jax: the page will read through the API only: {e}", flush=True)
    app = build_app()
    print(f"hdr-jax: open http://{args.host}:{args.port}/web/  (API at "
          f"http://{args.host}:{args.port}/)", flush=True)
    # What `functions-framework --source ... --target predict` runs: gunicorn, one worker
    # forked after the app is built (the model loads in the worker; see lifecycle.ColdStart).
    from functions_framework._http import create_server

    create_server(app, debug=False).run(args.host, args.port)


if __name__ == "__main__":
    main()
