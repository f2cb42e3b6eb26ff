"""One surface drawn in one pyvista renderer: relief, contours, floor, trajectory, pending points.

The meshes are created once per surface and then edited in place (points, faces, arrays),
so new grid points arriving from a running job cost a few numpy operations and one render.
Only cells whose four corners are computed are drawn: pending points leave holes.
"""

from __future__ import annotations

import numpy as np
import pyvista as pv
from scipy.interpolate import RegularGridInterpolator

from app.display import DisplaySettings
from app.display_data import (
    HeightMap,
    contour_levels,
    contour_lines,
    display_values,
    fill_for_display,
    height_map,
    pick_metric,
)
from engine.errors import ConfigError
from engine.storage.surface_file import Surface

PBR_LIGHT_BOOST = 2.2
LIFT = 0.004  # lines float this fraction of the height above the relief so they stay visible


def _empty_lines() -> pv.PolyData:
    # One point with no cell draws nothing but keeps the mesh non-empty, as add_mesh requires.
    mesh = pv.PolyData()
    mesh.points = np.zeros((1, 3))
    return mesh


def _polylines(mesh: pv.PolyData, segments: list[np.ndarray], scalars: list[float] | None = None,
               markers: bool = False) -> None:
    """Replace ``mesh``'s content with ``segments`` ((N, 3) each) in place; ``markers`` adds a
    vertex at every point (drawn as a dot, e.g. one per checkpoint of a trajectory)."""
    segments = [s for s in segments if len(s) > 1]
    if not segments:
        mesh.copy_from(_empty_lines())
        mesh.point_data["level"] = np.zeros(1)
        return
    points = np.vstack(segments)
    starts = np.cumsum([0] + [len(s) for s in segments[:-1]])
    lines = np.hstack([np.r_[len(s), np.arange(len(s)) + o] for s, o in zip(segments, starts)])
    verts = np.c_[np.ones(len(points), int), np.arange(len(points))].ravel() if markers else None
    mesh.copy_from(pv.PolyData(points, lines=lines, verts=verts))
    levels = scalars if scalars is not None else [0.0] * len(segments)
    mesh.point_data["level"] = np.repeat(levels, [len(s) for s in segments])


