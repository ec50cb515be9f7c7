"""Which code produced a record: the git commit of clbench's checkout, read with real git
repositories, in a real run's record and in the report's overview."""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest

from clbench.config import RunConfig, resolve
from clbench.harness import execute
from clbench.provenance import DIRTY, commit_of, package_root, source_commit
from clbench.report.command import generate_report
from tests.core.test_report_support import config, matrix_with_final_row, record, write
from tests.helpers import tiny_assignments

needs_git = pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")


def git(root, *args: str) -> str:
    """Run git in ``root`` (a throwaway identity for commits) and return its output."""
    env = {"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@t"}
    done = subprocess.run(["git", "-C", str(root), *args], capture_output=True, text=True, env={**os.environ, **env})
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


@needs_git
def test_commit_of_a_work_tree_its_dirty_state_and_what_is_not_one(tmp_path):
    repo = tmp_path / "repo"
    (repo / "pkg").mkdir(parents=True)
    git(repo, "init", "-q")
    assert commit_of(repo) is None  # no commit yet
    (repo / "pkg" / "code.py").write_text("x = 1\n")
    git(repo, "add", ".")
    git(repo, "commit", "-q", "-m", "first")
    head = git(repo, "rev-parse", "HEAD")
    assert commit_of(repo) == head and len(head) == 40
    (repo / "notes.txt").write_text("untracked\n")
    assert commit_of(repo) == head  # untracked files do not make it dirty
    (repo / "results").mkdir()
    (repo / "results" / "report.md").write_text("a committed report\n")
    git(repo, "add", ".")
    git(repo, "commit", "-q", "-m", "results")
    head = git(repo, "rev-parse", "HEAD")
    (repo / "results" / "report.md").write_text("regenerated\n")
    assert commit_of(repo) == head  # committed results are data: regenerating them is not a code change
    (repo / "pkg" / "code.py").write_text("x = 2\n")
    assert commit_of(repo) == head + DIRTY
    assert commit_of(repo / "pkg") is None  # not the top of the tree: an install inside another repo
    assert commit_of(tmp_path / "elsewhere") is None


@needs_git
def test_a_worktree_checkout_gives_its_own_commit(tmp_path):
    """The verdict ran from a ``git worktree`` of a fixed commit: its ``.git`` is a file."""
    repo, tree = tmp_path / "repo", tmp_path / "pinned"
    repo.mkdir()
    git(repo, "init", "-q")
    (repo / "a.py").write_text("a = 1\n")
    git(repo, "add", ".")
    git(repo, "commit", "-q", "-m", "one")
    first = git(repo, "rev-parse", "HEAD")
    (repo / "a.py").write_text("a = 2\n")
    git(repo, "commit", "-q", "-am", "two")
    git(repo, "worktree", "add", "-q", "--detach", str(tree), first)
    assert (tree / ".git").is_file()
    assert commit_of(tree) == first and commit_of(repo) == git(repo, "rev-parse", "HEAD") != first


def test_a_record_names_the_commit_of_the_code_that_ran(host):
    cfg = RunConfig(seed=0)
    for assignment in tiny_assignments(2):
        cfg.apply_set(assignment)
    record_ = execute(resolve(cfg, host.registry), host, results=None).record
    assert record_["versions"]["commit"] == source_commit() == commit_of(package_root())
    if (package_root() / ".git").exists() and shutil.which("git"):  # run from a checkout (not a wheel)
        assert record_["versions"]["commit"] is not None
        assert record_["versions"]["commit"][:40] == git(package_root(), "rev-parse", "HEAD")


def test_the_report_names_the_commits_and_the_records_without_one(tmp_path):
    results = tmp_path / "results"
    with_commit = record(config(seed=0), matrix=matrix_with_final_row([0.9, 0.8, 0.7]))
    with_commit["versions"]["commit"] = "0253c28" + "a" * 33 + DIRTY
    write(results, with_commit)
    write(results, record(config(seed=1), matrix=matrix_with_final_row([0.9, 0.8, 0.6])))  # an older record
    text = generate_report(results, figures=False).read_text(encoding="utf-8")
    line = next(x for x in text.splitlines() if x.startswith("- **versions**"))
    assert f"commit 0253c28aaaaa{DIRTY}, not recorded" in line
    write(results, record(config(seed=0), matrix=matrix_with_final_row([0.9, 0.8, 0.7])))  # replaces the first
    text = generate_report(results, figures=False).read_text(encoding="utf-8")
    line = next(x for x in text.splitlines() if x.startswith("- **versions**"))
    assert "commit" not in line and "clbench 0.1.0" in line
