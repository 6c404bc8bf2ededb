"""What each partner agreement shares. A partner's roles (partner.roles) pick the agreements; a partner
with several roles gets the union. Only teams marked shareable are ever shown or lent.

- emergency_linkage (平蓟三兴 应急联动: Pinggu, Sanhe, Xinglong): every shareable team, all depot stock,
  every helipad.
- forest_fire_defence (平蓟三兴玉遵 森林防火联防, also Yutian, Zunhua): shareable teams that fight forest
  fires or fly (forest-fire capability, forest-fire or aviation kind), forest-fire equipment only
  (extinguishing bombs, wind extinguishers, generators, pumps, chainsaws, water bladders, drones), and the
  helipads (aviation is how forest fires in the mountains are reached).
Editable per deployment: this table is the one place the agreements live.
"""

from dataclasses import dataclass

EMERGENCY_LINKAGE = "emergency_linkage"
FOREST_FIRE_DEFENCE = "forest_fire_defence"


@dataclass(frozen=True, slots=True)
class Agreement:
    # None = everything of that sort.
    team_capabilities: frozenset[str] | None
    team_kinds: frozenset[str] | None
    item_codes: frozenset[str] | None
    helipads: bool


AGREEMENTS: dict[str, Agreement] = {
    EMERGENCY_LINKAGE: Agreement(team_capabilities=None, team_kinds=None, item_codes=None, helipads=True),
    FOREST_FIRE_DEFENCE: Agreement(
        team_capabilities=frozenset({"forest_fire"}),
        team_kinds=frozenset({"forest_fire", "aviation"}),
        item_codes=frozenset({"201", "202", "203", "204", "207", "210", "211"}),
        helipads=True,
    ),
}


def agreements(roles: list[str]) -> list[Agreement]:
    return [AGREEMENTS[r] for r in roles if r in AGREEMENTS]


def team_shared(roles: list[str], *, shareable: bool, kind: str, capabilities: list[str]) -> bool:
    if not shareable:
        return False
    for agreement in agreements(roles):
        if agreement.team_capabilities is None and agreement.team_kinds is None:
            return True
        if agreement.team_kinds is not None and kind in agreement.team_kinds:
            return True
        if agreement.team_capabilities is not None and agreement.team_capabilities.intersection(capabilities):
            return True
    return False


def item_shared(roles: list[str], item_code: str) -> bool:
    return any(a.item_codes is None or item_code in a.item_codes for a in agreements(roles))


def helipads_shared(roles: list[str]) -> bool:
    return any(a.helipads for a in agreements(roles))
