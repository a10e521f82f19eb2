"""The Airflow UI in a real headless Chromium renders the DAG list and the grid of the caught-up runs.

Screenshots are saved under ``test-artifacts/`` (git-ignored) for people to look at.
"""

from __future__ import annotations

import struct
import time
from pathlib import Path

import pytest
from support.airflow_stack import progress
from support.browser import Chromium, chromium_binary
from support.e2e_env import DAG_ID, REPO, Airflow3, CaughtUp

ARTIFACTS = REPO / "test-artifacts"
DAG_IDS = ("obs_oo_agg", "obs_age_refresh", "obs_topo_iac", "obs_topo_ansible", "obs_backfill")


def png_size(path: Path) -> tuple[int, int]:
    """Width and height from the PNG header (fails on anything that is not a PNG)."""
    head = path.read_bytes()[:24]
    assert head[:8] == b"\x89PNG\r\n\x1a\n", f"{path} is not a PNG"
    width, height = struct.unpack(">II", head[16:24])
    return width, height


def assert_real_screenshot(path: Path) -> None:
    width, height = png_size(path)
    assert (width, height) == (1600, 1000), (width, height)
    # A blank page compresses to a few kB; a rendered Airflow page is tens of kB.
    assert path.stat().st_size > 20_000, f"{path} is suspiciously small ({path.stat().st_size} bytes)"


@pytest.fixture(scope="module")
def browser(airflow3: Airflow3, tmp_path_factory: pytest.TempPathFactory) -> Chromium:
    root = tmp_path_factory.mktemp("chromium")
    with Chromium(chromium_binary(), root / "profile") as chromium:
        # The api-server accepts the JWT from the ``_token`` cookie, as after a UI login.
        chromium.set_cookie("_token", airflow3.rest.login(), airflow3.stack.base_url)
        yield chromium


def test_ui_dag_list_shows_the_provider_dags(airflow3: Airflow3, caught_up: CaughtUp, browser: Chromium) -> None:
    browser.navigate(f"{airflow3.stack.base_url}/dags")
    browser.wait_until("every DAG id and a latest-run state",
                       "document.body && " + " && ".join(f"document.body.innerText.includes('{d}')" for d in DAG_IDS)
                       + " && document.querySelectorAll('[data-testid=state-badge][aria-label=success]').length > 0",
                       timeout=90)
    shot = browser.screenshot(ARTIFACTS / "airflow_dag_list.png")
    dom = browser.dom()
    assert_real_screenshot(shot)
    for dag_id in DAG_IDS:
        assert dag_id in dom
    assert 'data-testid="state-badge" aria-label="success"' in dom  # obs_oo_agg's latest run
    progress(f"saved {shot}")


def test_ui_grid_shows_every_caught_up_run(airflow3: Airflow3, caught_up: CaughtUp, browser: Chromium) -> None:
    # The grid shows the latest 10 runs unless told otherwise (a per-DAG setting in localStorage).
    browser.navigate(f"{airflow3.stack.base_url}/dags")
    browser.wait_until("the UI to load", "document.readyState === 'complete'", timeout=60)
    browser.evaluate(f"localStorage.setItem('dag_runs_limit-{DAG_ID}', '25')")
    browser.navigate(f"{airflow3.stack.base_url}/dags/{DAG_ID}")
    cells = [f"grid-{r['dag_run_id']}-aggregate" for r in caught_up.runs]
    browser.wait_until(f"{len(cells)} aggregate cells in the grid",
                       " && ".join(f"!!document.getElementById('{c}')" for c in cells), timeout=90)
    # Give the grid the whole width (the details panel would hide the later runs' columns). The
    # button is clicked until the last run's cell is on screen: a data refresh may re-render the page.
    browser.wait_until("the last run's cell on screen", f"""(() => {{
        const button = document.querySelector('[aria-label="Collapse Details Panel"]');
        if (button) button.click();
        const r = document.getElementById('{cells[-1]}').getBoundingClientRect();
        return r.right > 0 && r.right <= window.innerWidth; }})()""", timeout=60)
    time.sleep(1)  # let the panel animation settle before the picture
    shot = browser.screenshot(ARTIFACTS / "airflow_obs_oo_agg_grid.png")
    dom = browser.dom()
    assert_real_screenshot(shot)
    for cell in cells:
        assert f'data-testid="{cell}"' in dom
    assert f"grid-{caught_up.runs[0]['dag_run_id']}-wait_until_eligible" in dom

    # The runs list names each run with its state.
    browser.navigate(f"{airflow3.stack.base_url}/dags/{DAG_ID}/runs")
    browser.wait_until("the runs table", " && ".join(
        f"document.body.innerText.includes('{r['dag_run_id']}')" for r in caught_up.runs), timeout=90)
    runs_shot = browser.screenshot(ARTIFACTS / "airflow_obs_oo_agg_runs.png")
    assert_real_screenshot(runs_shot)
    text = browser.evaluate("document.body.innerText")
    assert text.count("Success") >= len(caught_up.runs), text[:2000]
    progress(f"saved {shot} and {runs_shot}")
