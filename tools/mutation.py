"""A small mutation tester: change one thing in a module, run its tests, see whether they notice.

    python tools/mutation.py core/booking/availability.py \\
        --tests tests/booking/test_availability_pinned.py tests/booking/test_availability.py \\
        --sample 200 --seed 1 [--json out.json] [--timeout 120] [--list]

Every mutant is found on the module's syntax tree and written back as a splice of that one node's
source, so the diff of a survivor is the one change and nothing else. Operators: comparison flips
(< <= > >= == != in is), arithmetic (+ -, * //), ``and``/``or``, integer constants +1 / -1 / 0,
``True``/``False``, a statement replaced by ``pass``, a call's keyword argument removed, a
condition negated, ``return x`` made ``return None``. Docstrings, log calls and annotations
(strings under ``from __future__ import annotations``) are not mutated: nothing can tell.

The module is mutated IN PLACE (the package is installed in editable mode, so the tests import
it from the work tree) and restored in a ``finally``; check ``git diff`` if the run was killed
hard. Each mutant runs ``pytest -x -q -p no:cacheprovider`` on the tests given, with bytecode
writing off and a fresh mtime on the module, so that no stale ``.pyc`` of another mutant (or of
the original, whose size a flip keeps) can stand in for it. A mutant that makes pytest fail is
killed; one that runs past ``--timeout`` counts as killed too (it hangs: reported as
``timeout``); one whose source does not compile is dropped before sampling.
"""

from __future__ import annotations

import argparse
import ast
import copy
import difflib
import json
import os
import random
import signal
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LOG_NAMES = {"log", "logger", "logging"}
COMPARE_FLIPS: dict[type, tuple[type, ...]] = {
    ast.Lt: (ast.LtE, ast.Gt),
    ast.LtE: (ast.Lt, ast.Gt),
    ast.Gt: (ast.GtE, ast.Lt),
    ast.GtE: (ast.Gt, ast.Lt),
    ast.Eq: (ast.NotEq,),
    ast.NotEq: (ast.Eq,),
    ast.In: (ast.NotIn,),
    ast.NotIn: (ast.In,),
    ast.Is: (ast.IsNot,),
    ast.IsNot: (ast.Is,),
}
BINOP_FLIPS: dict[type, tuple[type, ...]] = {
    ast.Add: (ast.Sub,),
    ast.Sub: (ast.Add,),
    ast.Mult: (ast.FloorDiv,),
    ast.FloorDiv: (ast.Mult,),
    ast.Div: (ast.Mult,),
    ast.Mod: (ast.FloorDiv,),
}
SYMBOLS = {
    ast.Lt: "<",
    ast.LtE: "<=",
    ast.Gt: ">",
    ast.GtE: ">=",
    ast.Eq: "==",
    ast.NotEq: "!=",
    ast.In: "in",
    ast.NotIn: "not in",
    ast.Is: "is",
    ast.IsNot: "is not",
    ast.Add: "+",
    ast.Sub: "-",
    ast.Mult: "*",
    ast.FloorDiv: "//",
    ast.Div: "/",
    ast.Mod: "%",
    ast.And: "and",
    ast.Or: "or",
}

