"""Reading a CSV of per-image scores into one float per image of a data set split.

The CSV has a header row. Its key column is `path` (relative to the data set's
folder, e.g. train/airplane/0000.jpg, or to the split's folder) or `index` (the
image's position in the split, counting from 0). Its score column is the one
named in the request, else the last column that is not the key. Images without
a row, or with an empty score, get NaN.
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Callable
from pathlib import Path

import numpy as np

from gating_core.data import load_images
from gating_core.data.readers import list_class_folders

KEY_COLUMNS = ("path", "index")
# Rows quoted in error messages before the rest is summarised.
QUOTED_ERRORS = 5


class ScoreImportError(ValueError):
    """Invalid upload: names the request field, the problem and the value received."""

    def __init__(self, field: str, message: str, received: object) -> None:
        super().__init__(message)
        self.field = field
        self.message = message
        self.received = received


def _read_rows(content: bytes) -> tuple[list[str], list[list[str]]]:
    try:
        text = content.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise ScoreImportError("file", f"file must be UTF-8 text; byte {error.start} is not", "binary data") from error
    rows = list(csv.reader(io.StringIO(text)))
    rows = [row for row in rows if any(cell.strip() for cell in row)]
    if len(rows) < 2:
        raise ScoreImportError("file", "file must have a header row and at least one data row", f"{len(rows)} rows")
    header = [cell.strip() for cell in rows[0]]
    return header, rows[1:]


def _choose_columns(header: list[str], key_column: str | None, score_column: str | None) -> tuple[int, int]:
    if key_column is None:
        key_column = next((name for name in KEY_COLUMNS if name in header), None)
        if key_column is None:
            raise ScoreImportError("key_column", f"the header must contain a column 'path' or 'index'; it has {header}", header)
    if key_column not in KEY_COLUMNS or key_column not in header:
        raise ScoreImportError(
            "key_column", f"key_column must be 'path' or 'index' and a column of the header {header}", key_column
        )
    key = header.index(key_column)
    if score_column is None:
        candidates = [position for position in range(len(header)) if position != key]
        if not candidates:
            raise ScoreImportError("score_column", f"the header {header} has no column besides the key", header)
        return key, candidates[-1]
    if score_column not in header or header.index(score_column) == key:
        raise ScoreImportError("score_column", f"score_column must name a column of the header {header} other than the key", score_column)
    return key, header.index(score_column)


def _parse_score(cell: str, line: int) -> float:
    text = cell.strip()
    if not text:
        return math.nan
    try:
        value = float(text)
    except ValueError:
        raise ScoreImportError("file", f"line {line}: the score must be a number", text) from None
    if not math.isfinite(value):
        raise ScoreImportError("file", f"line {line}: the score must be finite", text)
    return value


def parse_scores(
    content: bytes,
    split: str,
    split_size: int,
    path_index: Callable[[], dict[str, int]],
    key_column: str | None = None,
    score_column: str | None = None,
) -> np.ndarray:
    """Return float32 scores, one per image of the split, from CSV bytes.

    `path_index` maps relative image paths to indices; it is called only for a
    path-keyed file. Raises ScoreImportError naming the field at fault.
    """
    header, rows = _read_rows(content)
    key, score = _choose_columns(header, key_column, score_column)
    by_path = header[key] == "path"
    paths = path_index() if by_path else {}

    values = np.full(split_size, np.nan, dtype=np.float32)
    seen = np.zeros(split_size, dtype=bool)
    unknown: list[str] = []
    for line, row in enumerate(rows, start=2):
        if len(row) <= max(key, score):
            raise ScoreImportError("file", f"line {line}: expected {len(header)} columns like the header", ",".join(row))
        cell = row[key].strip()
        position = _path_position(cell, split, paths) if by_path else _index_position(cell, line, split_size)
        if position is None:
            unknown.append(cell)
            continue
        if seen[position]:
            raise ScoreImportError("file", f"line {line}: image {cell!r} appears twice", cell)
        seen[position] = True
        values[position] = _parse_score(row[score], line)
    if unknown:
        raise ScoreImportError(
            "file",
            f"{len(unknown)} paths name no image of the {split} split, for example {unknown[:QUOTED_ERRORS]}",
            unknown[:QUOTED_ERRORS],
        )
    return values


def _index_position(cell: str, line: int, split_size: int) -> int:
    try:
        position = int(cell)
    except ValueError:
        raise ScoreImportError("file", f"line {line}: the index must be a whole number", cell) from None
    if not 0 <= position < split_size:
        raise ScoreImportError("file", f"line {line}: the index must be from 0 to {split_size - 1}", position)
    return position


def _path_position(cell: str, split: str, paths: dict[str, int]) -> int | None:
    relative = cell.replace("\\", "/").removeprefix("./")
    return paths.get(relative.removeprefix(f"{split}/"))


def class_folder_paths(data_dir: Path, dataset: str, split: str) -> dict[str, int]:
    """Map 'class/file' paths of a class-folder data set split to the images' indices.

    The order is that of the loader: sorted classes, then numeric file order.
    """
    root = data_dir / dataset / split
    if not root.is_dir():
        raise ScoreImportError(
            "key_column",
            f"path keys need the {dataset} {split} images as class folders in {root}, which does not exist; "
            f"upload a CSV with an 'index' column instead",
            "path",
        )
    _, files = list_class_folders(root)
    return {item.path.relative_to(root).as_posix(): position for position, item in enumerate(files)}


def split_size(dataset: str, split: str, data_dir: Path, cache_dir: Path) -> int:
    """Return the number of images in a data set split, reading the decoded-image cache where it exists."""
    return len(load_images(dataset, split, data_dir, cache_dir, allow_download=False))
