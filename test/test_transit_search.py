"""Forward transit's shared work: the route search on flat lists gives the routes of the array A* it replaced (ties
included: the costs add up in the raster's float32), routes are cached per cell pair, and the legs memo returns the
same transits without sampling the same Dubins legs again."""

from __future__ import annotations

import heapq
import math

import numpy as np
from shapely.geometry import Point, Polygon

from agricare.core.planning import transit as TR
from agricare.core.planning import turns as T


def _field():
    outer = Polygon([(0, 0), (90, 0), (95, 40), (60, 70), (20, 65), (-5, 30)])
    return outer.difference(Point(40, 30).buffer(6.0)).difference(Point(70, 20).buffer(3.0)).buffer(-2.0)


def _array_astar(space: TR.FreeSpace, s, g, prefer_clear_m):
    """The array-indexed A* the list version replaced (reference for the same routes)."""
    pen = 1.0 + 2.0 * np.clip(prefer_clear_m / np.maximum(space.clear_m, 1e-3) - 1.0, 0.0, 20.0)
    dist = np.full(space.free.shape, np.inf)
    prev = -np.ones(space.free.shape + (2,), dtype=np.int32)
    dist[s] = 0.0
    gr, gc = g
    pq = [(0.0, 0.0, s)]
    steps = [(-1, 0, 1.0), (1, 0, 1.0), (0, -1, 1.0), (0, 1, 1.0),
             (-1, -1, 1.4142), (-1, 1, 1.4142), (1, -1, 1.4142), (1, 1, 1.4142)]
    while pq:
        _, d, (r, c) = heapq.heappop(pq)
        if (r, c) == g:
            break
        if d > dist[r, c]:
            continue
        for dr, dc, w in steps:
            rr, cc = r + dr, c + dc
            if 0 <= rr < space.ny and 0 <= cc < space.nx and space.free[rr, cc]:
                nd = d + w * 0.5 * (pen[r, c] + pen[rr, cc])
                if nd < dist[rr, cc]:
                    dist[rr, cc] = nd
                    prev[rr, cc] = (r, c)
                    ddr, ddc = abs(rr - gr), abs(cc - gc)
                    h = max(ddr, ddc) + 0.4142 * min(ddr, ddc)
                    heapq.heappush(pq, (nd + h, nd, (rr, cc)))
    if not math.isfinite(dist[g]):
        return None
    cells = [g]
    while cells[-1] != s:
        r, c = prev[cells[-1]]
        cells.append((int(r), int(c)))
    return np.array([space.centre(rc) for rc in reversed(cells)])


def test_list_route_search_gives_the_array_searchs_routes():
    geom = _field()
    space = TR.FreeSpace(geom, res_m=1.0)
    rng = np.random.default_rng(3)
    minx, miny, maxx, maxy = geom.bounds
    n_routes = 0
    for _ in range(40):
        a = rng.uniform([minx, miny], [maxx, maxy])
        b = rng.uniform([minx, miny], [maxx, maxy])
        s, g = space.nearest_free(space.cell(a)), space.nearest_free(space.cell(b))
        if s is None or g is None:
            continue
        ref = _array_astar(space, s, g, 6.0)
        got = space.route(a, b, 6.0)
        assert (ref is None) == (got is None)
        if ref is not None:
            ref[0], ref[-1] = a, b
            np.testing.assert_array_equal(got, ref)
            n_routes += 1
            last = (a, b, ref)
    assert n_routes >= 20
    # cached per cell pair, returned as a copy with this call's end points
    a, b, ref = last
    assert (space.nearest_free(space.cell(a)), space.nearest_free(space.cell(b)), 6.0) in space._routes
    again = space.route(a, b, 6.0)
    again[1:-1] += 100.0                        # a copy: the cache keeps its own
    np.testing.assert_array_equal(space.route(a, b, 6.0), ref)


def test_legs_memo_returns_the_same_transits_without_sampling_again(monkeypatch):
    geom = _field()

    def contains(xy):
        return bool(np.all([geom.contains(Point(*p)) for p in xy[::4]]))

    start, goal = np.array([10.0, 10.0, 0.0]), np.array([75.0, 45.0, math.pi])
    space = TR.FreeSpace(geom, res_m=1.0)
    plain = TR.forward_transit(start, goal, 4.0, 0.5, geom, contains, space)
    memo = {}
    first = TR.forward_transit(start, goal, 4.0, 0.5, geom, contains, space, memo=memo)
    assert plain is not None and first is not None
    np.testing.assert_array_equal(first.xy, plain.xy)
    assert memo
    calls = []
    orig = T.sample_primitives
    monkeypatch.setattr(T, "sample_primitives", lambda *a, **k: calls.append(1) or orig(*a, **k))
    second = TR.forward_transit(start, goal, 4.0, 0.5, geom, contains, space, memo=memo)
    np.testing.assert_array_equal(second.xy, plain.xy)
    assert calls == []                          # every leg answered by the memo
