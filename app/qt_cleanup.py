"""Free a closing window's parentless Qt objects on the GUI thread.

pyqtgraph gives every plot parentless context menus (a ViewBox's menu, a PlotItem's control
menu full of widgets). A closed window leaves them owned by Python objects in reference cycles,
and Python frees cycles in whichever thread is allocating when it collects. Freed on a job
thread, their destructors waited for the GIL while the GUI thread, holding it, waited for their
mutex: the app froze (seen when the demo ran from the welcome text after another window had
closed). Deleting them here, on the GUI thread, leaves only empty wrappers for the collector.
"""

from __future__ import annotations

import pyqtgraph as pg
from PySide6.QtWidgets import QMenu, QWidget

MENU_ATTRIBUTES = ("menu", "ctrlMenu")


def release_plot_menus(root: QWidget) -> None:
    """Schedule the deletion of every parentless menu of the plots under ``root``."""
    for view in root.findChildren(pg.GraphicsView):
        for item in view.items():
            for name in MENU_ATTRIBUTES:
                menu = getattr(item, name, None)
                if isinstance(menu, QMenu) and menu.parent() is None:
                    menu.deleteLater()
