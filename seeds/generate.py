#!/usr/bin/env python3
"""Deterministic generator for the Jizhou District (120119) seed data.

Reads the shared reference data (district and partner boundaries, township
codes; the district plan supplies the facts encoded in the tables below) and
writes the seed files next to this script:

    district.geojson  townships.geojson  shelters.geojson  teams.geojson
    items.csv         depots.geojson     helipads.geojson  partners.geojson

Usage:  python seeds/generate.py [DATA_DIR] [--out OUT_DIR]

DATA_DIR defaults to <repo root>/../shared/data, OUT_DIR to this script's
folder.  Needs shapely >= 2 and nothing else outside the standard library
(the local metric projection is implemented here, so pyproj is not needed).

Deterministic: the township partition is pure geometry, and every random
position or quantity comes from its own random.Random seeded with a fixed
string such as "shelter:SH-120119001-01" (Python hashes str seeds with
SHA-512, independent of PYTHONHASHSEED).  No clock, no environment input:
two runs produce byte-identical files.  The script verifies its outputs
(re-reading the written townships) and exits non-zero on any failure.

All positions except the boundaries and the aviation base's approximate site
(named in the plan) are SYNTHETIC; see README.md.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import math
import random
import sys
from pathlib import Path
from typing import Any

import shapely
from shapely.geometry import LineString, MultiPoint, MultiPolygon, Point, Polygon, box, shape
from shapely.geometry.polygon import orient
from shapely.ops import nearest_points

if int(shapely.__version__.split(".")[0]) < 2:  # pragma: no cover
    sys.exit("shapely >= 2 is required")

Geom = Any  # shapely geometries (shapely ships no type information)
LonLat = tuple[float, float]
Feature = dict[str, Any]

HOME_ADCODE = "120119"

# ---------------------------------------------------------------------------
# Local metric projection (stdlib only)
#
# Equirectangular projection centred on the district:
#   x = R * cos(LAT0) * (lon - LON0) * pi/180,   y = R * (lat - LAT0) * pi/180
# It is an AFFINE map of lon/lat, so the straight Voronoi edges computed in
# metres stay straight, and exactly described by their end points, in lon/lat;
# areas are all scaled by one constant, so area comparisons are exact.  Over
# the district (39.75-40.25 N) the scale error is below 0.5 %, irrelevant for
# placing synthetic points and for the checks.
# ---------------------------------------------------------------------------
R_EARTH = 6371008.8  # mean Earth radius, m
LON0, LAT0 = 117.46, 40.00  # projection centre: centre of the district's bbox, rounded
KX = R_EARTH * math.cos(math.radians(LAT0)) * math.pi / 180.0
KY = R_EARTH * math.pi / 180.0


def _fwd(c: Any) -> Any:
    c = c.copy()
    c[:, 0] = (c[:, 0] - LON0) * KX
    c[:, 1] = (c[:, 1] - LAT0) * KY
    return c


def _inv(c: Any) -> Any:
    c = c.copy()
    c[:, 0] = c[:, 0] / KX + LON0
    c[:, 1] = c[:, 1] / KY + LAT0
    return c


def to_xy(g: Geom) -> Geom:
    return shapely.transform(g, _fwd)


def to_ll(g: Geom) -> Geom:
    return shapely.transform(g, _inv)


def area_m2(g: Geom) -> float:
    """Area in m^2 in the (affine) local projection.

    A non-affine (e.g. equal-area) projection would bend the straight lon/lat
    edges and report phantom areas for extra vertices lying on an edge."""
    return float(to_xy(g).area)


def pt_xy(lon: float, lat: float) -> tuple[float, float]:
    return ((lon - LON0) * KX, (lat - LAT0) * KY)


def pt_ll(x: float, y: float) -> LonLat:
    return (x / KX + LON0, y / KY + LAT0)


def dist_m(a: LonLat, b: LonLat) -> float:
    ax, ay = pt_xy(*a)
    bx, by = pt_xy(*b)
    return math.hypot(ax - bx, ay - by)


# ---------------------------------------------------------------------------
# Township seats: hand-placed approximate positions (0.01 deg), see README
# ---------------------------------------------------------------------------
# fmt: off
SEATS: dict[str, LonLat] = {
    "文昌街道": (117.40, 40.04), "渔阳镇": (117.43, 40.08), "洇溜镇": (117.33, 39.98),
    "官庄镇": (117.30, 40.08), "马伸桥镇": (117.62, 40.06), "下营镇": (117.46, 40.20),
    "邦均镇": (117.26, 40.00), "别山镇": (117.50, 39.92), "尤古庄镇": (117.40, 39.81),
    "上仓镇": (117.37, 39.88), "下仓镇": (117.29, 39.80), "罗庄子镇": (117.38, 40.16),
    "白涧镇": (117.22, 40.05), "侯家营镇": (117.44, 39.86), "桑梓镇": (117.58, 39.92),
    "东施古镇": (117.55, 39.86), "下窝头镇": (117.40, 39.75), "杨津庄镇": (117.61, 39.86),
    "出头岭镇": (117.64, 39.98), "西龙虎峪镇": (117.55, 40.10), "穿芳峪镇": (117.48, 40.13),
    "东二营镇": (117.71, 40.02), "许家台镇": (117.30, 40.14), "礼明庄镇": (117.49, 39.80),
    "东赵各庄镇": (117.67, 40.09), "州河湾镇": (117.52, 39.88), "孙各庄满族乡": (117.56, 40.19),
    "天津市蓟州区经济开发区": (117.42, 39.99),
}
TOWNSHIP_EN = {
    "文昌街道": "Wenchang Subdistrict", "渔阳镇": "Yuyang Town", "洇溜镇": "Yinliu Town",
    "官庄镇": "Guanzhuang Town", "马伸桥镇": "Mashenqiao Town", "下营镇": "Xiaying Town",
    "邦均镇": "Bangjun Town", "别山镇": "Bieshan Town", "尤古庄镇": "Youguzhuang Town",
    "上仓镇": "Shangcang Town", "下仓镇": "Xiacang Town", "罗庄子镇": "Luozhuangzi Town",
    "白涧镇": "Baijian Town", "侯家营镇": "Houjiaying Town", "桑梓镇": "Sangzi Town",
    "东施古镇": "Dongshigu Town", "下窝头镇": "Xiawotou Town", "杨津庄镇": "Yangjinzhuang Town",
    "出头岭镇": "Chutouling Town", "西龙虎峪镇": "Xilonghuyu Town", "穿芳峪镇": "Chuanfangyu Town",
    "东二营镇": "Dong'erying Town", "许家台镇": "Xujiatai Town", "礼明庄镇": "Limingzhuang Town",
    "东赵各庄镇": "Dongzhaogezhuang Town", "州河湾镇": "Zhouhewan Town",
    "孙各庄满族乡": "Sungezhuang Manchu Ethnic Township",
    "天津市蓟州区经济开发区": "Jizhou Economic Development Zone",
}
# fmt: on

# Hand corrections, applied BEFORE the generic rule.  These three seats lie
# clearly outside the real boundary (1.4-5.9 km out, in Yutian County); the
# generic nearest-point rule would put 东施古镇 and 杨津庄镇 0.5 km apart and
# push 桑梓镇 north next to 出头岭镇 (2.5 km).  They are re-placed in the
# southern plains between 别山镇, 侯家营镇 and 礼明庄镇 (still on 0.01 deg).
SEAT_OVERRIDES: dict[str, LonLat] = {
    "桑梓镇": (117.45, 39.93),
    "东施古镇": (117.47, 39.83),
    "杨津庄镇": (117.53, 39.83),
}
SEAT_INWARD_M = 300.0  # generic rule: nearest point of the boundary buffered 300 m inward
SEAT_MIN_SPACING_M = 3500.0

GRID = 1e-7  # precision grid of the partition, deg
GRID_DEC = 7  # decimals written for township polygons
PT_DEC = 6  # decimals written for points

# Township reserves get forest-fire items north of NORTH_LAT (mountains) and
# flood items south of SOUTH_LAT (low-lying plains), by seat latitude.
NORTH_LAT = 40.075
SOUTH_LAT = 39.95


# ---------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------
def r6(v: float) -> float:
    return round(v, PT_DEC)


def check(cond: object, msg: str) -> None:
    if not cond:
        raise SystemExit("VERIFICATION FAILED: " + msg)


def rounded_coords(geom: Geom, nd: int) -> list[Any]:
    """GeoJSON MultiPolygon coordinates with rounded vertices."""

    def ring(r: Geom) -> list[list[float]]:
        return [[round(x, nd), round(y, nd)] for x, y in r.coords]

    return [[ring(p.exterior)] + [ring(i) for i in p.interiors] for p in geom.geoms]


def write_fc(path: Path, features: list[Feature]) -> None:
    """A FeatureCollection with one compact feature per line (readable, diffable)."""
    lines = [json.dumps(f, ensure_ascii=False, separators=(",", ":")) for f in features]
    text = '{"type":"FeatureCollection","features":[\n' + ",\n".join(lines) + "\n]}\n"
    path.write_text(text, encoding="utf-8")


def feature(props: dict[str, Any], geometry: dict[str, Any]) -> Feature:
    return {"type": "Feature", "properties": props, "geometry": geometry}


def point_geom(lon: float, lat: float) -> dict[str, Any]:
    return {"type": "Point", "coordinates": [r6(lon), r6(lat)]}


# ---------------------------------------------------------------------------
# inputs
# ---------------------------------------------------------------------------
def load_inputs(data_dir: Path) -> tuple[Feature, list[Feature], list[dict[str, str]]]:
    fc = json.loads((data_dir / "region-boundaries.geojson").read_text(encoding="utf-8"))
    home = [f for f in fc["features"] if f["properties"]["adcode"] == HOME_ADCODE]
    check(len(home) == 1, "exactly one home boundary")
    partners = [f for f in fc["features"] if f["properties"]["adcode"] != HOME_ADCODE]
    with open(data_dir / "jizhou-townships.csv", encoding="utf-8", newline="") as fh:
        towns = list(csv.DictReader(fh))
    check(len(towns) == 28, "28 township rows")
    check(sorted(SEATS) == sorted(t["name"] for t in towns), "a seat for every township")
    return home[0], partners, towns


# ---------------------------------------------------------------------------
# seats
# ---------------------------------------------------------------------------
def place_seats(b: Geom, towns: list[dict[str, str]]) -> tuple[dict[str, LonLat], list[str], tuple[float, str, str]]:
    bxy = to_xy(b)
    inner = bxy.buffer(-SEAT_INWARD_M)
    seats: dict[str, LonLat] = {}
    notes: list[str] = []
    for t in towns:
        name = t["name"]
        lon, lat = SEAT_OVERRIDES.get(name, SEATS[name])
        if name in SEAT_OVERRIDES:
            notes.append(f"{name}: hand-corrected {SEATS[name]} -> {(lon, lat)}")
        p = Point(pt_xy(lon, lat))
        if not bxy.contains(p):
            q = nearest_points(inner, p)[0]
            nlon, nlat = pt_ll(q.x, q.y)
            nlon, nlat = r6(nlon), r6(nlat)
            notes.append(
                f"{name}: outside by {bxy.exterior.distance(p):.0f} m, moved {(lon, lat)} -> "
                f"{(nlon, nlat)} (nearest point {SEAT_INWARD_M:.0f} m inside)"
            )
            lon, lat = nlon, nlat
        check(b.contains(Point(lon, lat)), f"seat of {name} inside district")
        seats[t["code"]] = (lon, lat)
    codes = list(seats)
    dmin = min((dist_m(seats[a], seats[c]), a, c) for i, a in enumerate(codes) for c in codes[i + 1 :])
    check(dmin[0] >= SEAT_MIN_SPACING_M, f"seats {dmin[1]} / {dmin[2]} only {dmin[0]:.0f} m apart")
    return seats, notes, dmin


# ---------------------------------------------------------------------------
# township partition: Voronoi cells of the seats, clipped, exact shared edges
# ---------------------------------------------------------------------------
def partition(b: Geom, seats: dict[str, LonLat]) -> tuple[dict[str, Geom], list[str]]:
    codes = list(seats)
    notes: list[str] = []

    # 1. Voronoi diagram of the seats in the local metric projection, cells
    #    mapped back to lon/lat (affine: the edges stay straight).
    bxy = to_xy(b)
    pts_xy = [Point(pt_xy(*seats[c])) for c in codes]
    minx, miny, maxx, maxy = bxy.bounds
    env = box(minx - 50000, miny - 50000, maxx + 50000, maxy + 50000)
    vor = shapely.voronoi_polygons(MultiPoint(pts_xy), extend_to=env)
    cells_ll: dict[str, Geom] = {}
    for cell in vor.geoms:
        owners = [c for c, p in zip(codes, pts_xy, strict=True) if cell.contains(p)]
        check(len(owners) == 1, "each Voronoi cell holds one seat")
        cells_ll[owners[0]] = to_ll(cell)
    check(len(cells_ll) == len(codes), "one Voronoi cell per seat")

    # 2. Node the district boundary and all cell boundaries together on the
    #    1e-7 deg grid and polygonize the noded linework: the faces tile the
    #    plane with identical shared edges by construction.  Keep the faces
    #    inside the district; each goes to the Voronoi cell containing it.
    b_snap = shapely.set_precision(b, GRID)
    lines = [b_snap.exterior] + [cells_ll[c].exterior for c in codes]
    noded = shapely.union_all(lines, grid_size=GRID)
    parts: dict[str, list[Geom]] = {c: [] for c in codes}
    for f in shapely.polygonize(list(noded.geoms)).geoms:
        rp = f.point_on_surface()
        if not b_snap.contains(rp):
            continue
        owners = [c for c in codes if cells_ll[c].contains(rp)]
        if len(owners) != 1:  # only conceivable for a face thinner than the grid
            owners = [max(codes, key=lambda c: cells_ll[c].intersection(f).area)]
        parts[owners[0]].append(f)

    # 3. Where a Voronoi edge crosses the district boundary, the crossing
    #    point had to be rounded to the grid, bending the boundary segment by
    #    up to ~1 cm.  To keep the partition's outline IDENTICAL to the source
    #    boundary, each such crossing node is moved to the nearer end vertex of
    #    the boundary segment it lies on (the interior edge ends there
    #    instead).  The substitution is applied to every face, so neighbours
    #    stay consistent.
    b_ring = list(b_snap.exterior.coords)
    b_vertices = set(b_ring)
    b_segments = [LineString([b_ring[i], b_ring[i + 1]]) for i in range(len(b_ring) - 1)]
    seg_tree = shapely.STRtree(b_segments)
    moved: dict[tuple[float, float], tuple[float, float]] = {}
    max_move = 0.0
    for c in codes:
        for f in parts[c]:
            for v in f.exterior.coords:
                if v in b_vertices or v in moved:
                    continue
                pv = Point(v)
                if b_snap.exterior.distance(pv) > 2 * GRID:
                    continue
                seg = b_segments[int(seg_tree.nearest(pv))]
                p0, p1 = seg.coords[0], seg.coords[1]
                moved[v] = p0 if (pv.distance(Point(p0)), p0) <= (pv.distance(Point(p1)), p1) else p1
                max_move = max(max_move, dist_m(v, moved[v]))
    notes.append(f"{len(moved)} Voronoi/boundary crossings moved to the nearer boundary vertex (max {max_move:.0f} m)")
    result: dict[str, Geom] = {}
    for c in codes:
        check(parts[c], f"township {c} has a non-empty cell")
        faces = []
        for f in parts[c]:
            ring: list[tuple[float, float]] = []
            for v in f.exterior.coords:
                v = moved.get(v, v)
                if not ring or ring[-1] != v:
                    ring.append(v)
            if len(ring) >= 4:
                g = Polygon(ring)
                if g.area > 0:
                    check(g.is_valid, f"face of {c} valid after moving boundary crossings")
                    faces.append(g)
        result[c] = shapely.union_all(faces, grid_size=GRID)

    # 4. A Voronoi cell clipped by a wiggly boundary can fall apart; a detached
    #    piece that does not hold the seat is handed over whole (so the shared
    #    edges stay identical) to the neighbour it shares the longest border with.
    for c in codes:
        pieces = list(getattr(result[c], "geoms", [result[c]]))
        if len(pieces) == 1:
            continue
        for piece in pieces:
            if piece.contains(Point(seats[c])):
                continue
            length, other = max((piece.boundary.intersection(result[o].boundary).length, o) for o in codes if o != c)
            if length <= 0:
                continue
            result[c] = shapely.difference(result[c], piece, grid_size=GRID)
            result[other] = shapely.union_all([result[other], piece], grid_size=GRID)
            notes.append(f"detached piece of {c} without its seat ({area_m2(piece) / 1e6:.3f} km2) given to {other}")

    final = {}
    for c in codes:
        pieces = list(getattr(result[c], "geoms", [result[c]]))
        final[c] = MultiPolygon([orient(p, 1.0) for p in pieces])  # RFC 7946 ring orientation
    return final, notes


def verify_partition(b: Geom, seats: dict[str, LonLat], coords_by_code: dict[str, Any]) -> dict[str, Geom]:
    """Verify on the ROUNDED coordinates exactly as written."""
    cells = {c: shape({"type": "MultiPolygon", "coordinates": co}) for c, co in coords_by_code.items()}
    codes = list(cells)
    for c in codes:
        check(cells[c].is_valid, f"cell {c} valid")
        check(cells[c].contains(Point(seats[c])), f"seat {c} inside its own cell")
    union = shapely.union_all(list(cells.values()))
    a_b, a_u = area_m2(b), area_m2(union)
    rel = abs(a_u - a_b) / a_b
    sym = area_m2(shapely.symmetric_difference(union, b))
    total = sum(area_m2(g) for g in cells.values())
    rel_sum = abs(total - a_b) / a_b
    tree = shapely.STRtree(list(cells.values()))
    max_ov, pair = 0.0, ""
    for i, j in zip(*tree.query(list(cells.values()), predicate="intersects"), strict=True):
        if i < j:
            ov = area_m2(shapely.intersection(cells[codes[i]], cells[codes[j]]))
            if ov > max_ov:
                max_ov, pair = ov, f"({codes[i]} / {codes[j]})"
    print(f"  district area            {a_b / 1e6:,.3f} km2 (local projection)")
    print(f"  union of 28 cells        {a_u / 1e6:,.3f} km2   |rel diff| = {rel:.3e}")
    print(f"  sum of 28 cell areas     {total / 1e6:,.3f} km2   |rel diff| = {rel_sum:.3e}")
    print(f"  symmetric difference     {sym:.6f} m2   union equals boundary: {shapely.equals(union, b)}")
    print(f"  max pairwise overlap     {max_ov:.6f} m2 {pair}")
    check(rel < 1e-9, f"union vs boundary relative difference {rel:.3e} >= 1e-9")
    check(rel_sum < 1e-9, f"sum of areas vs boundary relative difference {rel_sum:.3e} >= 1e-9")
    check(sym < 1.0, f"union vs boundary symmetric difference {sym} m2 >= 1 m2")
    check(max_ov < 1.0, f"pairwise overlap {max_ov} m2 >= 1 m2")
    return cells


# ---------------------------------------------------------------------------
# point placement
# ---------------------------------------------------------------------------
class Placer:
    """Deterministic rejection sampling inside a township polygon."""

    def __init__(self, cells: dict[str, Geom], seats: dict[str, LonLat]) -> None:
        self.cells = cells
        self.cells_xy = {c: to_xy(g) for c, g in cells.items()}
        self.seats = seats
        self._inner: dict[tuple[str, float], Geom] = {}

    def inner(self, code: str, margin: float) -> Geom:
        key = (code, margin)
        if key not in self._inner:
            # +10 m slack: the margin still holds after rounding to 1e-6 deg
            # and whatever the projection's scale error
            self._inner[key] = self.cells_xy[code].buffer(-(margin + 10.0))
        return self._inner[key]

    def place(
        self,
        seed: str,
        code: str,
        radius: float,
        *,
        margin: float = 200.0,
        centre: LonLat | None = None,
        avoid: list[LonLat] | None = None,
        min_sep: float = 300.0,
    ) -> LonLat:
        """A point inside township `code`, at least `margin` m from its edge, within `radius` m
        of `centre` (default: the seat), at least `min_sep` m from the points in `avoid`."""
        rng = random.Random(seed)
        inner = self.inner(code, margin)
        check(not inner.is_empty, f"cell {code} too small for margin {margin}")
        cx, cy = pt_xy(*(centre or self.seats[code]))
        for attempt in range(20000):
            r = radius * (1.0 + attempt // 2000)  # widen slowly if the disc is too tight
            x, y = cx + rng.uniform(-r, r), cy + rng.uniform(-r, r)
            if math.hypot(x - cx, y - cy) > r or not inner.contains(Point(x, y)):
                continue
            lon, lat = pt_ll(x, y)
            lon, lat = r6(lon), r6(lat)
            if any(dist_m((lon, lat), a) < min_sep for a in avoid or []):
                continue
            return lon, lat
        raise SystemExit(f"could not place point {seed}")

    def township_of(self, lon: float, lat: float) -> str:
        p = Point(lon, lat)
        hits = [c for c, g in self.cells.items() if g.contains(p)]
        check(len(hits) == 1, f"point {lon},{lat} in exactly one township")
        return hits[0]

    def edge_distance(self, code: str, lon: float, lat: float) -> float:
        return float(self.cells_xy[code].boundary.distance(Point(pt_xy(lon, lat))))


# ---------------------------------------------------------------------------
# shelters (plan: 94 emergency + 1 fixed, on gyms, city parks, schools)
# ---------------------------------------------------------------------------
CITY = "120119001"
DEVZONE = "120119401"
# fmt: off
SHELTER_COUNTS = {  # emergency shelters per township, 94 in all: more in the city and the plains
    "120119001": 10, "120119100": 5, "120119101": 4, "120119102": 3, "120119103": 4, "120119104": 3,
    "120119105": 4, "120119106": 4, "120119108": 4, "120119109": 4, "120119111": 4, "120119112": 2,
    "120119113": 3, "120119115": 3, "120119116": 3, "120119117": 3, "120119118": 3, "120119119": 3,
    "120119120": 3, "120119121": 2, "120119122": 2, "120119123": 3, "120119124": 2, "120119125": 3,
    "120119126": 2, "120119127": 3, "120119203": 2, "120119401": 3,
}
CITY_SITES = [
    ("stadium", "蓟州区体育馆"), ("park", "城区滨河公园"), ("square", "城区文化广场"),
    ("school", "蓟州区第一中学"), ("school", "文昌街道第一小学"), ("school", "文昌街道第二小学"),
    ("park", "城北公园"), ("school", "蓟州区第二中学"), ("square", "城东社区广场"),
    ("school", "文昌街道第三小学"),
]
DEVZONE_SITES = [
    ("square", "经济开发区企业服务中心广场"), ("park", "经济开发区滨河公园"),
    ("school", "经济开发区实验学校"),
]
TOWN_SITES: list[tuple[str, str | None]] = [  # None: village square named by its direction from the seat
    ("school", "{t}中心小学"), ("village_square", None), ("square", "{t}文化广场"),
    ("school", "{t}中学"), ("village_square", None), ("park", "{t}公园"),
]
CAPACITY = {  # people, emergency shelters by site type
    "stadium": (2000, 3000), "park": (1200, 2500), "square": (800, 2000),
    "school": (500, 1500), "village_square": (300, 800),
}
FIXED = {"code": "SH-FIXED-01", "name": "蓟州区城区公园固定避难场所", "site_type": "park",
         "capacity": 20000, "area_m2": 50000}
# fmt: on


def direction(seat: LonLat, p: LonLat) -> str:
    (sx, sy), (px, py) = pt_xy(*seat), pt_xy(*p)
    if abs(px - sx) >= abs(py - sy):
        return "东" if px > sx else "西"
    return "北" if py > sy else "南"


def make_shelters(towns: list[dict[str, str]], placer: Placer) -> list[Feature]:
    check(sum(SHELTER_COUNTS.values()) == 94, "94 emergency shelters planned")
    check(min(SHELTER_COUNTS.values()) >= 2, "at least 2 per township")
    feats: list[Feature] = []
    placed: list[LonLat] = []
    for t in towns:
        code, name = t["code"], t["name"]
        sites: list[tuple[str, str | None]]
        if code == CITY:
            sites, radius = list(CITY_SITES), 3000.0
        elif code == DEVZONE:
            sites, radius = list(DEVZONE_SITES), 5000.0
        else:
            sites, radius = TOWN_SITES, 8000.0
        n = SHELTER_COUNTS[code]
        check(len(sites) >= n, f"enough site templates for {name}")
        used: set[str] = set()
        for i in range(n):
            scode = f"SH-{code}-{i + 1:02d}"
            lon, lat = placer.place("shelter:" + scode, code, radius, avoid=placed, min_sep=500.0)
            placed.append((lon, lat))
            site_type, label = sites[i]
            if label is None:
                d = direction(placer.seats[code], (lon, lat))
                label = f"{name}{d}部村民广场"
                if label in used:
                    label = f"{name}{d}部第二村民广场"
            else:
                label = label.format(t=name)
            check(label not in used, f"unique shelter name {label}")
            used.add(label)
            rng = random.Random("shelter-size:" + scode)
            lo, hi = CAPACITY[site_type]
            cap = round(rng.randint(lo, hi) / 50.0) * 50
            area = round(cap * rng.uniform(1.5, 2.0) / 10.0) * 10  # 1.5-2 m2 per person
            props = {
                "code": scode,
                "name": label + "紧急避难场所",
                "level": "emergency",
                "capacity": cap,
                "area_m2": area,
                "site_type": site_type,
                "township": placer.township_of(lon, lat),
            }
            feats.append(feature(props, point_geom(lon, lat)))
    lon, lat = placer.place("shelter:" + str(FIXED["code"]), CITY, 1500.0, avoid=placed, min_sep=500.0)
    props = {
        "code": FIXED["code"],
        "name": FIXED["name"],
        "level": "fixed",
        "capacity": FIXED["capacity"],
        "area_m2": FIXED["area_m2"],
        "site_type": FIXED["site_type"],
        "township": placer.township_of(lon, lat),
    }
    feats.append(feature(props, point_geom(lon, lat)))
    return feats


# ---------------------------------------------------------------------------
# helipads (the aviation base position comes from the plan)
# ---------------------------------------------------------------------------
AVIATION_BASE: LonLat = (117.50, 40.02)  # south shore of Yuqiao Reservoir, former 九百户中学 site
TEMP_PADS = [("HP-TMP-01", "下营镇"), ("HP-TMP-02", "孙各庄满族乡")]


def make_helipads(by_name: dict[str, str], placer: Placer) -> list[Feature]:
    props = {
        "code": "HP-BASE-01",
        "name": "蓟州区森林防火航空应急救援基地",
        "name_en": "Jizhou Forest Fire Aviation Emergency Rescue Base",
        "kind": "base",
        "status": "usable",
        "township": placer.township_of(*AVIATION_BASE),
    }
    feats = [feature(props, point_geom(*AVIATION_BASE))]
    for code, tname in TEMP_PADS:
        lon, lat = placer.place("helipad:" + code, by_name[tname], 4000.0, margin=300.0)
        props = {
            "code": code,
            "name": f"{tname}山区临时直升机起降点",
            "name_en": f"{TOWNSHIP_EN[tname]} Mountain Temporary Helipad",
            "kind": "temporary",
            "status": "usable",
            "township": placer.township_of(lon, lat),
        }
        feats.append(feature(props, point_geom(lon, lat)))
    return feats


# ---------------------------------------------------------------------------
# teams
# ---------------------------------------------------------------------------
FIRE_RESCUE_TOTAL = 245  # plan: 245 full-time firefighters
# fmt: off
FIRE_STATIONS = [  # (code, township, name, name_en, headcount, capabilities ";"-separated)
    ("T-FR-CITY", "文昌街道", "蓟州区消防救援支队城区特勤消防站",
     "Jizhou Fire and Rescue Brigade, City Special Service Station", 75,
     "structure_fire;extrication;heavy_rescue;hazmat;water_supply;search_rescue;water_rescue;comms"),
    ("T-FR-DEVZONE", "天津市蓟州区经济开发区", "蓟州区消防救援支队经济开发区消防站",
     "Jizhou Fire and Rescue Brigade, Economic Development Zone Station", 45,
     "structure_fire;hazmat;extrication;water_supply;heavy_rescue"),
    ("T-FR-BANGJUN", "邦均镇", "蓟州区消防救援支队邦均消防站",
     "Jizhou Fire and Rescue Brigade, Bangjun Station", 45,
     "structure_fire;extrication;water_supply;search_rescue;flood_rescue"),
    ("T-FR-XIAYING", "下营镇", "蓟州区消防救援支队下营消防站",
     "Jizhou Fire and Rescue Brigade, Xiaying Station", 40,
     "structure_fire;forest_fire;water_supply;search_rescue;geological_rescue;extrication"),
    ("T-FR-MASHENQIAO", "马伸桥镇", "蓟州区消防救援支队马伸桥消防站",
     "Jizhou Fire and Rescue Brigade, Mashenqiao Station", 40,
     "structure_fire;forest_fire;water_supply;search_rescue;water_rescue;extrication"),
]
TOWNSHIP_FIRE = [  # plan: 9 township government full-time fire teams; (township, code key, headcount)
    ("下营镇", "XIAYING", 15), ("罗庄子镇", "LUOZHUANGZI", 12), ("孙各庄满族乡", "SUNGEZHUANG", 12),
    ("穿芳峪镇", "CHUANFANGYU", 10), ("官庄镇", "GUANZHUANG", 12), ("许家台镇", "XUJIATAI", 10),
    ("西龙虎峪镇", "XILONGHUYU", 10), ("白涧镇", "BAIJIAN", 9), ("东赵各庄镇", "DONGZHAOGEZHUANG", 8),
]
# (code, township or None, kind, name, name_en, headcount, capabilities, shareable with partners)
# township None: the aviation team sits at the aviation base; other None rows use TEAM_CENTRES
OTHER_TEAMS = [
    ("T-FF-DISTRICT", "官庄镇", "forest_fire", "蓟州区森林消防专业队",
     "Jizhou District Forest Firefighting Team", 100, "forest_fire;water_supply;drone;logistics;comms", True),
    ("T-AV-BASE", None, "aviation", "蓟州区航空应急救援队",
     "Jizhou Aviation Emergency Rescue Team", 24, "aviation;forest_fire;search_rescue;medical", True),
    ("T-HZ-DEVZONE", "天津市蓟州区经济开发区", "hazmat", "蓟州区危险化学品应急救援队",
     "Jizhou Hazardous Chemicals Emergency Rescue Team", 30,
     "hazmat;structure_fire;extrication;medical;comms", True),
    ("T-FL-YUQIAO", None, "flood", "于桥水库防汛抢险队",
     "Yuqiao Reservoir Flood Emergency Team", 40,
     "flood_rescue;water_rescue;pumping;evacuation;logistics", True),
    ("T-FL-QINGDIANWA", "下仓镇", "flood", "青甸洼蓄滞洪区防汛抢险队",
     "Qingdianwa Flood Detention Basin Emergency Team", 50,
     "flood_rescue;water_rescue;pumping;evacuation", True),
    ("T-FL-ZHOUHE", "州河湾镇", "flood", "州河防汛抢险队",
     "Zhou River Flood Emergency Team", 35, "flood_rescue;water_rescue;pumping;evacuation", True),
    ("T-GEO-DISTRICT", "下营镇", "geological", "蓟州区地质灾害应急救援队",
     "Jizhou Geological Hazard Emergency Rescue Team", 30,
     "geological_rescue;heavy_rescue;search_rescue;drone", True),
    ("T-GEO-LUOZHUANGZI", "罗庄子镇", "geological", "罗庄子镇地质灾害抢险队",
     "Luozhuangzi Geological Hazard Emergency Team", 20,
     "geological_rescue;heavy_rescue;search_rescue", True),
    ("T-GEO-SUNGEZHUANG", "孙各庄满族乡", "geological", "孙各庄满族乡地质灾害抢险队",
     "Sungezhuang Geological Hazard Emergency Team", 18,
     "geological_rescue;heavy_rescue;search_rescue", True),
    ("T-MED-PEOPLES", "文昌街道", "medical", "蓟州区人民医院医疗救援队",
     "Jizhou District People's Hospital Medical Rescue Team", 30, "medical;evacuation", True),
    ("T-MED-TCM", "渔阳镇", "medical", "蓟州区中医医院医疗救援队",
     "Jizhou District TCM Hospital Medical Rescue Team", 20, "medical;evacuation", True),
    ("T-MED-EMS", "文昌街道", "medical", "蓟州区急救中心医疗救援队",
     "Jizhou District Emergency Medical Centre Team", 25, "medical;evacuation;comms", True),
    ("T-MED-SOUTH", "上仓镇", "medical", "上仓中心卫生院医疗救援队",
     "Shangcang Central Health Centre Medical Rescue Team", 15, "medical;evacuation", True),
    ("T-SOC-BLUESKY", "文昌街道", "social", "蓟州蓝天救援队",
     "Jizhou Blue Sky Rescue Team", 60, "search_rescue;water_rescue;relief;evacuation;drone", True),
    ("T-SOC-REDCROSS", "渔阳镇", "social", "蓟州区红十字应急救护队",
     "Jizhou Red Cross Emergency Response Team", 40, "medical;relief;evacuation;search_rescue", True),
    ("T-SOC-SHENYING", "邦均镇", "social", "蓟州神鹰应急救援队",
     "Jizhou Shenying Emergency Rescue Team", 35, "search_rescue;water_rescue;relief;evacuation;drone", True),
    ("T-MIL-DISTRICT", "文昌街道", "militia", "蓟州区民兵应急连",
     "Jizhou District Militia Emergency Company", 120,
     "relief;evacuation;flood_rescue;forest_fire;logistics", False),
    ("T-MIL-NORTH", "下营镇", "militia", "北部山区民兵森林防火应急排",
     "Northern Mountains Militia Forest Fire Platoon", 40, "forest_fire;relief;evacuation;logistics", False),
    ("T-MIL-SOUTH", "尤古庄镇", "militia", "南部民兵防汛抢险应急排",
     "Southern Militia Flood Emergency Platoon", 40, "flood_rescue;relief;evacuation;logistics", False),
    ("T-ENT-CHEM", "天津市蓟州区经济开发区", "enterprise", "经济开发区化工企业专职消防队",
     "Development Zone Chemical Enterprises Full-time Fire Team", 25,
     "hazmat;structure_fire;water_supply", False),
    ("T-ENT-MINE", "许家台镇", "enterprise", "蓟州区矿山企业应急救援队",
     "Jizhou Mining Enterprises Emergency Rescue Team", 20,
     "hazmat;structure_fire;heavy_rescue;search_rescue", False),
    ("T-ENT-POWER", "渔阳镇", "enterprise", "蓟州供电企业电力应急抢修队",
     "Jizhou Power Supply Emergency Repair Team", 30, "logistics;comms;heavy_rescue", False),
]
# fmt: on
# teams placed near a named place rather than near a township seat; their
# township is whichever generated polygon contains the centre point
TEAM_CENTRES: dict[str, LonLat] = {
    "T-FL-YUQIAO": (117.46, 40.035),  # west / south-west shore of Yuqiao Reservoir (approximate)
}
KINDS = {
    "fire_rescue",
    "township_fire",
    "forest_fire",
    "hazmat",
    "flood",
    "geological",
    "medical",
    "social",
    "militia",
    "enterprise",
    "aviation",
}
CAPS = {
    "structure_fire",
    "forest_fire",
    "water_supply",
    "aviation",
    "hazmat",
    "flood_rescue",
    "water_rescue",
    "geological_rescue",
    "heavy_rescue",
    "search_rescue",
    "medical",
    "extrication",
    "relief",
    "evacuation",
    "logistics",
    "drone",
    "comms",
    "pumping",
}


def make_teams(by_name: dict[str, str], placer: Placer) -> list[Feature]:
    rows: list[tuple[str, str | None, str, str, str, int, str, bool]] = []
    for st_code, st_town, st_name, st_en, st_hc, st_caps in FIRE_STATIONS:
        rows.append((st_code, st_town, "fire_rescue", st_name, st_en, st_hc, st_caps, True))
    for tf_town, tf_key, tf_hc in TOWNSHIP_FIRE:
        rows.append(
            (
                f"T-TF-{tf_key}",
                tf_town,
                "township_fire",
                f"{tf_town}政府专职消防队",
                f"{TOWNSHIP_EN[tf_town]} Government Full-time Fire Team",
                tf_hc,
                "structure_fire;forest_fire;water_supply",
                False,
            )
        )
    rows.extend(OTHER_TEAMS)
    check(sum(r[5] for r in rows if r[2] == "fire_rescue") == FIRE_RESCUE_TOTAL, "fire_rescue headcount 245")
    check(len({r[1] for r in rows if r[2] == "township_fire"}) == 9, "9 township fire teams in 9 towns")
    feats: list[Feature] = []
    placed: list[LonLat] = []
    for code, tname, kind, name, en, hc, caps_s, share in rows:
        caps = caps_s.split(";")
        check(kind in KINDS, f"kind {kind}")
        check(set(caps) <= CAPS, f"capabilities of {code}")
        if kind == "aviation":
            lon, lat = AVIATION_BASE
        elif tname is None:
            centre = TEAM_CENTRES[code]
            tc = placer.township_of(*centre)
            lon, lat = placer.place("team:" + code, tc, 1500.0, centre=centre, avoid=placed)
        else:
            tc = by_name[tname]
            lon, lat = placer.place("team:" + code, tc, 2000.0 if tc == CITY else 3000.0, avoid=placed)
            check(placer.township_of(lon, lat) == tc, f"{code} inside {tname}")
        placed.append((lon, lat))
        props = {
            "code": code,
            "name": name,
            "name_en": en,
            "kind": kind,
            "capabilities": caps,
            "headcount": hc,
            "township": placer.township_of(lon, lat),
            "shareable": share,
        }
        feats.append(feature(props, point_geom(lon, lat)))
    return feats


# ---------------------------------------------------------------------------
# items (codes after GB/T 38565: 1xx basic living, 2xx equipment, 3xx engineering)
# ---------------------------------------------------------------------------
# fmt: off
ITEMS: list[tuple[str, str, str, str, str, int | None]] = [
    # code, name, name_en, unit, category, persons_per_unit
    ("101", "帐篷", "tent", "顶", "basic_living", 5),
    ("102", "棉被", "quilt", "床", "basic_living", 1),
    ("103", "折叠床", "folding bed", "张", "basic_living", 1),
    ("104", "饮用水", "drinking water (one person, 3 days)", "箱", "basic_living", 1),
    ("105", "方便食品", "instant food (one person, 3 days)", "箱", "basic_living", 1),
    ("106", "棉大衣", "padded coat", "件", "basic_living", 1),
    ("107", "应急照明灯", "emergency lamp", "个", "basic_living", 10),
    ("108", "移动厕所", "mobile toilet", "个", "basic_living", 50),
    ("201", "灭火弹", "fire-extinguishing bomb", "枚", "equipment", None),
    ("202", "风力灭火机", "wind-type fire extinguisher", "台", "equipment", None),
    ("203", "发电机", "generator", "台", "equipment", None),
    ("204", "水泵", "water pump", "台", "equipment", None),
    ("205", "救生衣", "life jacket", "件", "equipment", None),
    ("206", "冲锋舟", "rescue boat", "艘", "equipment", None),
    ("207", "油锯", "chainsaw", "台", "equipment", None),
    ("208", "防化服", "chemical protective suit", "套", "equipment", None),
    ("209", "气体检测仪", "gas detector", "台", "equipment", None),
    ("210", "灭火水囊", "portable water bladder", "个", "equipment", None),
    ("211", "无人机", "drone", "架", "equipment", None),
    ("301", "编织袋", "woven sandbag", "条", "engineering", None),
    ("302", "土工布", "geotextile", "平方米", "engineering", None),
    ("303", "钢管", "steel pipe", "米", "engineering", None),
    ("304", "块石", "rubble stone", "立方米", "engineering", None),
    ("305", "木桩", "timber stake", "根", "engineering", None),
]
# fmt: on
PERSONS_PER_UNIT = {code: ppu for code, *_, ppu in ITEMS if ppu}


def write_items(path: Path) -> None:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["code", "name", "name_en", "unit", "category", "persons_per_unit"])
    for code, name, en, unit, cat, ppu in ITEMS:
        w.writerow([code, name, en, unit, cat, "" if ppu is None else ppu])
    path.write_text(buf.getvalue(), encoding="utf-8")


# ---------------------------------------------------------------------------
# depots
# ---------------------------------------------------------------------------
RELIEF_TARGET_PERSONS = 30000  # plan: relief stock for the basic living of 30,000 people at once
RELIEF_MARGIN = 1.10  # the district relief depot tops every basic-living item up to 33,000 persons
# fmt: off
# plan: 灭火弹1万余枚 (10,000+ bombs) and 600多台套 equipment (here 240+30+50+100+180+12 = 612)
FOREST_STOCK = [("201", 10500), ("202", 240), ("203", 30), ("204", 50), ("207", 100), ("210", 180),
                ("211", 12), ("106", 300), ("107", 200)]
TOWN_BASIC = {"101": (30, 60), "102": (200, 400), "103": (50, 150), "104": (200, 400), "105": (200, 400),
              "106": (50, 150), "107": (20, 50), "108": (2, 6)}
TOWN_NORTH = {"202": (2, 6), "207": (2, 4), "210": (5, 10)}
TOWN_SOUTH = {"301": (2000, 5000), "302": (1000, 3000), "304": (50, 200), "305": (200, 600),
              "204": (2, 6), "205": (50, 150), "206": (1, 2)}
SOCIAL = [
    ("DEP-SOC-REDCROSS", "文昌街道", "蓟州区红十字会备灾仓库",
     "Jizhou Red Cross Disaster Preparedness Warehouse",
     [("101", 200), ("102", 1000), ("103", 300), ("104", 800), ("105", 800), ("106", 300), ("107", 100)]),
    ("DEP-SOC-BLUESKY", "渔阳镇", "蓟州蓝天救援队物资储备点",
     "Jizhou Blue Sky Rescue Team Supply Point",
     [("101", 50), ("104", 300), ("105", 300), ("107", 60), ("203", 6), ("205", 120), ("206", 4),
      ("211", 6)]),
]
RELIEF_EXTRA = [("203", 60), ("204", 80), ("205", 600), ("206", 20), ("208", 60), ("209", 40),
                ("301", 50000), ("302", 20000), ("303", 5000), ("304", 1000), ("305", 3000)]
# fmt: on


def qty(rng: random.Random, lo_hi: tuple[int, int], step: int = 1) -> int:
    lo, hi = lo_hi
    return round(rng.randint(lo, hi) / step) * step


def make_depots(towns: list[dict[str, str]], by_name: dict[str, str], placer: Placer) -> list[Feature]:
    feats: list[Feature] = []
    placed: list[LonLat] = []

    def add(code: str, name: str, en: str, level: str, tc: str, stock: list[tuple[str, int]], radius: float) -> None:
        lon, lat = placer.place("depot:" + code, tc, radius, avoid=placed)
        placed.append((lon, lat))
        props = {
            "code": code,
            "name": name,
            "name_en": en,
            "level": level,
            "township": placer.township_of(lon, lat),
            "stock": [{"item": i, "quantity": q} for i, q in sorted(stock)],
        }
        feats.append(feature(props, point_geom(lon, lat)))

    add(
        "DEP-FOREST",
        "蓟州区森林防火物资库",
        "Jizhou District Forest Fire Supplies Depot",
        "district",
        by_name["罗庄子镇"],
        FOREST_STOCK,
        3000.0,
    )

    town_stock: list[tuple[dict[str, str], list[tuple[str, int]]]] = []
    for t in towns:
        code = t["code"]
        rng = random.Random("depot-stock:" + code)
        s = {i: qty(rng, r, 10 if r[1] >= 100 else 1) for i, r in TOWN_BASIC.items()}
        lat = placer.seats[code][1]
        if lat >= NORTH_LAT:
            s.update({i: qty(rng, r) for i, r in TOWN_NORTH.items()})
        if lat < SOUTH_LAT:
            s.update({i: qty(rng, r, 100 if r[1] >= 1000 else 10 if r[1] >= 100 else 1) for i, r in TOWN_SOUTH.items()})
        town_stock.append((t, list(s.items())))

    # the district relief depot holds the bulk: whatever tops each basic-living
    # item up to RELIEF_TARGET_PERSONS * RELIEF_MARGIN over all depots
    held = dict.fromkeys(PERSONS_PER_UNIT, 0)
    for stock in [s for _, s in town_stock] + [s for *_, s in SOCIAL] + [FOREST_STOCK]:
        for i, q in stock:
            if i in held:
                held[i] += q
    relief = [
        (i, max(0, math.ceil((RELIEF_TARGET_PERSONS * RELIEF_MARGIN / p - held[i]) / 10.0) * 10))
        for i, p in PERSONS_PER_UNIT.items()
    ]
    add(
        "DEP-RELIEF",
        "蓟州区救灾物资储备库",
        "Jizhou District Disaster Relief Supplies Depot",
        "district",
        CITY,
        relief + RELIEF_EXTRA,
        2500.0,
    )

    for t, stock in town_stock:
        add(
            f"DEP-{t['code']}",
            f"{t['name']}应急物资储备点",
            f"{TOWNSHIP_EN[t['name']]} Emergency Supplies Reserve",
            "township",
            t["code"],
            stock,
            1500.0,
        )
    for code, tname, name, en, stock in SOCIAL:
        add(code, name, en, "social", by_name[tname], stock, 2500.0)
    return feats


def verify_relief(depots: list[Feature]) -> None:
    tot = dict.fromkeys(PERSONS_PER_UNIT, 0)
    for f in depots:
        for s in f["properties"]["stock"]:
            if s["item"] in tot:
                tot[s["item"]] += s["quantity"]
    print("  basic-living coverage over all depots (quantity x persons_per_unit >= 30,000):")
    for i, p in PERSONS_PER_UNIT.items():
        name = next(n for c, n, *_ in ITEMS if c == i)
        persons = tot[i] * p
        print(f"    {i} {name:<6} {tot[i]:>8,} x {p:>2} = {persons:>8,} persons")
        check(persons >= RELIEF_TARGET_PERSONS, f"item {i} covers {persons} < 30000")
    bombs = sum(
        s["quantity"]
        for f in depots
        if f["properties"]["code"] == "DEP-FOREST"
        for s in f["properties"]["stock"]
        if s["item"] == "201"
    )
    print(f"  fire-extinguishing bombs (201) in DEP-FOREST: {bombs:,}")
    check(bombs >= 10000, "forest depot holds >= 10,000 bombs")


# ---------------------------------------------------------------------------
# partners (plan: 平蓟三兴 emergency linkage; 平蓟三兴玉遵 forest-fire joint defence)
# ---------------------------------------------------------------------------
PARTNERS = {  # adcode: (id, name_en, roles)
    "110117": ("pinggu", "Pinggu District", ["emergency_linkage", "forest_fire_defence"]),
    "131082": ("sanhe", "Sanhe City", ["emergency_linkage", "forest_fire_defence"]),
    "130822": ("xinglong", "Xinglong County", ["emergency_linkage", "forest_fire_defence"]),
    "130229": ("yutian", "Yutian County", ["forest_fire_defence"]),
    "130281": ("zunhua", "Zunhua City", ["forest_fire_defence"]),
}


def make_partners(partners: list[Feature]) -> list[Feature]:
    feats = []
    for f in partners:
        p = f["properties"]
        pid, en, roles = PARTNERS[p["adcode"]]
        props = {
            "id": pid,
            "adcode": p["adcode"],
            "name": p["name"],
            "name_en": en,
            "parent": p["parent"],
            "roles": roles,
        }
        feats.append(feature(props, f["geometry"]))  # geometry exactly as in the source
    check(
        sorted(x["properties"]["id"] for x in feats) == sorted(v[0] for v in PARTNERS.values()),
        "all five partners present",
    )
    return feats


# ---------------------------------------------------------------------------
# main
# ---------------------------------------------------------------------------
def verify_points(layer: str, feats: list[Feature], placer: Placer, margin: float | None = None) -> float:
    """Each point's township property is the polygon containing it; returns the smallest
    distance of a point to its township's edge (checked against `margin` if given)."""
    worst = math.inf
    for f in feats:
        lon, lat = f["geometry"]["coordinates"]
        code = f["properties"]["code"]
        t = placer.township_of(lon, lat)
        check(t == f["properties"]["township"], f"{layer} {code} township matches its polygon")
        d = placer.edge_distance(t, lon, lat)
        worst = min(worst, d)
        check(margin is None or d >= margin, f"{layer} {code} only {d:.0f} m from its township edge")
    for key in ("code", "name"):
        values = [f["properties"][key] for f in feats]
        check(len(set(values)) == len(values), f"{layer} {key}s unique")
    return worst


