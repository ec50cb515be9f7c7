"""``clbench data``: where the image data sets are, and fetching them on a machine with a network.

``clbench data status`` lists each data set with its folder and whether its files are there;
``clbench data fetch mnist cifar100`` downloads them with torchvision (checked against its MD5
sums). Copy the root folder to machines without a network and point ``$CLBENCH_DATA`` (or
``--set benchmark.root=...``) at it.
"""

from __future__ import annotations

from pathlib import Path

import click

from clbench.errors import UserError
from clbench.text import printable

_ROOT_HELP = "data folder (default: $CLBENCH_DATA, else ~/.cache/clbench/data)"


def _root(root: str | None) -> Path:
    from clbench_vision.data import default_root

    path = Path(root).expanduser() if root else default_root()
    if path.exists() and not path.is_dir():
        raise UserError(f"--root {printable(str(path))!r} is a file; it must be a folder")
    return path


@click.group("data")
def data_command() -> None:
    """Where the image data sets are; fetch them (needs a network)."""


@data_command.command("status")
@click.option("--root", default=None, help=_ROOT_HELP)
def status(root: str | None) -> None:
    """List each data set, its folder and whether its files are there."""
    from clbench_vision.data import DATASETS, missing_files

    path = _root(root)
    click.echo(f"data root: {printable(str(path))}")
    for key, spec in DATASETS.items():
        missing = missing_files(spec, path)
        state = "present" if not missing else f"missing {len(missing)} of {len(spec.files)} files"
        click.echo(f"  {key:<14} {state:<26} {printable(str(path / spec.folder))}")


@data_command.command("fetch")
@click.argument("names", nargs=-1, required=True)
@click.option("--root", default=None, help=_ROOT_HELP)
def fetch(names: tuple[str, ...], root: str | None) -> None:
    """Download data sets NAMES (mnist, fashion-mnist, cifar10, cifar100, or all) into the root."""
    from clbench_vision.data import DATASETS, download, missing_files

    wanted = list(DATASETS) if "all" in names else list(dict.fromkeys(names))
    unknown = [n for n in wanted if n not in DATASETS]
    if unknown:
        raise UserError(f"unknown data set {unknown[0]!r}; allowed: {', '.join(DATASETS)}, all")
    path = _root(root)
    for key in wanted:
        spec = DATASETS[key]
        if not missing_files(spec, path):
            click.echo(f"{key}: already in {printable(str(path / spec.folder))}")
            continue
        click.echo(f"{key}: downloading into {printable(str(path))} ...", err=True)
        download(spec, path)
        click.echo(f"{key}: done", err=True)
