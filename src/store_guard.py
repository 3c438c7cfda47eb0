"""Model commands refuse a texts-only store at once, naming the tables they need.

A store imported from a reviews or return-comments export alone holds texts and no
orders (``ppx.data.stores.texts``). Every command that takes ``--world`` / ``--store``
for a model whose spec reads order tables checks the folder before doing anything, so
the user reads "this store holds texts only; ppx train churn needs customers, orders,
..." instead of a failure deep inside feature building. ``ppx.data.io.load_tables``
refuses such a store too, for any other caller.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable

import typer

#: command parameters that name a world or store folder
FOLDER_PARAMS = ("world", "store")


def reads_orders(spec) -> bool:
    """Whether a model needs more than the text tables a texts-only store holds."""
    from ppx.data.schema import TEXT_TABLES

    return not set(spec.reads) <= set(TEXT_TABLES)


def guarded(callback: Callable, command: str, model: str | None = None) -> Callable:
    """``callback`` that first refuses a texts-only ``--world`` / ``--store``.

    ``model`` is the command's model (``ppx train churn``); without it, the command's
    ``model`` argument names it (``ppx score churn``, ``ppx tune churn``).
    """
    sig = inspect.signature(callback)
    folders = [p for p in FOLDER_PARAMS if p in sig.parameters]
    if not folders:
        return callback

    @functools.wraps(callback)
    def run(*args, **kwargs):
        from ppx.data.io import holds_texts_only, texts_only_message
        from ppx.models import registry
        from ppx.terminal import fail

        bound = sig.bind_partial(*args, **kwargs).arguments
        name = model or bound.get("model")
        for p in folders:
            folder = bound.get(p)
            if folder is None or not holds_texts_only(folder):
                continue
            spec = registry.get(name) if name in registry.names() else None
            if spec is not None and not reads_orders(spec):
                continue
            what = f"`ppx {command} {name}`" if name else f"`ppx {command}`"
            fail(texts_only_message(folder, what, spec.reads if spec else ()))
        return callback(*args, **kwargs)

    return run


def guard_group(group: typer.Typer, command: str) -> None:
    """Guard every model sub-command of a typer group (``train``, ``evaluate``, ...)."""
    for info in group.registered_commands:
        name = info.name or (info.callback.__name__ if info.callback else None)
        if info.callback is not None:
            info.callback = guarded(info.callback, command, name)


def guard_app(app: typer.Typer, commands: tuple[str, ...]) -> None:
    """Guard top-level commands that take the model as an argument (score, tune, explain)."""
    for info in app.registered_commands:
        if info.name in commands and info.callback is not None:
            info.callback = guarded(info.callback, info.name)
