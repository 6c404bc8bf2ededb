"""The live event feed: `/api/v1/live` (websocket), one hub per process (see docs/asyncapi.yaml)."""