# Mutants no test can kill because the behaviour does not change, keyed by the module, the
# stripped source line and the mutant's description, each with why. A mutant listed here is
# still run; if it is killed after all, the run says the entry is stale.
_AVAILABILITY = "core/booking/availability.py"
_LIFECYCLE = "core/booking/lifecycle.py"
# Not equivalent: not reachable in this run. Counted apart in the README's figures.
_OLD_SQLITE = "the fallback for SQLite before 3.38: unreachable on this machine's 3.40"
# _load_service and _load_provider are called, where their result matters, only for the
# NotFound they raise (_load_offer reads all three rows in one query first).
_ONLY_RAISES = "its one caller ignores the value and wants only the NotFound it may raise"
_SQLITE_CHECK = "if sqlite3.sqlite_version_info >= (3, 38):"
_BOTH_EPOCHS = "unixepoch() and strftime('%s') give the same whole seconds: either branch will do"
# Not listed: the check's mutants that pick unixepoch() on a SQLite older than 3.38, which has
# no such function (test_sqlite_older_than_3_38_gets_the_same_slots_without_unixepoch).
_STRFTIME_EVERYWHERE = (
    "strftime('%s') on every SQLite: the same whole seconds, only slower where unixepoch() exists"
)
# Each bound of the read reaches past the window by the duration plus both buffers, more than
# time off (the duration) or a booking (the duration and one buffer) can overlap a start by.
_WIDER_THAN_NEEDED = (
    "a row exactly at the reach's bound forbids only starts outside the window (the reach"
    " adds both buffers to the duration, a row needs at most one of them)"
)
# A bind parameter compared with a column takes the column's type when it has none of its own.
_COLUMN_TYPES_THE_BIND = "an untyped bindparam compared with a UTCDateTime column takes its type"
EQUIVALENT: dict[tuple[str, str, str], str] = {
    (_AVAILABILITY, "inherit_cache = True", "True -> False"): (
        "only whether SQLAlchemy caches the compiled statement (it warns); the SQL is the same"
    ),
    (_AVAILABILITY, _SQLITE_CHECK, "replace statement by pass"): _STRFTIME_EVERYWHERE,
    (_AVAILABILITY, _SQLITE_CHECK, "3 -> 4"): _STRFTIME_EVERYWHERE,
    (_AVAILABILITY, _SQLITE_CHECK, ">= -> >"): (
        "sqlite_version_info has three parts: (3, 38, x) > (3, 38) wherever >= holds"
    ),
    (_AVAILABILITY, _SQLITE_CHECK, "38 -> 39"): (
        "differs on SQLite 3.38 alone, which has both functions: " + _BOTH_EPOCHS
    ),
    (
        _AVAILABILITY,
        "_BEFORE_ANY_BOOKING = datetime(1000, 1, 1, tzinfo=UTC)",
        "1000 -> 999",
    ): "any date before every booking will do as no lower bound",
    (
        _AVAILABILITY,
        'TimeOff.starts_at < bindparam("reach_until", type_=UTCDateTime()),',
        "< -> <=",
    ): _WIDER_THAN_NEEDED,
    (
        _AVAILABILITY,
        'TimeOff.ends_at > bindparam("reach_from", type_=UTCDateTime()),',
        "> -> >=",
    ): _WIDER_THAN_NEEDED,
    **{
        (_AVAILABILITY, line, "drop type_="): _COLUMN_TYPES_THE_BIND
        for line in (
            'Booking.blocked_from < bindparam("reach_until", type_=UTCDateTime()),',
            'Booking.blocked_until > bindparam("reach_from", type_=UTCDateTime()),',
            'Booking.blocked_from >= bindparam("earliest_block", type_=UTCDateTime()),',
            'TimeOff.starts_at < bindparam("reach_until", type_=UTCDateTime()),',
            'TimeOff.ends_at > bindparam("reach_from", type_=UTCDateTime()),',
        )
    },
    (
        _AVAILABILITY,
        'Booking.blocked_from < bindparam("reach_until", type_=UTCDateTime()),',
        "< -> <=",
    ): _WIDER_THAN_NEEDED,
    (
        _AVAILABILITY,
        'Booking.provider_id.in_(bindparam("providers", expanding=True)),',
        "drop expanding=",
    ): "in_() makes a bind parameter expanding itself (SQLAlchemy 2)",
    (_AVAILABILITY, "if starts and start <= ends[-1]:", "<= -> <"): (
        "touching intervals left apart give forbidden ranges that overlap (each reaches back by"
        " at least the duration, a minute or more): the same starts are refused"
    ),
    (
        _AVAILABILITY,
        "len(spans) > 1 for weekly in hours_by_provider.values() for spans in weekly.values()",
        "> -> >=",
    ): "de-duplicating slots that have no duplicates: the same sorted list",
    (_AVAILABILITY, "ends = range(first + duration, last + duration + 1, step)", "1 -> 2"): (
        "zip() stops with the starts, and the ends' range has at least as many items either way"
    ),
    (
        _AVAILABILITY,
        "return reach_from - timedelta(minutes=max(longest_block_minutes, 0))",
        "0 -> -1",
    ): "the stored bound is never negative (server default 0, only ever raised)",
    (_AVAILABILITY, "return f\"CAST(strftime('%s', {argument}) AS INTEGER)\"", "return None"): (
        _OLD_SQLITE
    ),
    (
        _AVAILABILITY,
        "return f\"CAST(strftime('%s', {argument}) AS INTEGER)\"",
        "replace statement by pass",
    ): _OLD_SQLITE,
    (
        _AVAILABILITY,
        'return f"CAST(extract(epoch FROM {compiler.process(element.clauses, **kw)}) AS BIGINT)"',
        "replace statement by pass",
    ): "PostgreSQL's compilation: not reachable in a SQLite run; the PostgreSQL suite kills it",
    (_LIFECYCLE, "status = 400", "400 -> 401"): (
        "the base class's status: every refusal raised is a subclass that sets its own"
    ),
    (_LIFECYCLE, "@dataclasses.dataclass(frozen=True)", "True -> False"): (
        "nothing assigns to a prepared change's fields; frozen only guards against a future slip"
    ),
    (_LIFECYCLE, "prepaid = ctx.booking.prepaid_cents if ctx.booking else 0", "0 -> -1"): (
        "the very next line treats 0 and -1 alike (nothing prepaid: no refund asked)"
    ),
    (_LIFECYCLE, "session.flush()", "replace statement by pass"): (
        "the cancellation's flush before its audit entry: the audit's own query autoflushes"
        " the session first, and a cancellation breaks no constraint"
    ),
    (
        _LIFECYCLE,
        'return "-".join(raw[index : index + 4] for index in range(0, 16, 4))',
        "16 -> 15",
    ): "range(0, 15, 4) and range(0, 16, 4) are the same four group starts",
    (_LIFECYCLE, "return provider", "replace statement by pass"): _ONLY_RAISES,
    (_LIFECYCLE, "return service", "return None"): _ONLY_RAISES,
    (
        _AVAILABILITY,
        'return f"unixepoch({argument})"  # a third of strftime\'s cost per row',
        "replace statement by pass",
    ): _BOTH_EPOCHS,
}


