"""Run in a subprocess by bench_surface.py: how long the GUI event loop stalls while the app
computes a surface. Prints one JSON line.

    python benchmarks/app_stall.py RUN.h5 GRID SECONDS   (under xvfb-run: the full main window;
                                                          with QT_QPA_PLATFORM=offscreen: the
                                                          surface panel and worker without 3D views)
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("QT_API", "pyside6")


def main(run_file: str, grid: int, seconds: float) -> None:
    from PySide6.QtWidgets import QApplication

    from app.stall_probe import measure_event_loop_stall

    app = QApplication.instance() or QApplication(sys.argv[:1])
    full = os.environ.get("QT_QPA_PLATFORM") != "offscreen"
    if full:
        from app.main_window import MainWindow

        window = MainWindow(restore_layout=False)
        window.show()
        panel, worker = window.surface, window.worker
    else:
        from app.panels.surface_panel import SurfacePanel
        from app.settings import AppSettings
        from app.worker import EngineWorker

        worker = EngineWorker()
        panel = SurfacePanel(worker, AppSettings())
        panel.show()
    panel.add_run(run_file)
    axis = f"-1:1:{grid}"
    panel.form.set_values({"x": axis, "y": axis})
    arrived = []
    panel.points_arrived.connect(lambda _live: arrived.append(time.perf_counter()))
    job = panel.start()
    if job is None:
        raise SystemExit(f"the surface panel refused to start: {panel.status.text()}")
    deadline = time.perf_counter() + 120
    while not arrived and time.perf_counter() < deadline:  # past start-up, into the points
        app.processEvents()
        time.sleep(0.01)
    stall = measure_event_loop_stall(seconds)
    running = worker.busy
    worker.cancel(job)
    worker.shutdown(60000)
    print(
        json.dumps(
            {
                **stall,
                "job_running_throughout": running,
                "updates": len(arrived),
                "window": "main window" if full else "surface panel (offscreen)",
            }
        ),
        flush=True,
    )


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]), float(sys.argv[3]))