def main(argv: list[str] | None = None) -> None:
    here = Path(__file__).resolve().parent
    ap = argparse.ArgumentParser(description="Generate the Jizhou seed files deterministically.")
    ap.add_argument(
        "data_dir",
        nargs="?",
        type=Path,
        default=here.parent.parent / "shared" / "data",
        help="shared reference data (default: <repo root>/../shared/data)",
    )
    ap.add_argument("--out", type=Path, default=here, help="output folder (default: this script's folder)")
    args = ap.parse_args(argv)
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)

    home, partners, towns = load_inputs(args.data_dir)
    b = shape(home["geometry"])
    check(b.is_valid, "district boundary valid")
    by_name = {t["name"]: t["code"] for t in towns}

    write_fc(out / "district.geojson", [feature({"adcode": HOME_ADCODE, "name": "蓟州区"}, home["geometry"])])

    print("seats and partition:")
    seats, notes, dmin = place_seats(b, towns)
    cells, part_notes = partition(b, seats)
    for n in notes + part_notes:
        print("  " + n)
    print(f"  minimum seat spacing {dmin[0]:.0f} m ({dmin[1]} / {dmin[2]})")
    tfeats = []
    for t in towns:
        c = t["code"]
        props = {"code": c, "name": t["name"], "kind": t["kind"], "seat": [r6(seats[c][0]), r6(seats[c][1])]}
        geom = {"type": "MultiPolygon", "coordinates": rounded_coords(cells[c], GRID_DEC)}
        tfeats.append(feature(props, geom))
    write_fc(out / "townships.geojson", tfeats)

    # everything below works on the townships as written (rounded), re-read from disk
    written = json.loads((out / "townships.geojson").read_text(encoding="utf-8"))["features"]
    check(len(written) == 28, "28 township features")
    print("township partition, verified on the written (rounded) coordinates:")
    seats_w = {f["properties"]["code"]: tuple(f["properties"]["seat"]) for f in written}
    cells_w = verify_partition(b, seats_w, {f["properties"]["code"]: f["geometry"]["coordinates"] for f in written})
    placer = Placer(cells_w, seats_w)

    shelters = make_shelters(towns, placer)
    helipads = make_helipads(by_name, placer)
    teams = make_teams(by_name, placer)
    depots = make_depots(towns, by_name, placer)
    write_fc(out / "shelters.geojson", shelters)
    write_fc(out / "helipads.geojson", helipads)
    write_fc(out / "teams.geojson", teams)
    write_items(out / "items.csv")
    write_fc(out / "depots.geojson", depots)
    write_fc(out / "partners.geojson", make_partners(partners))

    print("points:")
    levels = [f["properties"]["level"] for f in shelters]
    check(len(shelters) == 95 and levels.count("emergency") == 94 and levels.count("fixed") == 1, "95 shelters")
    per_township: dict[str, int] = {}
    for f in shelters:
        per_township[f["properties"]["township"]] = per_township.get(f["properties"]["township"], 0) + 1
    check(len(per_township) == 28 and min(per_township.values()) >= 2, "every township has >= 2 shelters")
    w = verify_points("shelter", shelters, placer, margin=200.0)
    far = max(dist_m(tuple(f["geometry"]["coordinates"]), seats_w[f["properties"]["township"]]) for f in shelters)
    cap = sum(f["properties"]["capacity"] for f in shelters if f["properties"]["level"] == "emergency")
    print(
        f"  shelters {len(shelters)} (94 emergency + 1 fixed): min distance to township edge {w:.0f} m, "
        f"max distance to seat {far:.0f} m, emergency capacity {cap:,}"
    )
    w = verify_points("team", [f for f in teams if f["properties"]["kind"] != "aviation"], placer, 200.0)
    verify_points("team", teams, placer)
    fr = sum(f["properties"]["headcount"] for f in teams if f["properties"]["kind"] == "fire_rescue")
    print(
        f"  teams {len(teams)}: fire_rescue headcount {fr}, min distance to township edge {w:.0f} m "
        "(aviation team at the base excluded)"
    )
    verify_points("helipad", helipads, placer)
    base_t = helipads[0]["properties"]["township"]
    to_edge = placer.edge_distance(base_t, *AVIATION_BASE)
    to_border = to_xy(b).exterior.distance(Point(pt_xy(*AVIATION_BASE)))
    print(
        f"  helipads {len(helipads)}: aviation base {list(AVIATION_BASE)} in {base_t}, {to_edge:.0f} m from "
        f"its township edge, {to_border:.0f} m from the district boundary"
    )
    w = verify_points("depot", depots, placer, margin=200.0)
    print(f"  depots {len(depots)}: min distance to township edge {w:.0f} m")
    verify_relief(depots)

    total = sum(p.stat().st_size for p in out.iterdir() if p.is_file())
    print(f"seeds total size {total:,} bytes")
    check(total < 1_000_000, "seeds under 1 MB")
    print("OK")


if __name__ == "__main__":
    main()
