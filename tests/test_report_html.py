"""report.html: built from what a run wrote, escaped, self-contained, working in a real Chromium.

The browser tests drive Debian's chromium through chromedriver (Selenium); they skip with the
reason when either is missing here, and run in CI, which installs them (.ci/run).
"""

from __future__ import annotations

import csv
import json
import re
import shutil
import stat
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from etl.deliver.client import ConnectClient
from etl.report.hints import hint_for
from etl.report.html import LATEST_NAME, REPORT_NAME, load_report, run_order, write_html_report
from etl.run.sync import Sync
from etl.sandbox import SandboxServer

from .conftest import SAMPLES, RunCli, base_line, settings_for, write_rows

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
# Without these Chromium tries to reach Google's services and hangs on a machine with no network.
CHROMIUM_FLAGS = (
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-dev-shm-usage",
    "--window-size=1280,1800",
)
HOSTILE_ID = "<script>document.title='pwned'</script>"
HOSTILE_STATUS = '"><img src=x onerror="document.title=\'pwned\'">'
HOSTILE_FILE = "orders-<img src=x onerror=alert(1)>.csv"


def only_run(outbox: Path) -> Path:
    (run_dir,) = (outbox / "runs").iterdir()
    return run_dir


def errors_of(run_dir: Path, name: str) -> list[dict[str, str]]:
    with (run_dir / f"{name}.errors.csv").open(encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


# --- hints -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("code", "field", "value", "message", "hint"),
    [
        (
            "NOT_ALLOWED_VALUE",
            "$.order_lines[0].status",
            "SHIPPING",
            "order_lines[0].status: 'SHIPPING' is not one of AWAITING_SHIPMENT, CLOSED, SHIPPED",
            "status 'SHIPPING' is not a Connect status; use SHIPPED",
        ),
        (
            "NOT_ALLOWED_VALUE",
            "$.status",
            "shipped",
            "status: 'shipped' is not one of CLOSED, SHIPPED",
            "write SHIPPED in capitals: Connect's values are case-sensitive",
        ),
        (
            "NOT_ALLOWED_VALUE",
            "$.fulfillment.type",
            "BY_SELLER",
            "fulfillment.type: 'BY_SELLER' is not one of FULFILLED_BY_SELLER, FULFILLED_BY_PARTNER",
            "fulfillment type 'BY_SELLER' is not a Connect fulfillment type; use "
            "FULFILLED_BY_SELLER",
        ),
        (
            "NOT_A_NUMBER",
            "$.order_lines[0].price.amount",
            "19,99",
            "...",
            "'19,99' uses a decimal comma: write 19.99, or set decimal_comma = true in [read] "
            "(or in the file's mapping)",
        ),
        ("NEGATIVE_AMOUNT", "$.x", "-1", "...", "Amounts must be zero or positive."),
        ("SOMETHING_NEW", "$.x", "", "...", ""),
    ],
)
def test_hints_say_what_to_change(
    code: str, field: str, value: str, message: str, hint: str
) -> None:
    assert hint_for(code, field, value, message) == hint


# --- the page, without a browser ---------------------------------------------------------------


def test_check_writes_a_private_self_contained_report_and_latest(
    tmp_path: Path, run_cli: RunCli
) -> None:
    outbox = tmp_path / "outbox"
    code, out, err = run_cli(
        "check",
        SAMPLES / "orders-2026-11-22.csv",
        SAMPLES / "orders-with-mistakes.csv",
        "--outbox",
        outbox,
    )
    assert (code, err) == (1, "")
    run_dir = only_run(outbox)
    report = run_dir / REPORT_NAME
    assert f"report: {report}\n" in out
    page = report.read_text(encoding="utf-8")
    for path in (report, outbox / LATEST_NAME):
        assert stat.S_IMODE(path.stat().st_mode) & 0o077 == 0, f"{path.name} readable by others"
    # Nothing is loaded from anywhere: no src, no external link, and a policy that allows none.
    assert " src=" not in page
    assert not re.search(r"href=\"(?!orders-)", page)
    assert "default-src &#39;none&#39;" in page and "unsafe-inline" not in page
    assert page.count("<script") == 1
    assert page.count('<tr class="problem"') == 13
    assert "status &#39;SHIPPING&#39; is not a Connect status; use SHIPPED" in page
    latest = (outbox / LATEST_NAME).read_text(encoding="utf-8")
    assert f'href="runs/{run_dir.name}/orders-with-mistakes.csv.errors.csv"' in latest
    assert f'href="runs/{run_dir.name}/report.html"' in latest


def test_latest_follows_the_newest_run_only(tmp_path: Path, run_cli: RunCli) -> None:
    outbox = tmp_path / "outbox"
    run_cli("check", SAMPLES / "orders-with-mistakes.csv", "--outbox", outbox)
    run_cli("check", SAMPLES / "orders-2026-11-22.csv", "--outbox", outbox)
    first, second = sorted((outbox / "runs").iterdir(), key=run_order)
    latest = outbox / LATEST_NAME
    assert f"runs/{second.name}/" in latest.read_text(encoding="utf-8")
    write_html_report(first)  # an old run's report written again does not take latest back
    assert f"runs/{second.name}/" in latest.read_text(encoding="utf-8")
    assert f"runs/{first.name}/" not in latest.read_text(encoding="utf-8")