class SurfaceScene:
    """The actors of one 2D surface in renderer ``index`` of ``plotter``."""

    def __init__(self, plotter: pv.Plotter, index: tuple[int, int] = (0, 0)) -> None:
        self.plotter = plotter
        self.index = index
        self.surface: Surface | None = None  # the scene's own copy
        self.metric = ""
        self.shown = np.empty(0)  # display values as drawn (after clamp, log, fill)
        self.heights: HeightMap | None = None
        self.actors: dict[str, object] = {}
        self._bar_title = ""

    # ---- data -------------------------------------------------------------------------
    def set_surface(self, surface: Surface, settings: DisplaySettings) -> None:
        if surface.y is None:
            raise ConfigError("surface", "1D", "a 2D surface (use the curve view for 1D ones)",
                              str(getattr(surface, "path", "") or "surface"))
        surface = self.surface = surface.copy()
        self.metric = pick_metric(surface, settings.metric)
        nx, ny = len(surface.x), len(surface.y)
        xx, yy = np.meshgrid(surface.x, surface.y)
        self._xy = np.c_[xx.ravel(), yy.ravel()]
        idx = np.arange(nx * ny).reshape(ny, nx)
        self._quads = np.c_[idx[:-1, :-1].ravel(), idx[:-1, 1:].ravel(), idx[1:, 1:].ravel(),
                            idx[1:, :-1].ravel()]
        self.relief = _empty_lines()  # built without vertex cells: only quads are drawn
        self.relief.points = np.c_[self._xy, np.zeros(nx * ny)]
        self.contours, self.floor, self.path, self.pending = (_empty_lines() for _ in range(4))

    def display_of(self, settings: DisplaySettings) -> np.ndarray:
        """``settings``' metric in display units, before any hole filling (selects the metric)."""
        assert self.surface is not None
        self.metric = pick_metric(self.surface, settings.metric)
        return display_values(self.surface.values[self.metric], settings)

    def refresh(self, settings: DisplaySettings, limits: tuple[float, float],
                z_range: tuple[float, float]) -> None:
        """Recompute every mesh from the surface's current values (in place, no new actors).

        ``limits`` is the colour range, ``z_range`` the display values' range that sets the heights
        (the data's: a fixed colour range changes colours, never the relief)."""
        surface = self.surface
        assert surface is not None
        shown = self.display_of(settings)
        if settings.fill_holes:
            shown = fill_for_display(shown)
        self.shown = shown
        self.heights = height_map(surface.x, surface.y, z_range, settings)
        self._refresh_relief(shown, self.heights)
        self._refresh_contours(settings, limits)
        self._refresh_path(settings)
        computed = np.isfinite(surface.values[self.metric]).ravel()
        pending = self._xy[~computed] if settings.mark_uncomputed else np.empty((0, 2))
        self.pending.copy_from(pv.PolyData(np.c_[pending, np.full(len(pending), self.heights.floor)])
                               if len(pending) else _empty_lines())

    def set_values(self, values: dict[str, np.ndarray]) -> None:
        """Take new metric arrays for the same grid; call :meth:`refresh` to redraw."""
        assert self.surface is not None
        self.surface.update_values(values)

    def set_limits(self, limits: tuple[float, float]) -> None:
        """New colour range for the coloured actors (no rebuild)."""
        for name in ("relief", "floor"):
            if name in self.actors:
                self.actors[name].mapper.scalar_range = limits

    def _refresh_relief(self, shown: np.ndarray, heights: HeightMap) -> None:
        valid = np.isfinite(shown)
        z = heights(np.where(valid, shown, heights.low))
        mesh = self.relief
        mesh.points = np.c_[self._xy, z.ravel()]
        quads = self._quads[valid.ravel()[self._quads].all(axis=1)]
        mesh.faces = np.c_[np.full(len(quads), 4), quads].ravel() if len(quads) else np.empty(0, int)
        mesh.point_data["display"] = np.where(valid, shown, heights.low).ravel()
        mesh.point_data.active_normals = _point_normals(mesh.points, quads)

    def _refresh_contours(self, settings: DisplaySettings, limits: tuple[float, float]) -> None:
        levels = contour_levels(settings, *limits)
        lines = contour_lines(self.surface.x, self.surface.y, self.shown, levels)
        heights = self.heights
        lift = LIFT * heights.height
        above, below, tags = [], [], []
        for level, segments in lines:
            for seg in segments:
                above.append(np.c_[seg, np.full(len(seg), heights(level) + lift)])
                below.append(np.c_[seg, np.full(len(seg), heights.floor)])
                tags.append(level)
        _polylines(self.contours, above if settings.contours_on_surface else [])
        _polylines(self.floor, below if settings.contours_below else [], tags)

    def _refresh_path(self, settings: DisplaySettings) -> None:
        path = self.surface.trajectory
        if not settings.show_trajectory or path is None or len(path) < 2:
            _polylines(self.path, [])
            return
        path = np.asarray(path, dtype=float)[:, :2]
        z = self._surface_height_at(path) + 3 * LIFT * self.heights.height
        _polylines(self.path, [np.c_[path, z]], markers=True)

    def _surface_height_at(self, path: np.ndarray) -> np.ndarray:
        """Heights along the path, bilinear on the grid (pending points filled from neighbours)."""
        s = self.surface
        z = self.heights(fill_for_display(self.shown))  # smooth even on a coarse grid
        if not np.isfinite(z).any():
            return np.full(len(path), self.heights.floor)
        z = np.where(np.isfinite(z), z, np.nanmean(z))  # outside the computed hull
        grid = RegularGridInterpolator((s.y, s.x), z, bounds_error=False, fill_value=None)
        xs = np.clip(path[:, 0], s.x.min(), s.x.max())
        ys = np.clip(path[:, 1], s.y.min(), s.y.max())
        return grid(np.c_[ys, xs])

    # ---- actors -----------------------------------------------------------------------
    def build(self, settings: DisplaySettings, limits: tuple[float, float], scalar_bar: bool) -> None:
        """(Re)create this scene's actors with ``settings``' look; call after :meth:`refresh`."""
        self.remove_actors()
        p = self.plotter
        p.subplot(*self.index)
        show_bar = scalar_bar and settings.show_scalar_bar
        title = settings.metric_label(self.metric).replace(" ", "\n", 1)  # narrow: "log10" above
        self._bar_title = title if show_bar else ""
        bar = dict(title=title, n_labels=5, fmt="%.3g", vertical=True,
                   position_x=0.89 if tuple(p.shape) == (1, 1) else 0.76, position_y=0.2,
                   height=0.6, width=0.045, color="#202020",
                   title_font_size=13, label_font_size=11, unconstrained_font_size=True)
        look = dict(pbr=settings.pbr, metallic=settings.metallic, roughness=settings.roughness) \
            if settings.pbr else dict(specular=settings.specular, specular_power=30.0)
        self.actors["relief"] = p.add_mesh(
            self.relief, scalars="display", cmap=settings.colormap, clim=limits, smooth_shading=False,
            show_scalar_bar=show_bar, scalar_bar_args=bar,
            render=False, **look)
        if not settings.pbr:
            self.actors["relief"].prop.interpolation = "phong" if settings.smooth_shading else "flat"
        self.actors["contours"] = p.add_mesh(self.contours, color="#202020", line_width=1.5,
                                             opacity=0.7, show_scalar_bar=False, render=False)
        self.actors["floor"] = p.add_mesh(self.floor, scalars="level", cmap=settings.colormap, clim=limits,
                                          line_width=1.5, show_scalar_bar=False, render=False)
        self.actors["path"] = p.add_mesh(self.path, color="#e8202a", line_width=4, point_size=9,
                                         render_lines_as_tubes=True, render_points_as_spheres=True,
                                         show_scalar_bar=False, render=False)
        self.actors["pending"] = p.add_mesh(self.pending, color="#8a8a8a", point_size=5,
                                            render_points_as_spheres=True, show_scalar_bar=False,
                                            render=False)
        self._light(settings)
        self._axes()

    def color_by(self, values: np.ndarray, cmap: str, clim: tuple[float, float], title: str) -> None:
        """Colour the relief by another array on the grid (e.g. Li et al.'s |lambda_min / lambda_max|),
        heights unchanged; call after :meth:`build`. NaN points are grey."""
        p = self.plotter
        p.subplot(*self.index)
        self.relief.point_data["overlay"] = np.asarray(values, dtype=float).ravel()
        p.remove_actor(self.actors.pop("relief"), render=False)
        if self._bar_title and self._bar_title in p.scalar_bars:
            p.remove_scalar_bar(self._bar_title, render=False)
        bar = dict(title=title, n_labels=5, fmt="%.2g", vertical=True, position_x=0.89, position_y=0.2,
                   height=0.6, width=0.045, color="#202020", title_font_size=13, label_font_size=11,
                   unconstrained_font_size=True)
        self.actors["relief"] = p.add_mesh(self.relief, scalars="overlay", cmap=cmap, clim=clim,
                                           nan_color="#bdbdbd", specular=0.3, show_scalar_bar=True,
                                           scalar_bar_args=bar, render=False)
        self._bar_title = title

    def _renderer(self) -> pv.Renderer:
        return self.plotter.renderers[self.plotter.renderers.loc_to_index(self.index)]

    def _axes(self) -> None:
        """α and β ticks along the floor's outer edges; z is not labelled since its scale is relative."""
        s = self.surface
        floor = self.heights.floor
        self._renderer().show_bounds(
            bounds=(s.x.min(), s.x.max(), s.y.min(), s.y.max(), floor, floor), xtitle="alpha", ytitle="beta",
            ztitle=" ", show_zaxis=False, show_zlabels=False, location="outer", ticks="outside",
            font_size=9, color="#404040", n_xlabels=5, n_ylabels=5, fmt="%.2g", use_3d_text=False,
            render=False)

    def _light(self, settings: DisplaySettings) -> None:
        renderer = self._renderer()
        renderer.remove_all_lights()
        if settings.light_kit:
            self.plotter.subplot(*self.index)
            self.plotter.enable_lightkit(only_active=True)
        else:
            renderer.add_light(pv.Light(light_type="headlight"))
        if settings.pbr:  # PBR without an environment map reads much darker than Phong: compensate
            for light in renderer.lights:
                light.intensity *= PBR_LIGHT_BOOST
        if settings.eye_dome_lighting:
            renderer.enable_eye_dome_lighting()
        else:
            renderer.disable_eye_dome_lighting()

    def remove_actors(self) -> None:
        self.plotter.subplot(*self.index)
        for actor in self.actors.values():
            self.plotter.remove_actor(actor, render=False)
        self.actors.clear()
        self._renderer().remove_bounds_axes()
        if self._bar_title and self._bar_title in self.plotter.scalar_bars:
            self.plotter.remove_scalar_bar(self._bar_title, render=False)
        self._bar_title = ""


def _point_normals(points: np.ndarray, quads: np.ndarray) -> np.ndarray:
    """Area-weighted point normals from the drawn quads only, so holes do not bend the shading."""
    normals = np.zeros_like(points)
    if len(quads):
        a, b, c, d = (points[quads[:, k]] for k in range(4))
        face = np.cross(c - a, d - b)  # diagonals' cross product: twice the quad's area vector
        for k in range(4):
            np.add.at(normals, quads[:, k], face)
    unused = ~normals.any(axis=1)
    normals[unused, 2] = 1.0  # points outside every drawn quad: any unit normal will do
    return normals / np.linalg.norm(normals, axis=1, keepdims=True)
