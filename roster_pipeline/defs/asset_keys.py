"""Asset keys, in one place so assets, checks and automation name the same things."""

import dagster as dg


def fetch_asset_key(endpoint: str) -> dg.AssetKey:
    return dg.AssetKey(["oneroster", endpoint])


def roster_asset_key(table: str) -> dg.AssetKey:
    return dg.AssetKey(["roster", table])