@dataclass
class Mutant:
    index: int
    line: int
    operator: str
    description: str
    start: tuple[int, int]
    end: tuple[int, int]
    replacement: str
    source_line: str = ""
    outcome: str = ""  # killed | survived | timeout | equivalent
    seconds: float = 0.0
    diff: str = ""


def _is_docstring(node: ast.AST, parent: ast.AST | None) -> bool:
    return (
        isinstance(node, ast.Expr)
        and isinstance(node.value, ast.Constant)
        and isinstance(node.value.value, str)
        and parent is not None
        and isinstance(parent, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef)
        and bool(parent.body)
        and parent.body[0] is node
    )


def _is_log_call(node: ast.AST) -> bool:
    return (
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and isinstance(node.func.value, ast.Name)
        and node.func.value.id in LOG_NAMES
    )


def _annotation_nodes(tree: ast.AST) -> set[int]:
    """ids of every node inside an annotation: never evaluated under postponed annotations."""
    inside: set[int] = set()

    def mark(annotation: ast.AST | None) -> None:
        if annotation is not None:
            inside.update(id(child) for child in ast.walk(annotation))

    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            mark(node.returns)
            arguments = node.args
            for argument in (
                *arguments.posonlyargs,
                *arguments.args,
                *arguments.kwonlyargs,
                arguments.vararg,
                arguments.kwarg,
            ):
                if argument is not None:
                    mark(argument.annotation)
        elif isinstance(node, ast.AnnAssign):
            mark(node.annotation)
    return inside


