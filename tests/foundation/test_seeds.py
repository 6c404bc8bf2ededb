"""The Jizhou seeds: counts from the district plan, containment, exact coverage, idempotency."""

import json
import shutil
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from tests.conftest import ROOT, CommittedDb, run_cli

SEEDS = ROOT / "seeds"


async def scalar(session: AsyncSession, sql: str, **params: object) -> object:
    return (await session.execute(text(sql), params)).scalar_one()


async def test_28_townships_with_official_codes(session: AsyncSession) -> None:
    csv_codes = (
        [
            line.split(",")[0]
            for line in (ROOT.parent / "shared" / "data" / "jizhou-townships.csv").read_text().splitlines()[1:]
        ]
        if (ROOT.parent / "shared" / "data" / "jizhou-townships.csv").exists()
        else None
    )
    codes = (await session.execute(text("SELECT code FROM township ORDER BY code"))).scalars().all()
    assert len(codes) == 28
    if csv_codes is not None:
        assert sorted(csv_codes) == list(codes)
    # Every seat lies in its own township.
    assert await scalar(session, "SELECT count(*) FROM township WHERE NOT ST_Covers(boundary, seat)") == 0


async def test_township_polygons_cover_the_district_exactly(session: AsyncSession) -> None:
    district = json.loads((SEEDS / "district.geojson").read_text())["features"][0]["geometry"]
    params = {"district": json.dumps(district)}
    district_area = await scalar(session, "SELECT ST_Area(ST_GeomFromGeoJSON(:district)::geography)", **params)
    gaps_and_spill = await scalar(
        session,
        """
        SELECT ST_Area(ST_SymDifference(ST_Union(boundary::geometry), ST_GeomFromGeoJSON(:district))::geography)
        FROM township""",
        **params,
    )
    overlaps = await scalar(
        session,
        """
        SELECT coalesce(sum(ST_Area(ST_Intersection(a.boundary::geometry, b.boundary::geometry)::geography)), 0)
        FROM township a JOIN township b ON a.code < b.code AND ST_Intersects(a.boundary, b.boundary)""",
    )
    assert float(district_area) > 1.5e9  # Jizhou is about 1,590 km²
    assert float(gaps_and_spill) < 1.0, f"{gaps_and_spill} m² of gap or spill"
    assert float(overlaps) < 1.0, f"{overlaps} m² of overlap"


async def test_94_emergency_and_1_fixed_shelter_each_in_its_township(session: AsyncSession) -> None:
    rows = dict((await session.execute(text("SELECT level, count(*) FROM shelter GROUP BY level"))).all())
    assert rows == {"emergency": 94, "fixed": 1}
    misplaced = await scalar(
        session,
        """
        SELECT count(*) FROM shelter s JOIN township t ON t.code = s.township_code
        WHERE NOT ST_Covers(t.boundary, s.location)""",
    )
    assert misplaced == 0
    assert await scalar(session, "SELECT count(*) FROM shelter WHERE township_code IS NULL") == 0
    fixed = (await session.execute(text("SELECT township_code, capacity FROM shelter WHERE level = 'fixed'"))).one()
    assert fixed.township_code == "120119001" and fixed.capacity >= 10_000
    assert await scalar(session, "SELECT min(capacity) FROM shelter WHERE level = 'emergency'") >= 100


async def test_teams_follow_the_plan(session: AsyncSession) -> None:
    by_kind = dict((await session.execute(text("SELECT kind, count(*) FROM team GROUP BY kind"))).all())
    assert by_kind["township_fire"] == 9
    assert await scalar(session, "SELECT sum(headcount) FROM team WHERE kind = 'fire_rescue'") == 245
    assert await scalar(session, "SELECT max(headcount) FROM team WHERE kind = 'forest_fire'") == 100
    for kind in ("hazmat", "flood", "geological", "medical", "social", "militia"):
        assert by_kind.get(kind, 0) >= 1, kind
    stations = (
        (await session.execute(text("SELECT township_code FROM team WHERE kind = 'fire_rescue'"))).scalars().all()
    )
    assert {"120119001", "120119104", "120119103"} <= set(stations)  # city, Xiaying, Mashenqiao
    assert (
        await scalar(
            session,
            """SELECT count(*) FROM team m JOIN township t ON t.code = m.township_code
                                    WHERE NOT ST_Covers(t.boundary, m.base)""",
        )
        == 0
    )


