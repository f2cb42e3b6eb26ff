"""The study's summary as a Qt table model: one row per variant, sortable by any column.

Rows are :func:`engine.study.summary_rows` (the numbers of summary.csv, read from the
variants' files); sorting compares the raw values (numbers as numbers, empty cells last).
"""

from __future__ import annotations

import math
from typing import Any

from PySide6.QtCore import QAbstractTableModel, QModelIndex, QPersistentModelIndex, QSortFilterProxyModel, Qt

RAW = Qt.ItemDataRole.UserRole
PERCENT = ("train_acc", "test_acc", "gen_error")
Index = QModelIndex | QPersistentModelIndex


def format_cell(column: str, value: Any) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    if column in PERCENT and isinstance(value, float):
        return f"{100 * value:.1f} %"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


class StudyTableModel(QAbstractTableModel):
    def __init__(self) -> None:
        super().__init__()
        self.columns: list[str] = []
        self.rows: list[dict[str, Any]] = []

    def set_rows(self, columns: list[str], rows: list[dict[str, Any]]) -> None:
        self.beginResetModel()
        self.columns, self.rows = list(columns), list(rows)
        self.endResetModel()

    def rowCount(self, parent: Index = QModelIndex()) -> int:  # noqa: N802, B008 (Qt's names)
        return 0 if parent.isValid() else len(self.rows)

    def columnCount(self, parent: Index = QModelIndex()) -> int:  # noqa: N802, B008
        return 0 if parent.isValid() else len(self.columns)

    def data(self, index: Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid():
            return None
        column = self.columns[index.column()]
        value = self.rows[index.row()].get(column)
        if role == Qt.ItemDataRole.DisplayRole:
            return format_cell(column, value)
        if role == RAW:
            return value
        if role == Qt.ItemDataRole.TextAlignmentRole:
            numeric = isinstance(value, (int, float)) and not isinstance(value, bool)
            return int((Qt.AlignmentFlag.AlignRight if numeric else Qt.AlignmentFlag.AlignLeft)
                       | Qt.AlignmentFlag.AlignVCenter)
        return None

    def headerData(self, section: int, orientation: Qt.Orientation,  # noqa: N802
                   role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if role == Qt.ItemDataRole.DisplayRole and orientation == Qt.Orientation.Horizontal:
            return self.columns[section]
        return None

    def variant(self, row: int) -> dict[str, Any]:
        return self.rows[row]


def sort_key(value: Any) -> tuple:
    """Numbers before text, empty cells (None/NaN) always after both."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return (2, 0.0, "")
    if isinstance(value, (int, float)):
        return (0, float(value), "")
    return (1, 0.0, str(value))


class StudySortProxy(QSortFilterProxyModel):
    def __init__(self) -> None:
        super().__init__()
        self.setSortRole(RAW)

    def lessThan(self, left: Index, right: Index) -> bool:  # noqa: N802 (Qt's name)
        return sort_key(left.data(RAW)) < sort_key(right.data(RAW))
