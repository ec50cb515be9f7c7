"""What clbench's install costs on disk, per extra, measured in the environment this script runs in.

For clbench itself and each extra it declares, the script follows the requirements through the
installed distributions (their metadata, markers evaluated for this interpreter) and sums the size
of the files each distribution installed (its RECORD). It prints the core install (``pip install
-e .``: clbench and its dependencies), then what each extra adds beyond the core, then the whole
environment. Run it in an environment that has every extra installed (e.g. the tox one) to see all
of them; a requirement that is not installed here is listed as missing, not guessed.

    python benchmarks/install_size.py
"""

from __future__ import annotations

import importlib.metadata as md
import re
import sys
from pathlib import Path

from packaging.requirements import Requirement

MB = 1024 * 1024


def canonical(name: str) -> str:
    """A distribution name as PEP 503 normalises it."""
    return re.sub(r"[-_.]+", "-", name).lower()


def installed() -> dict[str, md.Distribution]:
    """Every distribution on ``sys.path``, by canonical name (the first one found wins, as for imports)."""
    out: dict[str, md.Distribution] = {}
    for dist in md.distributions():
        name = dist.metadata["Name"]
        if name:
            out.setdefault(canonical(name), dist)
    return out


def size_of(dist: md.Distribution) -> int:
    """Bytes of the files ``dist`` installed (its RECORD; files that are gone count 0)."""
    total = 0
    for file in dist.files or []:
        try:
            total += Path(dist.locate_file(file)).stat().st_size
        except OSError:
            continue
    return total


def closure(
    requirements: list[str], dists: dict[str, md.Distribution], extra: str | None = None
) -> tuple[set[str], set[str]]:
    """The installed distributions ``requirements`` pull in (recursively), and those missing here."""
    seen: set[str] = set()
    missing: set[str] = set()
    todo = [(r, extra) for r in requirements]
    while todo:
        text, wanted_extra = todo.pop()
        req = Requirement(text)
        env = {"extra": wanted_extra or ""}
        if req.marker is not None and not req.marker.evaluate(env):
            continue
        name = canonical(req.name)
        if name not in dists:
            missing.add(req.name)
            continue
        for sub_extra in req.extras or {None}:
            key = f"{name}[{sub_extra}]" if sub_extra else name
            if key in seen:
                continue
            seen.add(key)
            todo.extend((r, sub_extra) for r in dists[name].requires or [])
    return {k.split("[")[0] for k in seen}, missing


def without_marker(text: str) -> str:
    """A requirement without its environment marker (``extra == "x"``, already evaluated)."""
    req = Requirement(text)
    req.marker = None
    return str(req)


def main() -> None:
    """Print the sizes."""
    dists = installed()
    if "clbench" not in dists:
        sys.exit("clbench is not installed in this environment")
    clbench = dists["clbench"]
    requires = clbench.requires or []
    core_reqs = [r for r in requires if Requirement(r).marker is None or Requirement(r).marker.evaluate({"extra": ""})]
    core, core_missing = closure(core_reqs, dists)
    core.add("clbench")
    sizes = {name: size_of(dists[name]) for name in dists}
    core_mb = sum(sizes[n] for n in core) / MB
    print(f"environment: {sys.prefix} (python {sys.version.split()[0]})")
    print(f"core (pip install -e .): {core_mb:,.0f} MB in {len(core)} distributions")
    top = sorted(core, key=lambda n: -sizes[n])[:6]
    print("  largest: " + ", ".join(f"{n} {sizes[n] / MB:,.0f} MB" for n in top))
    if core_missing:
        print(f"  missing here: {', '.join(sorted(core_missing))}")
    for extra in clbench.metadata.get_all("Provides-Extra") or []:
        reqs = [
            r
            for r in requires
            if Requirement(r).marker is not None and Requirement(r).marker.evaluate({"extra": extra})
        ]
        reqs = [without_marker(r) for r in reqs if r not in core_reqs]
        names, missing = closure(reqs, dists)
        added = names - core
        mb = sum(sizes[n] for n in added) / MB
        biggest = sorted(added, key=lambda n: -sizes[n])[:4]
        detail = ", ".join(f"{n} {sizes[n] / MB:,.0f} MB" for n in biggest)
        note = f"; missing here: {', '.join(sorted(missing))}" if missing else ""
        print(f"[{extra}] adds {mb:,.0f} MB in {len(added)} distributions ({detail}){note}")
    total = sum(sizes.values()) / MB
    print(f"whole environment: {total:,.0f} MB in {len(dists)} distributions (the files distributions installed)")


if __name__ == "__main__":
    main()
