"""Headless Chromium renders the asset graph page and saves docs/asset-graph.png."""

from __future__ import annotations

import os
import shutil
from collections import Counter
from pathlib import Path
from urllib.parse import quote

import pytest

from roster_pipeline_tests.defs_tests.ui_tests.chromium import HEIGHT, WIDTH, png_rgb_rows, render
from roster_pipeline_tests.defs_tests.ui_tests.conftest import REPO_ROOT, DagsterUI

pytestmark = pytest.mark.e2e  # a real dagster webserver and headless Chromium

SCREENSHOT = REPO_ROOT / "docs" / "asset-graph.png"
# The whole graph is too tall to read at this size; the users lineage shows every layer: fetch, roster, derived.
SELECTION = '2+key:"roster/guardian_student_links"'
# The UI's `expanded` URL parameter opens these groups (ids `global@global:<group>`), so assets show inside them.
EXPANDED_GROUPS = "global@global:oneroster,global@global:roster,global@global:derived"
# The graph canvas, right of the navigation and the asset tree.
CANVAS = (600, 150, 1500, 900)


def asset_graph_url(base_url: str) -> str:
    return f"{base_url}/asset-groups~{quote(SELECTION, safe='')}/?expanded={quote(EXPANDED_GROUPS, safe='')}"


def test_asset_graph_page_renders_the_lineage_and_saves_a_screenshot(dagster_ui: DagsterUI, tmp_path: Path) -> None:
    screenshot = tmp_path / "asset-graph.png"
    dom = render(asset_graph_url(dagster_ui.base_url), screenshot, tmp_path / "chromium-profile")

    # Drawn only by the graph: the asset tree beside it starts collapsed, the selection names only the last asset.
    for drawn in ("user_agents", "Asset checks", "Parquet", "DuckDB"):
        assert drawn in dom, f"the asset graph did not render {drawn!r}"

    width, height, rows = png_rgb_rows(screenshot.read_bytes())
    assert (width, height) == (WIDTH, HEIGHT)
    left, top, right, bottom = CANVAS
    canvas = [pixel for row in rows[top:bottom] for pixel in row[left:right]]
    background, _ = Counter(canvas).most_common(1)[0]
    assert min(background) >= 240, f"the canvas is covered (background {background}), e.g. by a dialog"
    ink = sum(1 for pixel in canvas if min(pixel) < 200)
    assert ink >= 3000, f"the canvas is nearly empty ({ink} dark pixels): a spinner or a blank page, not the graph"

    if os.environ.get(
        "UPDATE_SCREENSHOT"
    ):  # the README's picture changes only when asked: a test run leaves the tree clean
        SCREENSHOT.parent.mkdir(exist_ok=True)
        shutil.copyfile(screenshot, SCREENSHOT)