class _Finder:
    def __init__(self, source: str) -> None:
        self.source = source
        self.lines = source.splitlines()
        self.tree = ast.parse(source)
        self.skipped = _annotation_nodes(self.tree)
        self.found: list[Mutant] = []
        self._walk(self.tree, None)

    def _add(self, node: ast.AST, operator: str, description: str, replacement: str) -> None:
        self.found.append(
            Mutant(
                index=len(self.found),
                line=node.lineno,
                operator=operator,
                description=description,
                start=(node.lineno, node.col_offset),
                end=(node.end_lineno, node.end_col_offset),
                replacement=replacement,
                source_line=self.lines[node.lineno - 1].strip(),
            )
        )

    def _expression(self, node: ast.AST, mutated: ast.AST, operator: str, description: str):
        self._add(node, operator, description, f"({ast.unparse(mutated)})")

    def _walk(self, node: ast.AST, parent: ast.AST | None) -> None:
        if _is_docstring(node, parent) or id(node) in self.skipped:
            return
        if isinstance(node, ast.Expr) and _is_log_call(node.value):
            return
        if _is_log_call(node):
            return
        if isinstance(node, ast.JoinedStr):  # message text
            return
        self._mutate(node, parent)
        for child in ast.iter_child_nodes(node):
            self._walk(child, node)

    def _mutate(self, node: ast.AST, parent: ast.AST | None) -> None:
        if isinstance(node, ast.Compare):
            for position, op in enumerate(node.ops):
                for other in COMPARE_FLIPS.get(type(op), ()):
                    mutated = copy.deepcopy(node)
                    mutated.ops[position] = other()
                    self._expression(
                        node,
                        mutated,
                        "compare",
                        f"{SYMBOLS[type(op)]} -> {SYMBOLS[other]}",
                    )
        elif isinstance(node, ast.BinOp):
            for other in BINOP_FLIPS.get(type(node.op), ()):
                mutated = copy.deepcopy(node)
                mutated.op = other()
                self._expression(
                    node, mutated, "arithmetic", f"{SYMBOLS[type(node.op)]} -> {SYMBOLS[other]}"
                )
        elif isinstance(node, ast.AugAssign) and type(node.op) in BINOP_FLIPS:
            for other in BINOP_FLIPS[type(node.op)]:
                mutated = copy.deepcopy(node)
                mutated.op = other()
                self._add(
                    node,
                    "arithmetic",
                    f"{SYMBOLS[type(node.op)]}= -> {SYMBOLS[other]}=",
                    ast.unparse(mutated),
                )
        elif isinstance(node, ast.BoolOp):
            mutated = copy.deepcopy(node)
            mutated.op = ast.Or() if isinstance(node.op, ast.And) else ast.And()
            self._expression(
                node,
                mutated,
                "boolean",
                f"{SYMBOLS[type(node.op)]} -> {SYMBOLS[type(mutated.op)]}",
            )
        elif isinstance(node, ast.Constant):
            value = node.value
            if isinstance(value, bool):
                self._add(node, "constant", f"{value} -> {not value}", str(not value))
            elif isinstance(value, int):
                for other in sorted({value + 1, value - 1, 0} - {value}):
                    self._add(node, "constant", f"{value} -> {other}", f"({other})")
        elif isinstance(node, ast.Call):
            for keyword in node.keywords:
                if keyword.arg is None:
                    continue
                mutated = copy.deepcopy(node)
                mutated.keywords = [k for k in mutated.keywords if k.arg != keyword.arg]
                self._expression(node, mutated, "keyword", f"drop {keyword.arg}=")
        elif isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not):
            self._expression(node, node.operand, "negate", "drop not")
        if isinstance(node, ast.If | ast.While):
            self._add(node.test, "negate", "negate condition", f"(not ({ast.unparse(node.test)}))")
        elif isinstance(node, ast.IfExp):
            self._add(node.test, "negate", "negate condition", f"(not ({ast.unparse(node.test)}))")
        if isinstance(node, ast.Return) and node.value is not None:
            if not (isinstance(node.value, ast.Constant) and node.value.value is None):
                self._add(node, "return", "return None", "return None")
        if isinstance(node, ast.stmt) and not isinstance(
            node,
            ast.FunctionDef
            | ast.AsyncFunctionDef
            | ast.ClassDef
            | ast.Import
            | ast.ImportFrom
            | ast.Pass
            | ast.Global
            | ast.Nonlocal,
        ):
            if isinstance(parent, ast.Module | ast.ClassDef):
                return  # module/class level: an import-time name, removal only breaks imports
            self._add(node, "statement", "replace statement by pass", "pass")


