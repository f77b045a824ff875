"""Fuzz the Kraken WebSocket and REST decoders; print how many inputs were tried.

Targets (each one checks what the reliability tests check, at scale):

* ``ws``: :func:`~balance_manager.kraken.protocol.ws_messages.decode_message` raises
  nothing but :class:`~balance_manager.exceptions.ProtocolError`;
* ``session``: a streaming :class:`~balance_manager.kraken.protocol.ws_session.KrakenSession`
  takes any sequence of frames without raising, counts each one, and after
  them a reconnect, snapshot and update give exactly the right balances;
* ``rest``: the REST envelope parser, every result decoder and the balance
  folding raise nothing but ``ProtocolError``, ``TransportError`` or an
  ``ExchangeError``, whatever the body, HTTP status and content type.

Engines: `atheris <https://github.com/google/atheris>`_ (coverage-guided
libFuzzer, seeded with Kraken's example messages and a dictionary of their
keys) when it can be imported, otherwise hypothesis at scale with the
mutation strategies of ``tests/reliability/mutations.py`` (the same ones the
test suite runs a few hundred times). atheris is not a project dependency;
to use it without touching the project's virtualenv::

    pip download atheris --no-deps -d /tmp/atheris && \\
        pip install --no-deps --target /tmp/atheris_site /tmp/atheris/atheris-*.whl
    PYTHONPATH=/tmp/atheris_site .venv/bin/python fuzz/fuzz_decoders.py --engine atheris

Usage::

    .venv/bin/python fuzz/fuzz_decoders.py [--engine auto|atheris|hypothesis]
        [--target ws|session|rest|all] [--runs N] [--seconds S]

It prints one line per target (inputs tried, inputs refused with a documented
error, time) and the total, and exits 1 if any input broke a check (atheris
also saves the input under ``fuzz/artifacts/``).
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

__all__ = ["main"]

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "tests" / "kraken" / "protocol" / "fixtures"
ARTIFACTS = Path(__file__).resolve().parent / "artifacts"
TARGETS = ("ws", "session", "rest")
#: The statuses and content types a REST input is combined with (chosen by its first byte).
STATUSES = (200, 200, 200, 403, 500, 502, 520)
CONTENT_TYPES = ("application/json", "text/html", "text/plain", None)
#: Frames of one ``session`` input are separated by this (atheris engine).
FRAME_SEPARATOR = b"\x00\n"


# -- the checks, shared by both engines -----------------------------------------------------


def _import_checks() -> Any:
    sys.path.insert(0, str(ROOT))
    from tests.reliability import mutations

    return mutations


def _rest_case(data: bytes, methods: list[str]) -> tuple[bytes, str, int, str | None]:
    """Split a raw input into (body, method, status, content type) for the ``rest`` target."""
    selector = data[0] if data else 0
    return (
        data[1:],
        methods[selector % len(methods)],
        STATUSES[(selector // len(methods)) % len(STATUSES)],
        CONTENT_TYPES[(selector // 16) % len(CONTENT_TYPES)],
    )


def one_input(checks: Any, target: str) -> Callable[[bytes], bool]:
    """A function checking one raw input for ``target``; returns whether it was refused."""
    methods = sorted(checks.REST_DECODERS)

    def ws(data: bytes) -> bool:
        checks.check_ws_frame(data)
        try:
            checks.decode_message(data)
        except checks.ProtocolError:
            return True
        return False

    def session(data: bytes) -> bool:
        frames = data.split(FRAME_SEPARATOR)[:8]
        return bool(checks.check_session_frames(frames))

    def rest(data: bytes) -> bool:
        return not checks.check_rest_body(*_rest_case(data, methods))

    return {"ws": ws, "session": session, "rest": rest}[target]


# -- hypothesis engine ------------------------------------------------------------------------


def run_hypothesis(target: str, runs: int) -> tuple[int, int]:
    """Run ``runs`` generated inputs through ``target``; returns (tried, refused)."""
    from hypothesis import HealthCheck, Phase, given, settings, strategies as st

    checks = _import_checks()
    methods = sorted(checks.REST_DECODERS)
    tried = refused = 0
    config = settings(
        max_examples=runs,
        deadline=None,
        database=None,
        phases=[Phase.generate, Phase.shrink],
        suppress_health_check=list(HealthCheck),
    )

    if target == "session":

        @config
        @given(st.lists(checks.WS_FRAMES, min_size=1, max_size=8))
        def run(frames: list[bytes]) -> None:
            nonlocal tried, refused
            tried += 1
            refused += bool(checks.check_session_frames(frames))

    elif target == "ws":

        @config
        @given(checks.WS_FRAMES)
        def run(frame: bytes) -> None:
            nonlocal tried, refused
            tried += 1
            refused += one_input(checks, "ws")(frame)

    else:

        @config
        @given(
            checks.REST_BODIES,
            st.sampled_from(methods),
            st.sampled_from(STATUSES),
            st.sampled_from(CONTENT_TYPES),
        )
        def run(body: bytes, method: str, status: int, content_type: str | None) -> None:
            nonlocal tried, refused
            tried += 1
            refused += not checks.check_rest_body(body, method, status, content_type)

    run()
    return tried, refused


# -- atheris engine ---------------------------------------------------------------------------


def _seeds(target: str) -> Iterator[tuple[str, bytes]]:
    for path in sorted(FIXTURES.glob("*.json")):
        data = path.read_bytes()
        if target == "rest" and path.name.startswith("rest_"):
            yield path.name, b"\x00" + data
        elif target in ("ws", "session") and path.name.startswith("ws_"):
            yield path.name, data


def _dictionary() -> list[str]:
    """libFuzzer dictionary entries: every key and short string of the example messages."""
    words: set[str] = set()

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                words.add(json.dumps(key))
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)
        elif isinstance(node, str) and len(node) <= 24:
            words.add(json.dumps(node))

    for path in FIXTURES.glob("*.json"):
        walk(json.loads(path.read_text(encoding="utf-8")))
    return sorted(words)


def atheris_child(target: str, runs: int, seconds: int, corpus: str) -> None:
    """Run libFuzzer on ``target`` (in this process, which it ends)."""
    import atheris  # type: ignore[import-untyped]  # optional tool, no type stubs

    with atheris.instrument_imports(include=["balance_manager"]):
        checks = _import_checks()
    check = one_input(checks, target)

    def test_one_input(data: bytes) -> None:
        check(data)

    ARTIFACTS.mkdir(exist_ok=True)
    with tempfile.NamedTemporaryFile("w", suffix=".dict", delete=False) as handle:
        for index, word in enumerate(_dictionary()):
            escaped = word.replace("\\", "\\\\").replace('"', '\\"')
            handle.write(f'kw{index}="{escaped}"\n')
    atheris.Setup(
        [
            sys.argv[0],
            corpus,
            f"-runs={runs}",
            f"-max_total_time={seconds}",
            f"-dict={handle.name}",
            f"-artifact_prefix={ARTIFACTS}/{target}-",
            "-print_final_stats=1",
        ],
        test_one_input,
    )
    atheris.Fuzz()


def run_atheris(target: str, runs: int, seconds: int) -> tuple[int, int, bool, str]:
    """Fuzz ``target`` in a child process; returns (tried, -1, ok, tail of its output)."""
    with tempfile.TemporaryDirectory() as corpus:
        for name, data in _seeds(target):
            Path(corpus, name).write_bytes(data)
        result = subprocess.run(  # noqa: S603 - our own script, fixed arguments
            [
                sys.executable,
                __file__,
                "--child",
                target,
                "--runs",
                str(runs),
                "--seconds",
                str(seconds),
                "--corpus",
                corpus,
            ],
            capture_output=True,
            text=True,
            check=False,
            timeout=seconds + 120,
        )
    output = result.stdout + result.stderr
    done = re.search(r"Done (\d+) runs", output)
    executed = re.search(r"stat::number_of_executed_units:\s*(\d+)", output)
    tried = int(done.group(1)) if done else int(executed.group(1)) if executed else 0
    return tried, -1, result.returncode == 0, output[-3000:]


# -- command line -----------------------------------------------------------------------------


def _engine(choice: str) -> str:
    if choice != "auto":
        return choice
    try:
        import atheris  # noqa: F401 - probing only
    except ImportError:
        return "hypothesis"
    return "atheris"


def main(argv: list[str] | None = None) -> int:
    """Run the fuzzers and print the number of inputs tried; 1 when a check failed."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--engine", choices=["auto", "atheris", "hypothesis"], default="auto")
    parser.add_argument("--target", choices=[*TARGETS, "all"], default="all")
    parser.add_argument(
        "--runs",
        type=int,
        default=0,
        help="inputs per target (default: atheris 200000, hypothesis 5000)",
    )
    parser.add_argument("--seconds", type=int, default=120, help="atheris time limit per target")
    parser.add_argument("--child", choices=TARGETS, help=argparse.SUPPRESS)
    parser.add_argument("--corpus", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        atheris_child(args.child, args.runs, args.seconds, args.corpus)
        return 0
    engine = _engine(args.engine)
    runs = args.runs or (200_000 if engine == "atheris" else 5_000)
    targets = TARGETS if args.target == "all" else (args.target,)
    command = " ".join(["python", "fuzz/fuzz_decoders.py", *(argv or sys.argv[1:])])
    print(f"fuzz_decoders: engine={engine}, {runs} inputs per target")
    print(f"{'target':<8} {'inputs tried':>12} {'refused':>9} {'seconds':>8}  result")
    total = 0
    failed = False
    for target in targets:
        started = time.perf_counter()
        if engine == "atheris":
            tried, refused, ok, tail = run_atheris(target, runs, args.seconds)
        else:
            ok, tail = True, ""
            try:
                tried, refused = run_hypothesis(target, runs)
            except Exception as error:  # a broken check: report it, go on with the others
                ok, tail = False, f"{type(error).__name__}: {error}"
                tried, refused = runs, -1
        elapsed = time.perf_counter() - started
        total += tried
        failed = failed or not ok
        shown = "-" if refused < 0 else str(refused)
        print(f"{target:<8} {tried:>12} {shown:>9} {elapsed:>8.1f}  {'ok' if ok else 'FAILED'}")
        if not ok:
            print(tail, file=sys.stderr)
    print(f"total inputs tried: {total}")
    print(f"command: {command}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
