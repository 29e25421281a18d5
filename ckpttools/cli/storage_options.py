"""``--storage-option KEY=VALUE``: settings for the fsspec backend of URL arguments (shared by commands)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

import click

from ..storage import sources

F = TypeVar("F", bound=Callable)


def parse_storage_options(items: tuple[str, ...]) -> dict:
    """``("anon=true", "endpoint_url=http://h:9000")`` -> ``{"anon": True, "endpoint_url": "http://h:9000"}``.

    Values that read as JSON (true, 3, {"a": 1}) are taken as such, anything else as a string.
    """
    import json  # here, not at the top: every command's start-up would pay for it

    options: dict = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise click.BadParameter(f"{item!r}: expected KEY=VALUE", param_hint="--storage-option")
        try:
            options[key.strip()] = json.loads(value)
        except ValueError:
            options[key.strip()] = value
    return options


def _apply(ctx: click.Context, param: click.Parameter, value: tuple[str, ...]) -> None:
    token = sources.set_options(parse_storage_options(value) if value else None)
    ctx.call_on_close(lambda: sources.reset_options(token))


def _apply_cache(ctx: click.Context, param: click.Parameter, value: object) -> None:
    if param.name == "no_cache" and value:
        token = sources.set_cache_dir(None)
    elif param.name == "cache_dir" and value:
        token = sources.set_cache_dir(str(value))
    else:
        return
    ctx.call_on_close(lambda: sources.reset_cache_dir(token))


def storage_option(command: F) -> F:
    """Add ``--storage-option``, ``--cache-dir`` and ``--no-cache``: they apply to every URL the command opens."""
    command = click.option(
        "--no-cache", is_flag=True, expose_value=False, callback=_apply_cache,
        help="Do not use the cache directory for URLs (not even $CKPTTOOLS_CACHE_DIR).",
    )(command)
    command = click.option(
        "--cache-dir", metavar="DIR", expose_value=False, callback=_apply_cache,
        type=click.Path(file_okay=False), help="Cache bytes read from URLs in DIR, keyed by each object's "
        "ETag/generation, for repeated reads (default: $CKPTTOOLS_CACHE_DIR, else no cache).",
    )(command)
    return click.option(
        "--storage-option", "storage_options", multiple=True, metavar="KEY=VALUE", expose_value=False,
        callback=_apply, is_eager=True,
        help="Setting for the URL's storage backend (fsspec), e.g. anon=true or endpoint_url=http://host:9000 "
             "(repeatable).",
    )(command)
