"""``wordsight serve [MODEL_DIR]``: the HTTP API and web page on uvicorn."""
from __future__ import annotations

import sys

HELP = "serve a saved model (or zero-shot only) over HTTP, with a web page at /"


def add_parser(sub):
    from ..features.views import VIEW_CHOICES
    from ..frontend.counts import count_option
    from ._precision import add_precision_option

    p = sub.add_parser("serve", help=HELP)
    p.add_argument("model_dir", nargs="?", default=None,
                   help="a saved Classifier folder; omit it to serve zero-shot only")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1: this machine only)")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--workers", type=int, default=1, help="worker processes (each loads the model once)")
    p.add_argument("--api-key-env", metavar="VAR", default=None,
                   help="require the API key held in environment variable VAR (X-API-Key header)")
    g = p.add_argument_group("limits")
    g.add_argument("--max-upload-mb", type=float, default=20.0, help="largest image file, in MiB (default 20)")
    g.add_argument("--max-megapixels", type=float, default=40.0, help="largest image, in megapixels (default 40)")
    g.add_argument("--max-side", type=int, default=20_000, help="longest image side, in pixels (default 20000)")
    g.add_argument("--max-aspect", type=float, default=50.0, help="largest aspect ratio, long:short (default 50)")
    g.add_argument("--max-images", type=int, default=32, help="images per request (default 32)")
    g.add_argument("--max-request-mb", type=float, default=64.0, help="whole request body, in MiB (default 64)")
    g.add_argument("--max-zero-shot-texts", type=int, default=1024,
                   help="texts one zero-shot request may embed: classes x templates or descriptions (default 1024)")
    g.add_argument("--timeout", type=float, default=30.0, help="seconds per request (default 30)")
    g.add_argument("--header-timeout", type=float, default=10.0,
                   help="seconds a client has to send a request's headers (default 10)")
    g.add_argument("--keep-alive", type=float, default=5.0, help="seconds an idle connection is kept (default 5)")
    g = p.add_argument_group("micro-batching")
    g.add_argument("--max-batch", type=int, default=16, help="images per model call (1: no batching; default 16)")
    g.add_argument("--max-wait-ms", type=float, default=10.0,
                   help="how long a batch waits for more images after its first (default 10)")
    p.add_argument("--top-k", **count_option("top_k"), default=5, help="classes returned per image unless a request says")
    p.add_argument("--zero-shot-encoder", default=None,
                   help="encoder for zero-shot (default: the model's own, else efficientnet-lite0)")
    p.add_argument("--text-model", default="minilm", help="text encoder for zero-shot (default minilm)")
    p.add_argument("--zero-shot-view", default="auto", choices=VIEW_CHOICES,
                   help="image view zero-shot reads (auto: chosen from each request's images)")
    add_precision_option(p, None, "; default: what the model's features had at fit")
    p.add_argument("--log-level", default="info")
    p.set_defaults(func=run)


def settings_from_args(args):
    from ..serve.settings import MB, Batching, Limits, ServeSettings, api_key_from_env

    api_key_from_env(args.api_key_env)  # fail now, not in each worker, when the variable is unset
    limits = Limits(max_upload_bytes=int(args.max_upload_mb * MB), max_pixels=int(args.max_megapixels * 1e6),
                    max_side=args.max_side, max_aspect=args.max_aspect, max_images=args.max_images,
                    max_request_bytes=int(args.max_request_mb * MB), max_zero_shot_texts=args.max_zero_shot_texts,
                    timeout_s=args.timeout, header_timeout_s=args.header_timeout, keep_alive_s=args.keep_alive)
    return ServeSettings(model_dir=args.model_dir, limits=limits,
                         batching=Batching(max_batch=args.max_batch, max_wait_ms=args.max_wait_ms),
                         api_key_env=args.api_key_env, top_k=args.top_k, zero_shot_encoder=args.zero_shot_encoder,
                         zero_shot_view=args.zero_shot_view, text_model=args.text_model,
                         precision=args.precision)


def run(args) -> int:
    try:
        from ..serve import serve
    except ImportError as e:
        raise RuntimeError(f"serving needs the serve extra: pip install 'wordsight[serve]' ({e})") from None
    from ._precision import encoder_phrase, use_precision

    settings = settings_from_args(args)
    if args.model_dir:
        from ..estimator import load_model_folder

        model = load_model_folder(args.model_dir)  # every check of loading, as one line, before uvicorn starts
        print(f"wordsight serve: {use_precision(model, args.precision)}", file=sys.stderr)
    else:
        print(f"wordsight serve: zero-shot {encoder_phrase(args.zero_shot_encoder or 'efficientnet-lite0')}",
              file=sys.stderr)
    if args.host not in ("127.0.0.1", "localhost", "::1") and not args.api_key_env:
        print(f"wordsight serve: warning: listening on {args.host} without --api-key-env: anyone who can "
              "reach this address can use the API", file=sys.stderr)
    what = args.model_dir or "zero-shot only"
    print(f"wordsight serve: {what} on http://{args.host}:{args.port}/ (API docs at /docs)", file=sys.stderr)
    serve(settings, host=args.host, port=args.port, workers=args.workers, log_level=args.log_level)
    return 0