async def test_depots_cover_30000_people_and_the_forest_fire_bombs(session: AsyncSession) -> None:
    coverage = dict(
        (
            await session.execute(
                text("""
        SELECT i.code, sum(s.quantity) * i.persons_per_unit FROM depot_stock s JOIN item i ON i.code = s.item_code
        WHERE i.category = 'basic_living' AND i.persons_per_unit IS NOT NULL GROUP BY i.code, i.persons_per_unit
    """)
            )
        ).all()
    )
    assert {"101", "102", "104", "105"} <= set(coverage)
    short = {code: float(people) for code, people in coverage.items() if people < 30_000}
    assert not short, f"basic-living items covering fewer than 30,000 people: {short}"
    bombs = await scalar(
        session,
        """SELECT s.quantity FROM depot_stock s JOIN depot d ON d.id = s.depot_id
                                     WHERE d.level = 'district' AND s.item_code = '201' ORDER BY 1 DESC LIMIT 1""",
    )
    assert bombs >= 10_000
    # The level equals the ledger, for every line.
    assert (
        await scalar(
            session,
            """
        SELECT count(*) FROM depot_stock s
        LEFT JOIN (SELECT depot_id, item_code, sum(delta) AS total FROM stock_ledger GROUP BY 1, 2) l
          USING (depot_id, item_code)
        WHERE s.quantity IS DISTINCT FROM l.total""",
        )
        == 0
    )
    assert await scalar(session, "SELECT count(*) FROM depot WHERE level = 'township'") == 28


async def test_helipads_and_partners(session: AsyncSession) -> None:
    kinds = dict((await session.execute(text("SELECT kind, count(*) FROM helipad GROUP BY kind"))).all())
    assert kinds == {"base": 1, "temporary": 2}
    near_yuqiao = await scalar(
        session,
        """SELECT ST_Distance(location, 'SRID=4326;POINT(117.50 40.02)'::geography)
                                           FROM helipad WHERE kind = 'base'""",
    )
    assert near_yuqiao < 3_000
    # The temporary pads are in the northern mountains.
    assert await scalar(session, "SELECT min(ST_Y(location::geometry)) FROM helipad WHERE kind = 'temporary'") > 40.1
    partners = dict((await session.execute(text("SELECT id, adcode FROM partner"))).all())
    assert partners == {
        "pinggu": "110117",
        "sanhe": "131082",
        "xinglong": "130822",
        "yutian": "130229",
        "zunhua": "130281",
    }


def test_reseeding_changes_nothing_and_a_changed_file_updates_only_its_rows(
    committed_db: CommittedDb, tmp_path: Path
) -> None:
    again = run_cli(committed_db.url, "-m", "app", "seed")
    assert again.returncode == 0, again.stderr
    assert json.loads(again.stdout)["changed"] == 0

    changed = tmp_path / "seeds"
    shutil.copytree(SEEDS, changed)
    teams = json.loads((changed / "teams.geojson").read_text())
    teams["features"][0]["properties"]["headcount"] += 7
    (changed / "teams.geojson").write_text(json.dumps(teams, ensure_ascii=False))
    depots = json.loads((changed / "depots.geojson").read_text())
    depots["features"][0]["properties"]["stock"][0]["quantity"] += 5
    (changed / "depots.geojson").write_text(json.dumps(depots, ensure_ascii=False))

    result = run_cli(committed_db.url, "-m", "app", "seed", "--dir", str(changed))
    assert result.returncode == 0, result.stderr
    counts = json.loads(result.stdout)["counts"]
    assert counts["teams"] == {"inserted": 0, "updated": 1, "unchanged": len(teams["features"]) - 1}
    assert counts["stock"]["updated"] == 1 and counts["stock"]["inserted"] == 0
    assert json.loads(result.stdout)["changed"] == 2


def test_import_loads_a_users_csv_and_rejects_points_outside_the_district(
    committed_db: CommittedDb, tmp_path: Path
) -> None:
    good = tmp_path / "teams.csv"
    good.write_text(
        "code,name,kind,capabilities,headcount,lon,lat\n"
        "T-IMPORT-1,测试救援队,social,search_rescue;relief,12,117.41,40.05\n",
        encoding="utf-8",
    )
    done = run_cli(committed_db.url, "-m", "app", "import", "teams", str(good))
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["counts"]["teams"]["inserted"] == 1

    outside = tmp_path / "outside.csv"
    outside.write_text(
        "code,name,kind,capabilities,headcount,lon,lat\nT-IMPORT-2,外地队,social,relief,5,116.40,39.90\n",
        encoding="utf-8",
    )
    refused = run_cli(committed_db.url, "-m", "app", "import", "teams", str(outside))
    assert refused.returncode == 2
    assert "outside the district" in refused.stderr
