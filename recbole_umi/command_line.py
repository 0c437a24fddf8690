"""The command line's arguments: ``recbole-umi``, ``python -m recbole_umi`` and
run_recbole_umi.py parse them here and hand the run to :func:`recbole_umi.quick_start.main`.

Light on purpose (the standard library, yaml and :mod:`recbole_umi.settings`): ``--help``,
``--version`` and a mistake in the arguments answer before torch and RecBole load, which takes
seconds.
"""

from __future__ import annotations

import argparse
import sys

from recbole_umi.cli import command

__all__ = ["DEFAULT_MODEL", "DEFAULT_DATASET", "build_arg_parser", "console_main", "settings_help"]

DEFAULT_MODEL = "UMI"
# Ships inside the recbole package, so the default run needs no network.
DEFAULT_DATASET = "ml-100k"


def _version() -> str:
    from importlib import metadata

    from recbole_umi import __version__

    return f"recbole-umi {__version__} (RecBole {metadata.version('recbole')}, torch {metadata.version('torch')})"


def settings_help() -> str:
    """Every recbole-umi setting with what it may hold (:data:`recbole_umi.settings.SETTINGS`)
    and its defaults in the plugin's YAML files, for ``--help``: generated, so it cannot drift."""
    import yaml

    from recbole_umi.resources import resource_dir
    from recbole_umi.settings import SETTINGS

    files = [resource_dir("properties") / "overall.yaml", *sorted((resource_dir("properties") / "model").glob("*.yaml")),
             *sorted(resource_dir("dataset_configs").glob("*.yaml"))]
    defaults: dict[str, list[str]] = {}
    for path in files:
        for key, value in (yaml.safe_load(path.read_text()) or {}).items():
            defaults.setdefault(key, []).append(f"{path.stem} {value!r}" if path.stem != "overall" else repr(value))
    lines = ["settings (--key=value, besides RecBole's own; defaults from properties/ and dataset_configs/,",
             "a model's or a dataset's file winning over overall.yaml):"]
    for key, spec in SETTINGS.items():
        shown = "; ".join(defaults.get(key, [])) or "none (give it where needed)"
        lines.append(f"  {key:<27} {spec.describe()}; default: {shown}")
    return "\n".join(lines)


def build_arg_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="recbole-umi",  # also python run_recbole_umi.py and python -m recbole_umi
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=settings_help(),
        allow_abbrev=False,  # passed-through --key=value settings must never be read as an abbreviated option
        description="Train and evaluate a recbole-umi or RecBole model. Any further "
        "--key=value sets that config key (highest priority).",
    )
    parser.add_argument("--model", "-m", default=None, help=f"model name (default {DEFAULT_MODEL}, or the checkpoint's)")
    parser.add_argument("--dataset", "-d", default=None, help=f"dataset name (default {DEFAULT_DATASET}, or the checkpoint's)")
    parser.add_argument("--config_files", default=None, help="comma-separated YAML files, later ones win")
    parser.add_argument("--version", action="version", version=_version())
    parser.add_argument("--debug", action="store_true", help="show the traceback of an error (also RECBOLE_UMI_DEBUG=1)")
    checkpoint = parser.add_mutually_exclusive_group()
    checkpoint.add_argument(
        "--evaluate", metavar="CHECKPOINT", default=None,
        help="test a saved model instead of training (its saved settings; --key=value overrides them, e.g. --data_path)",
    )
    checkpoint.add_argument(
        "--resume", metavar="CHECKPOINT", default=None,
        help="continue an interrupted run from its checkpoint (normally <model>-<time>-last.pth)",
    )
    return parser


def console_main() -> int:
    """The ``recbole-umi`` console script, ``python -m recbole_umi`` and run_recbole_umi.py:
    the arguments parsed here first (``--help`` and ``--version`` end here), then
    :func:`recbole_umi.quick_start.main` through :func:`recbole_umi.cli.command` (a user's
    mistake is one line on stderr and exit status 2; ``--debug`` shows the traceback);
    returns the exit status."""
    build_arg_parser().parse_known_args(sys.argv[1:])
    from recbole_umi import quick_start

    return command(quick_start.main, prog="recbole-umi")
