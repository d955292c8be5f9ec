"""What every `etl` process and worker sets up before work: allocators, pyarrow's pandas probe,
and the compact form in which workers hand their items back."""

from __future__ import annotations

import os
import pickle
import subprocess
import sys
import textwrap
from pathlib import Path

from etl.core.models import MappedItem, Origin, Violation
from etl.core.process_setup import ENVIRONMENT
from etl.run.parallel import PackedItems

SAMPLE = Path(__file__).parent.parent / "samples" / "orders-2026-11-22.csv"


def _python(code: str, **environment: str) -> str:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MALLOC_", "MIMALLOC_"))}
    env.update(environment)
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        env=env,
        check=True,
    )
    return done.stdout.strip()


def test_the_command_line_keeps_freed_memory_unless_told_otherwise() -> None:
    code = """
        import os, etl.cli.main
        print(os.environ["MALLOC_TRIM_THRESHOLD_"], os.environ["MIMALLOC_PURGE_DELAY"])
    """
    assert _python(code) == f"{64 << 20} 1000"
    assert _python(code, MIMALLOC_PURGE_DELAY="0") == f"{64 << 20} 0"


def test_importing_etl_as_a_library_tunes_nothing() -> None:
    code = """
        import os
        before = dict(os.environ)
        import etl
        from etl.core.process_setup import ENVIRONMENT, owns_process
        print(dict(os.environ) == before, any(name in os.environ for name in ENVIRONMENT))
        print(owns_process())
    """
    # The test process imported the command line, which tuned it: the child starts clean.
    env = {k: v for k, v in os.environ.items() if k not in ENVIRONMENT}
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        env=env,
        check=True,
    )
    assert done.stdout.splitlines() == ["True False", "False"]


def test_pyarrow_builds_arrays_without_importing_pandas_which_stays_importable() -> None:
    code = """
        import sys
        from etl.core.process_setup import skip_pandas_probe
        import pyarrow as pa
        skip_pandas_probe()
        pa.array(["a", "b"]); pa.array([1, 2]); pa.scalar("x")
        print("pandas" in sys.modules)
        import pandas
        print(pandas.DataFrame({"a": [1]}).shape)
    """
    assert _python(code).splitlines() == ["False", "(1, 1)"]


def test_a_check_does_not_import_pandas(tmp_path: Path) -> None:
    code = f"""
        import sys
        from etl.cli.main import main
        main(["check", {str(SAMPLE)!r}, "--outbox", {str(tmp_path)!r}, "--quiet"])
        print("pandas" in sys.modules)
    """
    assert _python(code).splitlines()[-1] == "False"


def test_packed_items_come_back_as_they_were() -> None:
    origin = Origin("web", "store-1")
    violation = Violation("f.csv", (5,), "B", "$.status", "NOT_ALLOWED_VALUE", "bad", "X")
    items = [
        MappedItem("A", origin, {}, (2, 3, 4), "f.csv"),
        MappedItem("B", origin, {"id": "B"}, (5,), "f.csv", [violation]),
        MappedItem("", None, {"x": 1}, (6,), "f.csv", [violation]),
        MappedItem("C", Origin("web", "store-2"), {}, (7, 8), "f.csv"),
    ]
    packed = pickle.loads(pickle.dumps(PackedItems.of(items)))
    assert packed.unpacked() == items
    assert PackedItems.of([]).unpacked() == []
