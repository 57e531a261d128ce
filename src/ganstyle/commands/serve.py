"""``ganstyle serve [RUNS_DIR | CHECKPOINT ...]``: a local web page to apply trained models.

Lists the checkpoints it finds (default ``outputs/``), newest first, each labelled with its model,
run, epoch and monitored metric; a photo dropped on the page comes back translated, beside the
original, as ``ganstyle stylize`` would write it. Needs the web extra: ``pip install ganstyle[web]``.

    ganstyle serve                                   # every run under outputs/, on http://127.0.0.1:7860
    ganstyle serve outputs/train/runs/<run> horse2zebra.ckpt --port 8000
    ganstyle serve --host 0.0.0.0                    # other machines too (printed warning: no login)
"""

from __future__ import annotations

import argparse
import ipaddress
import os
import shutil
import sys
import tempfile
from pathlib import Path

LOOPBACK = ("127.0.0.1", "localhost", "::1")


def is_loopback(host: str) -> bool:
    if host in LOOPBACK:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def run(args: argparse.Namespace) -> int:
    try:
        import gradio  # noqa: F401
    except ImportError:
        print(
            "error: `ganstyle serve` needs the web extra, which is not installed: `pip install 'ganstyle[web]'` "
            "(or `pip install -e '.[web]'` in a checkout).",
            file=sys.stderr,
        )
        return 1
    from ganstyle.web import build_app, find_checkpoints

    sources = args.sources or ["outputs"]
    missing = [source for source in sources if not Path(source).expanduser().exists()]
    if missing:
        print(
            f"error: {', '.join(missing)} does not exist; pass run folders or .ckpt files.", file=sys.stderr
        )
        return 1
    entries = find_checkpoints(sources)
    if not entries:
        print(
            f"error: no ganstyle checkpoint under {', '.join(sources)}. Train one (`python train.py`) or pass "
            "run folders and .ckpt files.",
            file=sys.stderr,
        )
        return 1
    if not is_loopback(args.host):
        print(
            f"warning: serving on {args.host}: anyone who can reach this machine on port {args.port} can use "
            "the page and its models (there is no login). Use the default --host 127.0.0.1 to keep it local.",
            file=sys.stderr,
        )
    # Uploads and results stay in one temporary folder of this server (Gradio's cache included).
    scratch = Path(tempfile.mkdtemp(prefix="ganstyle-serve-"))
    os.environ.setdefault("GRADIO_TEMP_DIR", str(scratch / "uploads"))
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    try:
        app = build_app(entries, device=args.device, output_dir=scratch / "results")
        print(f"{len(entries)} checkpoint(s); open http://{args.host}:{args.port}/ (Ctrl-C stops the server)")
        app.launch(
            server_name=args.host,
            server_port=args.port,
            share=False,
            max_file_size=f"{args.max_upload_mb}mb",
            show_error=True,
            quiet=True,
        )
    except KeyboardInterrupt:
        pass
    finally:  # uploads and results do not outlive the server
        shutil.rmtree(scratch, ignore_errors=True)
    return 0


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "serve",
        help="a local web page to apply trained models (needs ganstyle[web])",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("sources", metavar="RUNS_DIR|CHECKPOINT", nargs="*", help="default: outputs/")
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default: this machine only)")
    parser.add_argument("--port", type=int, default=7860, help="default 7860")
    parser.add_argument("--device", default=None, help="cpu or cuda (default: cuda when available)")
    parser.add_argument("--max-upload-mb", type=int, default=50, help="largest upload accepted (default 50)")
    parser.set_defaults(func=run)
