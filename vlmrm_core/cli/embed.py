"""The ``vlmrm embed`` command: fill the embedding cache for a dataset or files, locally or on Ray."""

from __future__ import annotations

import argparse
import contextlib
import sys
from typing import Any

from vlmrm_core.cli.options import (
    add_model_options,
    model_request,
    positive_int,
    reward_file_path,
)
from vlmrm_core.errors import CliError


def add_embed_command(sub: Any) -> None:
    """Register ``vlmrm embed`` on the top-level sub-parsers."""
    p = sub.add_parser(
        "embed",
        help="fill the embedding cache for a dataset or files (locally or on a Ray cluster)",
        description="Embed every frame not yet cached for the model, writing to the cache as "
        "batches finish (an interrupted run resumes). Last line: "
        "`embedded N new, M already cached`.",
    )
    p.add_argument("inputs", nargs="*", metavar="INPUT", help="image files, folders, videos")
    p.add_argument("--dataset", help="embed a stored dataset instead of files")
    add_model_options(p, device=False)
    p.add_argument(
        "--reward",
        metavar="FILE",
        help="a reward file: embed for its model (the one `vlmrm score --reward FILE` uses)",
    )
    p.add_argument("--device", default=None, help="local engine: cuda or cpu (default: auto)")
    p.add_argument("--batch-size", type=positive_int, default=32, help="frames per forward pass")
    p.add_argument("--engine", default="local", choices=["local", "ray"])
    p.add_argument(
        "--address",
        default=None,
        help="Ray cluster to join: auto, ray://HOST:10001 or HOST:6379 (default: "
        "$VLMRM_RAY_ADDRESS, else a local cluster for this command)",
    )
    p.add_argument(
        "--actors", type=positive_int, default=None, help="Ray actor pool size (default: auto)"
    )
    p.set_defaults(handler=cmd_embed)


def cmd_embed(args: argparse.Namespace) -> int:
    from vlmrm_core.scale.embed import EmbedModel, embed_frames, unique_uncached
    from vlmrm_core.store import init_db

    if bool(args.inputs) == bool(args.dataset):
        raise CliError("give either INPUT files/folders or --dataset NAME (one of the two)")
    if args.engine == "local" and args.address:
        raise CliError("--address needs --engine ray")
    ref = embed_model_ref(args)
    model = EmbedModel(
        ref.architecture, ref.pretrained, ref.aspect.value, ref.precision.value, ref.resize.value
    )
    engine = init_db()
    items = _items(engine, args)
    todo, _ = unique_uncached(engine, model.encoder_key, (h for h, _ in items))
    # A Ray cluster takes seconds to start (or join): only when something needs embedding.
    session = _session(args) if todo else contextlib.nullcontext()
    with _Counter() as progress, session:
        report = embed_frames(
            engine,
            items,
            model,
            engine_kind=args.engine if todo else "local",
            device=args.device,
            batch_size=args.batch_size,
            num_actors=args.actors,
            progress=progress,
        )
    if model.identity.endswith("/random-init"):
        print("vlmrm: warning: untrained (random) weights", file=sys.stderr)
    print(report.summary)
    return 0


def embed_model_ref(args: argparse.Namespace) -> Any:
    """The model to embed with: a reward file's (``--reward FILE``), or the model options', by
    the rule of every command (:func:`vlmrm_core.services.reward_resolver.resolve_model`)."""
    from vlmrm_core.services.reward_resolver import RewardRequest, resolve_model, resolve_reward

    path = reward_file_path(args.reward)
    if path is not None:
        return resolve_reward(RewardRequest(reward_file=path), model_request(args)).model
    return resolve_model(model_request(args))


def _session(args: argparse.Namespace) -> Any:
    """The Ray session of ``--engine ray`` (``--address``, else ``$VLMRM_RAY_ADDRESS``, else a
    local cluster for this command); nothing for the local engine."""
    if args.engine != "ray":
        return contextlib.nullcontext()
    from vlmrm_core.scale.cluster import configured_address, ray_session

    return ray_session(args.address or configured_address())


def _items(engine: Any, args: argparse.Namespace) -> list[tuple[str, Any]]:
    from pathlib import Path

    from vlmrm_core.scale.embed import iter_stored_items, png_bytes

    if args.dataset:
        from vlmrm_core.store import NotFoundError, get_dataset

        try:
            get_dataset(engine, args.dataset)
        except NotFoundError:
            raise CliError(
                f"no dataset named {args.dataset!r}: `vlmrm frames list` shows them"
            ) from None
        return list(iter_stored_items(engine, args.dataset))
    from vlmrm_core.frames import Rejection
    from vlmrm_core.sources.uploads import iter_paths

    for path in args.inputs:
        if not Path(path).exists():
            raise CliError(f"{path}: no such file or folder")
    items = []
    for item in iter_paths(args.inputs):
        if isinstance(item, Rejection):
            raise CliError(f"{item.name}: {item.reason}")
        items.append((item.hash, png_bytes(item.pixels)))
    return items


class _Counter:
    """A tqdm bar on a terminal; otherwise a plain counter line on stderr every ~10%."""

    def __enter__(self) -> Any:
        from tqdm import tqdm

        self.bar = None
        self.last = -1

        def update(done: int, total: int) -> None:
            if sys.stderr.isatty():
                if self.bar is None:
                    self.bar = tqdm(total=total, desc="embedding", unit="frame")
                self.bar.update(done - self.bar.n)
            elif done == total or done * 10 // max(total, 1) > self.last:
                self.last = done * 10 // max(total, 1)
                print(f"embedding: {done}/{total} frames", file=sys.stderr, flush=True)

        return update

    def __exit__(self, *exc: object) -> None:
        if self.bar is not None:
            self.bar.close()