def find_mutants(source: str) -> list[Mutant]:
    """Every mutant of ``source`` that still compiles."""
    candidates = _Finder(source).found
    valid = []
    for mutant in candidates:
        try:
            compile(apply(source, mutant), "<mutant>", "exec")
        except SyntaxError:
            continue
        valid.append(mutant)
    for number, mutant in enumerate(valid):
        mutant.index = number
    return valid


def _offset(lines: list[str], position: tuple[int, int]) -> int:
    line, column = position
    return sum(len(text) for text in lines[: line - 1]) + len(
        lines[line - 1].encode()[:column].decode()
    )


def apply(source: str, mutant: Mutant) -> str:
    lines = source.splitlines(keepends=True)
    start, end = _offset(lines, mutant.start), _offset(lines, mutant.end)
    return source[:start] + mutant.replacement + source[end:]


def _diff(source: str, mutated: str, path: str) -> str:
    return "".join(
        difflib.unified_diff(
            source.splitlines(keepends=True),
            mutated.splitlines(keepends=True),
            path,
            f"{path} (mutant)",
            n=1,
        )
    )


def _stop(signum, frame) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def run(arguments: argparse.Namespace) -> dict:
    target = (ROOT / arguments.module).resolve()
    relative = str(target.relative_to(ROOT))
    original = target.read_text()
    original_stat = target.stat()
    mutants = find_mutants(original)
    # In the sample's random order, not the file's: a run stopped early is still a fair sample
    # of the whole module rather than of its first lines.
    chosen = random.Random(arguments.seed).sample(mutants, min(arguments.sample, len(mutants)))
    carried: dict[int, dict] = {}
    if arguments.recheck is not None:
        # Tests were added since that run: what it killed stays killed (tests are only added),
        # so only its survivors need running again. The sample must be the same one.
        previous = json.loads(arguments.recheck.read_text())
        if (previous["module"], previous["seed"], previous["sampled"]) != (
            relative,
            arguments.seed,
            len(chosen),
        ):
            sys.exit(f"{arguments.recheck} is not a run of this module, seed and sample size")
        # An equivalent one is carried only while it is still listed: an entry dropped since
        # (a test now tells it apart) is run again.
        carried = {
            mutant["index"]: mutant
            for mutant in previous["mutants"]
            if mutant["outcome"] in ("killed", "timeout")
            or (
                mutant["outcome"] == "equivalent"
                and (relative, mutant["source_line"], mutant["description"]) in EQUIVALENT
            )
        }
    if arguments.list:
        for mutant in chosen:
            print(f"{mutant.index:4} L{mutant.line:<4} {mutant.operator:10} {mutant.description}")
        return {}
    command = [sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider", "--no-header"]
    command += list(arguments.tests)
    environment = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}
    print(
        f"{relative}: {len(mutants)} mutants, {len(chosen)} sampled (seed {arguments.seed})",
        flush=True,
    )
    started = time.monotonic()
    # A plain kill must still restore the module: turn SIGTERM into an exception.
    signal.signal(signal.SIGTERM, _stop)
    try:
        baseline = subprocess.run(  # noqa: S603 (pytest, on the paths the caller names)
            command, cwd=ROOT, env=environment, capture_output=True, timeout=arguments.timeout
        )
        if baseline.returncode != 0:
            sys.exit(f"the tests fail without any mutant:\n{baseline.stdout.decode()[-3000:]}")
        mtime = time.time()
        for number, mutant in enumerate(chosen, 1):
            mutated = apply(original, mutant)
            mutant.diff = _diff(original, mutated, relative)
            if mutant.index in carried:
                mutant.outcome = carried[mutant.index]["outcome"]
                mutant.seconds = carried[mutant.index]["seconds"]
                continue
            target.write_text(mutated)
            # A distinct mtime per mutant: a .pyc records its source's mtime and size, and a
            # flip such as < to > keeps the size.
            mtime += 2
            os.utime(target, (mtime, mtime))
            began = time.monotonic()
            try:
                result = subprocess.run(  # noqa: S603 (as above)
                    command,
                    cwd=ROOT,
                    env=environment,
                    capture_output=True,
                    timeout=arguments.timeout,
                )
                mutant.outcome = "killed" if result.returncode != 0 else "survived"
            except subprocess.TimeoutExpired:
                mutant.outcome = "timeout"
            mutant.seconds = round(time.monotonic() - began, 2)
            key = (relative, mutant.source_line, mutant.description)
            if mutant.outcome == "survived" and key in EQUIVALENT:
                mutant.outcome = "equivalent"
            elif key in EQUIVALENT:
                print(f"  note: listed as equivalent but {mutant.outcome}: {key}")
            print(
                f"[{number:3}/{len(chosen)}] {mutant.outcome:10} L{mutant.line:<4} "
                f"{mutant.operator:10} {mutant.description} ({mutant.seconds}s)",
                flush=True,
            )
    finally:
        target.write_text(original)
        os.utime(target, ns=(original_stat.st_atime_ns, original_stat.st_mtime_ns))
    counted = [mutant for mutant in chosen if mutant.outcome != "equivalent"]
    killed = [mutant for mutant in counted if mutant.outcome in ("killed", "timeout")]
    survivors = [mutant for mutant in counted if mutant.outcome == "survived"]
    score = len(killed) / len(counted) if counted else 1.0
    elapsed = round(time.monotonic() - started, 1)
    print()
    for mutant in survivors:
        print(f"SURVIVED L{mutant.line} {mutant.operator}: {mutant.description}")
        print(mutant.diff)
    timeouts = sum(mutant.outcome == "timeout" for mutant in chosen)
    equivalent = len(chosen) - len(counted)
    print(
        f"{relative}: {len(killed)}/{len(counted)} killed = {score:.1%} "
        f"({timeouts} by timeout; {equivalent} equivalent excluded; {len(mutants)} mutants in all, "
        f"seed {arguments.seed}, {elapsed}s)"
    )
    return {
        "module": relative,
        "tests": list(arguments.tests),
        "seed": arguments.seed,
        "mutants_in_module": len(mutants),
        "sampled": len(chosen),
        "counted": len(counted),
        "killed": len(killed),
        "timeouts": timeouts,
        "equivalent": equivalent,
        "score": round(score, 4),
        "seconds": elapsed,
        "mutants": [asdict(mutant) for mutant in chosen],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("module", help="the module's path from the repository root")
    parser.add_argument("--tests", nargs="+", required=True, help="pytest paths or node ids")
    parser.add_argument("--sample", type=int, default=200)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--timeout", type=float, default=120.0, help="seconds per mutant run")
    parser.add_argument("--json", type=Path, help="write every mutant and its outcome here")
    parser.add_argument("--list", action="store_true", help="list the sample; run nothing")
    parser.add_argument(
        "--recheck",
        type=Path,
        metavar="JSON",
        help="a previous run's --json (same module, seed and sample): run only its survivors "
        "(and the equivalents no longer listed) again, keep its other outcomes, and report the "
        "whole sample's score",
    )
    arguments = parser.parse_args()
    report = run(arguments)
    if arguments.json and report:
        arguments.json.write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
