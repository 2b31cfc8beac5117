"""An embedded mini corpus in the WikiText file layout, for smoke runs and tests.

No WikiText can be downloaded here, so the text comes from English prose that CPython always
ships: the pydoc topic pages (``pydoc_data.topics.topics``, 79 articles and about 0.47 MB on
Python 3.11). Each topic becomes one article with WikiText's markup (`` = Title = `` headings,
`` = = Section = = `` sub-headings, one paragraph per line, `` \\n`` between blocks), and the
articles are split deterministically into train / valid / test. The result is written as

    <root>/wikitext-103/wiki.{train,valid,test}.tokens    every training article
    <root>/wikitext-2/wiki.{train,valid,test}.tokens      every second training article

(the same validation and test articles, as in the real pair), so that the task reads it
through exactly the loader it uses for the real files. The default root is
``~/.cache/ohgw_bench/data/wikitext-mini``; ``python -m ohgw_bench.tasks.text_corpus [ROOT]``
writes it and prints the root to pass as ``--data-dir``.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import re
import sys
import tempfile
from pathlib import Path

MINI_ROOT = Path.home() / ".cache" / "ohgw_bench" / "data" / "wikitext-mini"
SPLITS = ("train", "valid", "test")
_UNDERLINE = re.compile(r"^([*=\-^~])\1{2,}$")
_STAMP = "SOURCE"


def _article(topic_text: str) -> list[str]:
    """WikiText lines of one pydoc topic: first heading is the title, later ones sections."""
    raw = topic_text.strip("\n").split("\n")
    blocks: list[tuple[str, str]] = []
    para: list[str] = []

    def flush() -> None:
        if para:
            blocks.append(("p", " ".join(s.strip() for s in para)))
            para.clear()

    i = 0
    while i < len(raw):
        line = raw[i].rstrip()
        if i + 1 < len(raw) and line and _UNDERLINE.match(raw[i + 1].strip()):
            flush()
            blocks.append(("h", line.strip()))
            i += 2
            continue
        if line.strip():
            para.append(line)
        else:
            flush()
        i += 1
    flush()
    lines: list[str] = []
    for n, (kind, text) in enumerate(blocks):
        if kind == "h":
            lines.append(f" = {text} = " if n == 0 else f" = = {text} = = ")
        else:
            lines.append(f" {text} ")
        lines.append(" ")
    if lines and not lines[0].startswith(" = "):
        lines[:0] = [" = Untitled = ", " "]
    return lines


def corpus_splits() -> dict[str, dict[str, str]]:
    """{variant directory: {split: file text}} of the mini corpus (deterministic per Python)."""
    from pydoc_data.topics import topics

    articles: dict[str, list[list[str]]] = {s: [] for s in SPLITS}
    for i, name in enumerate(sorted(topics)):
        split = "valid" if i % 10 == 1 else "test" if i % 10 == 6 else "train"
        articles[split].append(_article(topics[name]))

    def text(arts: list[list[str]]) -> str:
        return "".join(line + "\n" for art in arts for line in [" "] + art)

    small_train = articles["train"][::2]
    return {
        "wikitext-103": {s: text(articles[s]) for s in SPLITS},
        "wikitext-2": {"train": text(small_train), "valid": text(articles["valid"]),
                       "test": text(articles["test"])},
    }


def _fingerprint(splits: dict[str, dict[str, str]]) -> str:
    h = hashlib.sha256()
    for variant in sorted(splits):
        for split in SPLITS:
            h.update(f"{variant}/{split}\0".encode())
            h.update(splits[variant][split].encode("utf-8"))
    return h.hexdigest()


def write_mini_corpus(root: str | os.PathLike[str] | None = None) -> Path:
    """Write the mini corpus under ``root`` (default :data:`MINI_ROOT`) unless it is already there.

    The files are written to a temporary folder and renamed into place, so concurrent trial
    processes never read a half-written file; a stamp with the content hash makes a
    different Python's pydoc text replace an older copy.
    """
    root = Path(root) if root is not None else MINI_ROOT
    splits = corpus_splits()
    stamp = _fingerprint(splits)
    stamp_file = root / _STAMP
    if stamp_file.is_file() and stamp_file.read_text().strip() == stamp:
        return root
    # Said on stderr, so that a study's first seconds at 0% are explained (once per root).
    print(f"writing the embedded mini corpus (WikiText layout, from CPython's pydoc text) to {root} ...",
          file=sys.stderr, flush=True)
    root.mkdir(parents=True, exist_ok=True)
    for variant, files in splits.items():
        target = root / variant
        target.mkdir(exist_ok=True)
        for split, text in files.items():
            fd, tmp = tempfile.mkstemp(dir=target, prefix=f".wiki.{split}.")
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                f.write(text)
            os.chmod(tmp, 0o644)
            os.replace(tmp, target / f"wiki.{split}.tokens")
    fd, tmp = tempfile.mkstemp(dir=root, prefix=".stamp.")
    with os.fdopen(fd, "w") as f:
        f.write(stamp + "\n")
    os.chmod(tmp, 0o644)
    os.replace(tmp, stamp_file)
    print(f"mini corpus written: {root}", file=sys.stderr, flush=True)
    return root


def is_mini_root(path: str | os.PathLike[str]) -> bool:
    """True if ``path`` is the documented default location of the mini corpus."""
    return Path(path).expanduser().resolve() == MINI_ROOT.resolve()


def holds_mini_corpus(path: str | os.PathLike[str]) -> bool:
    """True if ``path`` is the mini corpus's default root or carries its stamp file.

    :func:`write_mini_corpus` stamps every root it writes, and test fixtures cut from the corpus
    stamp theirs, so a study on this text is never labelled like a study on real WikiText.
    """
    return is_mini_root(path) or (Path(path).expanduser() / _STAMP).is_file()


def stamp_excerpt(root: str | os.PathLike[str]) -> None:
    """Mark ``root`` as holding an excerpt of the mini corpus (a fixture), not real WikiText."""
    (Path(root) / _STAMP).write_text("excerpt of the embedded mini corpus\n")


def main(argv: list[str] | None = None) -> int:
    """Write the mini corpus and print its root; argparse, so ``--help`` never becomes a folder name."""
    parser = argparse.ArgumentParser(
        prog="python -m ohgw_bench.tasks.text_corpus",
        description="Write the embedded mini corpus in the WikiText layout and print the root to pass as "
                    "--data-dir (runs on it are labelled with the -mini task id, see docs/design.md).")
    parser.add_argument("root", nargs="?", default=None,
                        help=f"folder to write (default: {MINI_ROOT})")
    args = parser.parse_args(argv)
    print(write_mini_corpus(args.root))
    return 0


if __name__ == "__main__":
    sys.exit(main())
