"""Imports every domain's models so Alembic and the metadata see all tables."""

from app.db import Base
from app.depots.models import Depot, DepotStock, Item, StockLedgerEntry
from app.dispatch.models import Dispatch
from app.events.models import Event
from app.federation.models import AidRequest, InboundMessage, OutboxMessage, SharedIncident, SharedWarning
from app.helipads.models import Helipad
from app.incidents.models import Incident, IncidentCodeCounter
from app.partners.models import Partner
from app.shelters.models import Shelter
from app.teams.models import Team, TeamTrackPoint
from app.townships.models import Township
from app.users.models import User

__all__ = [
    "AidRequest",
    "Base",
    "Depot",
    "DepotStock",
    "Dispatch",
    "Event",
    "Helipad",
    "InboundMessage",
    "Incident",
    "IncidentCodeCounter",
    "Item",
    "OutboxMessage",
    "Partner",
    "SharedIncident",
    "SharedWarning",
    "Shelter",
    "StockLedgerEntry",
    "Team",
    "TeamTrackPoint",
    "Township",
    "User",
]
