"""The DuckLake extensions: installed from their wheels, signature-checked once per process and again when a file
changes, so that opening many connections is cheap and a tampered file is never loaded unchecked."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

# Run in a fresh interpreter with HOME in a temporary folder, so the extensions install into a folder of the test's
# own (DuckDB's default extension directory is under HOME) and no extension is loaded in the test process yet.
SCRIPT = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    import duckdb
    from roster_pipeline.store.lakehouse import load_extensions, open_duckdb

    def load():
        with open_duckdb() as con:
            load_extensions(con)
            query = "SELECT install_path FROM duckdb_extensions() WHERE extension_name = 'ducklake'"
            return con.execute(query).fetchone()[0]

    path = Path(load())
    start = time.perf_counter()
    for _ in range(5):
        load()
    print("installed", path)
    print("five_more_loads_s", time.perf_counter() - start)
    if sys.argv[1] == "tamper":
        data = bytearray(path.read_bytes())
        data[len(data) // 2] ^= 0xFF  # inside the library, away from the signature footer
        fresh = path.with_name(path.name + ".new")  # a new file renamed over it, as an install does: the
        fresh.write_bytes(bytes(data))              # loaded library keeps its own (old) inode
        fresh.replace(path)
        try:
            load()
        except duckdb.Error as error:
            print("refused", type(error).__name__)
        else:
            print("loaded a tampered file")
    """
)


def _run(tmp_path: Path, mode: str) -> dict[str, str]:
    env = {**os.environ, "HOME": str(tmp_path)}
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT, mode], env=env, capture_output=True, text=True, timeout=120, check=True
    )
    # Only the script's own lines: anything else on stdout (DuckDB draws a progress bar when an install is slow, as
    # on a loaded machine) is not a finding.
    keys = ("installed", "five_more_loads_s", "refused", "loaded")
    found = dict(line.split(" ", 1) for line in done.stdout.splitlines() if line.split(" ", 1)[0] in keys)
    assert found, done.stdout
    return found


def test_the_extensions_install_from_the_wheels_into_duckdbs_own_folder(tmp_path: Path) -> None:
    out = _run(tmp_path, "plain")
    assert Path(out["installed"]).is_relative_to(tmp_path / ".duckdb" / "extensions")


def test_a_file_changed_after_its_check_is_checked_again_and_refused(tmp_path: Path) -> None:
    out = _run(tmp_path, "tamper")
    assert out.get("refused"), out
    assert "loaded" not in out


def test_connections_that_skip_the_check_never_load_an_extension_by_themselves() -> None:
    from roster_pipeline.store.lakehouse import open_duckdb

    with open_duckdb() as con:
        settings = dict(
            con.execute(
                "SELECT name, value FROM duckdb_settings() "
                "WHERE name IN ('autoload_known_extensions', 'autoinstall_known_extensions')"
            ).fetchall()
        )
    assert settings == {"autoload_known_extensions": "false", "autoinstall_known_extensions": "false"}