def test_hostile_order_data_is_escaped_in_the_html(tmp_path: Path, run_cli: RunCli) -> None:
    export = write_rows(
        tmp_path / HOSTILE_FILE,
        [base_line(HOSTILE_ID, "L1", status=HOSTILE_STATUS, order_lines__product__title='a"b')],
    )
    outbox = tmp_path / "outbox"
    code, _, _ = run_cli("check", export, "--outbox", outbox)
    assert code == 1
    page = (only_run(outbox) / REPORT_NAME).read_text(encoding="utf-8")
    assert page.count("<script") == 1  # ours, at the end
    assert "<img" not in page
    assert "&lt;script&gt;document.title=&#39;pwned&#39;&lt;/script&gt;" in page
    assert "&#34;&gt;&lt;img src=x onerror=&#34;document.title=&#39;pwned&#39;&#34;&gt;" in page


def test_orders_not_delivered_are_listed_with_what_to_do(
    sandbox: SandboxServer, tmp_path: Path
) -> None:
    settings = settings_for(sandbox, tmp_path, max_attempts=2)
    shutil.copy(SAMPLES / "orders-2026-11-22.csv", settings.inbox / "orders-a.csv")
    sandbox.set_faults({"faults": [{"status": 503}], "path_prefix": "/api/"})
    sync = Sync(settings, lambda: ConnectClient(settings, sleep=lambda s: None))
    sync()
    view = load_report(sync.run_dir)
    assert dict(view.totals)["FAILED"] == 24
    (file,) = view.files
    assert file.problem_count == 24
    assert {p.code for p in file.problems} == {"NOT_SENT"}
    assert file.codes[0][2].startswith("Connect could not be reached")


def test_long_problem_lists_are_cut_with_a_pointer_to_the_csv(
    tmp_path: Path, run_cli: RunCli
) -> None:
    rows = [base_line(f"{n:04d}", f"L{n}", status="SHIPPING") for n in range(30)]
    export = write_rows(tmp_path / "orders-many.csv", rows)
    run_cli("check", export, "--outbox", tmp_path / "outbox")
    view = load_report(only_run(tmp_path / "outbox"), limit=10)
    (file,) = view.files
    assert (file.problem_count, len(file.problems)) == (30, 10)
    assert view.codes == [("NOT_ALLOWED_VALUE", 30)]


def test_report_command_prints_a_past_run(tmp_path: Path, run_cli: RunCli) -> None:
    outbox = tmp_path / "outbox"
    run_cli("check", SAMPLES / "orders-with-mistakes.csv", "--outbox", outbox)
    run_dir = only_run(outbox)
    (run_dir / REPORT_NAME).unlink()
    code, out, err = run_cli("report", run_dir.name[:10], "--outbox", outbox)
    assert (code, err) == (0, "")
    assert out.splitlines()[1:] == [
        "orders-with-mistakes.csv: 20 orders from 34 rows: 12 invalid, 8 valid; "
        "13 problem(s); 2 request(s)",
        f"run {run_dir.name}: exit 1; reports in {run_dir}",
        f"report: {run_dir / REPORT_NAME}",
    ]
    assert (run_dir / REPORT_NAME).is_file()  # written again when missing
    code, out, _ = run_cli("report", "latest", "--json", "--outbox", outbox)
    assert json.loads(out)["run_id"] == run_dir.name
    code, _, err = run_cli("report", "1999", "--outbox", outbox)
    assert code == 2
    assert err == f"etl: no run '1999' in {outbox / 'runs'} (`etl status` lists the recent ones)\n"


# --- in a real browser -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """Headless Chromium, the one Debian ships, with a fresh profile and no network chatter."""
    if not (CHROMIUM.exists() and CHROMEDRIVER.exists()):
        pytest.skip(
            "chromium/chromedriver not installed (apt-get install chromium chromium-driver); "
            "CI installs them"
        )
    webdriver = pytest.importorskip("selenium.webdriver", reason="selenium not installed")
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in CHROMIUM_FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}")
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
    driver.set_page_load_timeout(30)
    try:
        yield driver
    finally:
        driver.quit()


Attach = Callable[[str, Path], None]


@pytest.fixture
def attach(
    record_property: Callable[[str, object], None], capsys: pytest.CaptureFixture[str]
) -> Attach:
    """Name a file in the test output (and in the JUnit XML), even under -q."""

    def attach(name: str, path: Path) -> None:
        record_property(name, str(path))
        with capsys.disabled():
            print(f"\n{name}: {path}")

    return attach


def visible_rows(driver: Any) -> list[Any]:
    return [r for r in driver.find_elements("css selector", "tr.problem") if r.is_displayed()]


