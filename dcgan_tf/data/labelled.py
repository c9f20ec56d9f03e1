"""Labelled folders: how a folder names its classes and their files. One sub-folder per class (named by it, sorted,
as torchvision's ImageFolder; hidden ones left out), or an INDEX.csv beside the images with `file` and `category`
columns (the emoji sets in ../shared/datasets). The standard library only, so flags are checked before TensorFlow
loads (runs.resolve counts a conditional run's classes with it).
"""

from __future__ import annotations

import csv
import os

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".gif", ".bmp", ".webp", ".tif", ".tiff")
INDEX_FILE = "INDEX.csv"  # a labelled folder's other form: one row per image, its file and its category
INDEX_COLUMNS = ("file", "category")


class LabelledFolderError(ValueError):
    """A folder that is not a usable labelled folder; the message names the folder and what is wrong."""


def is_image_name(name: str) -> bool:
    return not name.startswith(".") and name.lower().endswith(IMAGE_SUFFIXES)


def index_rows(index: str) -> list[dict]:
    """INDEX.csv's rows with a category, one per file (a file listed twice keeps its first category, so no image is
    in two classes). LabelledFolderError when a column is missing."""
    with open(index, newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    missing_columns = [name for name in INDEX_COLUMNS if not rows or name not in rows[0]]
    if missing_columns:
        raise LabelledFolderError(f"{index} has no column {' or '.join(missing_columns)} (it needs "
                                  f"{', '.join(INDEX_COLUMNS)})")
    unique = {}
    for row in rows:
        if row["category"]:
            unique.setdefault(row["file"], row)
    return list(unique.values())


def class_sub_folders(folder: str) -> list[str]:
    """The class sub-folders of `folder`, sorted (hidden ones left out)."""
    return sorted(name for name in os.listdir(folder)
                  if not name.startswith(".") and os.path.isdir(os.path.join(folder, name)))


def labelled_folder_classes(folder: str) -> list[str] | None:
    """The classes of a labelled folder, sorted: INDEX.csv's categories when it has one, else its sub-folders;
    None when `folder` is no folder or has neither."""
    if not folder or not os.path.isdir(folder):
        return None
    index = os.path.join(folder, INDEX_FILE)
    if os.path.isfile(index):
        try:
            return sorted({row["category"] for row in index_rows(index)}) or None
        except (LabelledFolderError, OSError, csv.Error, UnicodeDecodeError):
            return None
    return class_sub_folders(folder) or None


def classes_problem(folder: str | None) -> str:
    """Why `folder` gives no classes, in words for --conditional's error: a bad INDEX.csv, or neither form."""
    index = os.path.join(folder or "", INDEX_FILE)
    if folder and os.path.isfile(index):
        try:
            index_rows(index)
        except (LabelledFolderError, OSError, csv.Error, UnicodeDecodeError) as error:
            return f"reads the classes of {index}: {error}"
    return (f"reads the classes of a labelled folder: one sub-folder of images per class, or an {INDEX_FILE} with "
            f"columns {', '.join(INDEX_COLUMNS)}; {folder} has "
            f"neither{'' if folder and os.path.isdir(folder) else ' (no such folder)'}")