def test_the_samples_report_in_chromium(
    browser: Any, tmp_path: Path, run_cli: RunCli, attach: Attach
) -> None:
    from selenium.webdriver.support.ui import Select

    inbox, outbox = tmp_path / "inbox", tmp_path / "outbox"
    inbox.mkdir()
    for sample in SAMPLES.glob("orders-*"):
        shutil.copy(sample, inbox / sample.name)
    code, _, _ = run_cli(
        "run", "--sandbox", "--inbox", inbox, "--outbox", outbox,
        "--config", SAMPLES / "etl.toml", "--settle", "0",
    )  # fmt: skip
    assert code == 1
    run_dir = only_run(outbox)
    summary = json.loads((run_dir / "summary.json").read_text(encoding="utf-8"))
    mistakes = errors_of(run_dir, "orders-with-mistakes.csv")

    browser.get((run_dir / REPORT_NAME).as_uri())
    screenshot = tmp_path / "report.png"
    browser.save_screenshot(str(screenshot))
    attach("screenshot", screenshot)

    totals = {
        e.get_attribute("data-outcome"): int(e.find_element("tag name", "dd").text.replace(",", ""))
        for e in browser.find_elements("css selector", "#totals .total")
    }
    expected = summary["totals"]["outcomes"]
    assert totals == {o: expected.get(o, 0) for o in totals}
    assert totals["ACCEPTED"] > 0 and totals["INVALID"] == 12 and totals["UNCHANGED"] > 0
    assert set(expected) <= set(totals)
    counters = {
        e.get_attribute("data-counter"): e.find_element("tag name", "dd").text
        for e in browser.find_elements("css selector", "#counters > div")
    }
    assert counters["requests"] == str(summary["totals"]["requests"])
    assert counters["retries"] == str(summary["totals"]["retries"])
    bars = browser.find_elements("css selector", "#chart rect")
    assert {b.get_attribute("data-outcome") for b in bars} == set(expected)

    rows = visible_rows(browser)
    assert len(rows) == len(mistakes) == 13
    first = rows[0].find_elements("tag name", "td")
    assert [c.text.split("\n")[0] for c in first] == [
        "2",
        "MX-SH-00000000",
        "$.order_lines[0].status",
        "order_lines.status",
        "NOT_ALLOWED_VALUE",
        mistakes[0]["message"],
        "SHIPPING",
    ]
    assert "status 'SHIPPING' is not a Connect status; use SHIPPED" in first[5].text

    Select(browser.find_element("id", "code-filter")).select_by_value("DUPLICATE_LINE_ID")
    assert [r.find_element("css selector", "td.order").text for r in visible_rows(browser)] == [
        "MX-MA-00000001",
        "MX-MA-00000019",
    ]
    assert browser.find_element("id", "shown-count").text == "2"
    Select(browser.find_element("id", "code-filter")).select_by_value("")
    search = browser.find_element("id", "order-search")
    search.send_keys("sh-00000002")  # any case, any part of the id
    assert {r.get_attribute("data-code") for r in visible_rows(browser)} == {
        "NEGATIVE_AMOUNT",
        "REQUIRED_FIELD_MISSING",
    }
    filtered = tmp_path / "report-filtered.png"
    browser.save_screenshot(str(filtered))
    attach("screenshot", filtered)
    search.clear()
    search.send_keys("nothing-like-this")
    assert visible_rows(browser) == []
    assert browser.find_element("id", "shown-count").text == "0"
    problems = [e for e in browser.get_log("browser") if e["level"] in ("SEVERE", "WARNING")]
    assert problems == []  # no blocked script or style, nothing fetched

    browser.get((outbox / LATEST_NAME).as_uri())
    assert browser.find_element("css selector", "h1 .run-id").text == run_dir.name


def test_hostile_order_data_shows_as_text_in_chromium(
    browser: Any, tmp_path: Path, run_cli: RunCli, attach: Attach
) -> None:
    export = write_rows(
        tmp_path / HOSTILE_FILE,
        [
            base_line(HOSTILE_ID, "L1", status=HOSTILE_STATUS),
            base_line("ok-1", "L2", order_lines__quantity="2.5"),
        ],
    )
    outbox = tmp_path / "outbox"
    run_cli("check", export, "--outbox", outbox)
    browser.get((only_run(outbox) / REPORT_NAME).as_uri())
    screenshot = tmp_path / "report-hostile.png"
    browser.save_screenshot(str(screenshot))
    attach("screenshot", screenshot)
    assert browser.title.startswith("etl check ")
    assert (
        browser.execute_script("return document.querySelectorAll('main img, td img').length") == 0
    )
    hostile = [
        r for r in visible_rows(browser) if r.get_attribute("data-code") == "NOT_ALLOWED_VALUE"
    ]
    (row,) = hostile
    assert row.find_element("css selector", "td.order").text == HOSTILE_ID
    assert row.find_element("css selector", "td.value").text == HOSTILE_STATUS
    assert browser.find_element("css selector", "article.file h3").text == HOSTILE_FILE
    browser.find_element("id", "order-search").send_keys("<script>")
    assert [r.get_attribute("data-order") for r in visible_rows(browser)] == [HOSTILE_ID]
    assert browser.title.startswith("etl check ")
