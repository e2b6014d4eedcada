"""Run the benchmark cases: orch against the floor (one ansible-playbook) and, when installed, xOpera.

    python benchmarks/run.py [--cases default|quick|CASE,...] [--repeats 3] [--json FILE]

For each case, each repeat runs every tool in turn (the order rotates from repeat to repeat), so that
a slow spell on a shared machine falls on all of them rather than on one; each run starts from fresh
state. Reports the median of the repeats and orch's ratios to the floor and to xOpera, as a table on
stdout and as JSON with every single run (--json). See benchmarks/README.md for what each number means.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import cases as cases_mod
import floor as floor_mod
import generate
import measure
import report
import tools

HERE = Path(__file__).resolve().parent


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def run_deploy_case(case: cases_mod.Case, root: Path, contestants: list, args: argparse.Namespace) -> dict:
    data: dict[str, dict] = {t.name: {"runs": []} for t in contestants}
    started = time.monotonic()
    for repeat in range(args.repeats):
        shift = repeat % len(contestants)
        for tool in contestants[shift:] + contestants[:shift]:
            work = root / f"r{repeat}-{tool.name}"
            work.mkdir(parents=True)
            deploy = tool.deploy(work)
            undeploy = tool.undeploy(work) if deploy.ok else None
            ok = deploy.ok and (undeploy is None or undeploy.ok)
            run = {
                "repeat": repeat,
                "ok": ok,
                "deploy": deploy.as_dict(),
                "undeploy": undeploy.as_dict() if undeploy else None,
            }
            if ok:
                run["summary"] = report.repeat_summary(run["deploy"], run["undeploy"])
            else:
                failed = deploy if not deploy.ok else undeploy
                data[tool.name]["error"] = run["error"] = _failure(failed)
            data[tool.name]["runs"].append(run)
            if ok:
                took = f"deploy {deploy.wall_s:.2f}s" + (
                    f", undeploy {undeploy.wall_s:.2f}s" if undeploy else ""
                )
            else:
                took = f"FAILED: {run['error'][:200]}"
            log(f"  [{case.name} {repeat + 1}/{args.repeats}] {tool.name:<6} {took}")
            if not args.keep:
                shutil.rmtree(work, ignore_errors=True)
        if _stop_repeating(case, repeat, started, args):
            break
    for tool_data in data.values():
        tool_data["median"] = report.medians(tool_data["runs"])
    return data


def run_plan_case(case: cases_mod.Case, topology: Path, root: Path, args: argparse.Namespace) -> dict:
    runs = []
    started = time.monotonic()
    for repeat in range(args.repeats):
        out = root / f"probe-{repeat}.json"
        sample = measure.run(
            [sys.executable, str(HERE / "probe_plan.py"), str(topology)],
            env=tools.orch_environment(args.orch_src),
            cwd=root,
            timeout=args.timeout,
            self_report=True,
            stdout_file=out,
        )
        run: dict = {"repeat": repeat, "ok": sample.ok, "plan": sample.as_dict()}
        if sample.ok:
            phases = _last_json_line(out)
            run["summary"] = {
                "wall_s": sample.wall_s,
                "cpu_s": sample.cpu_s,
                "self_cpu_s": sample.self_cpu_s,
                "self_rss_mb": sample.self_rss_mb,
                "tree_peak_rss_mb": sample.tree_peak_rss_mb,
                **phases,
            }
            log(
                f"  [{case.name} {repeat + 1}/{args.repeats}] orch   load+plan {sample.wall_s:.2f}s, "
                f"{sample.self_rss_mb or 0:.0f} MB"
            )
        else:
            run["error"] = _failure(sample)
            log(f"  [{case.name} {repeat + 1}/{args.repeats}] orch   FAILED: {run['error'][:200]}")
        runs.append(run)
        if not sample.ok or _stop_repeating(case, repeat, started, args):
            break
    data = {"runs": runs, "median": report.medians(runs)}
    if not data["median"]:
        data["error"] = runs[-1].get("error", "")
    return {"orch": data}


def _stop_repeating(case: cases_mod.Case, repeat: int, started: float, args: argparse.Namespace) -> bool:
    """A case whose first repeat took longer than --repeat-limit is not repeated: minutes of noise
    matter little at that length, and the run must end the same day."""
    elapsed = time.monotonic() - started
    if repeat == 0 and args.repeats > 1 and elapsed > args.repeat_limit:
        log(
            f"  [{case.name}] first repeat took {elapsed:.0f}s > --repeat-limit {args.repeat_limit:.0f}s: "
            "not repeated"
        )
        return True
    return False


def _failure(sample: measure.Sample | None) -> str:
    if sample is None:
        return "no sample"
    if sample.timed_out:
        return f"timed out after {sample.wall_s:.0f}s"
    return f"exit {sample.rc}: {sample.log_tail.strip()[-600:]}"


def _last_json_line(path: Path) -> dict:
    for line in reversed(path.read_text(errors="replace").splitlines()):
        if line.startswith("{"):
            try:
                return json.loads(line)
            except ValueError:
                break
    return {}


def warm_up(root: Path, settings: tools.Settings) -> None:
    """One unmeasured deploy by orch and by the floor: the first Ansible start after boot reads its
    files from disk (and may write .pyc files); that one-off cost is not what we are measuring."""
    generated = generate.generate("chain", 1, root / "topology")
    for tool in (
        tools.Orch(generated.topology, settings),
        tools.FloorTool(generated.topology, settings, root / "floor"),
    ):
        work = root / f"work-{tool.name}"
        work.mkdir()
        tool.deploy(work)


def meta(args: argparse.Namespace, opera: str | None) -> dict:
    def version(cmd: list[str], env: dict[str, str] | None = None) -> str | None:
        try:  # cwd "/": `python -c` puts the working folder first on sys.path, orch's runs do not
            done = subprocess.run(
                cmd, check=False, capture_output=True, text=True, timeout=60, env=env, cwd="/"
            )
            return done.stdout.strip().splitlines()[0]
        except (OSError, IndexError, subprocess.SubprocessError):
            return None

    source = str(args.orch_src or HERE.parent)
    # which orch was measured: the commit, whether its orchestrator/ had uncommitted changes when the
    # run started, and the folder Python actually imported it from
    dirty = version(["git", "-C", source, "status", "--porcelain", "--", "orchestrator", "tosca_types"])
    imported = version(
        [sys.executable, "-c", "import orchestrator; print(orchestrator.__file__)"],
        tools.orch_environment(args.orch_src),
    )

    return {
        "started": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "host": platform.node(),
        "cpus": os.cpu_count(),
        "load_average_at_start": os.getloadavg(),
        "python": sys.version.split()[0],
        "ansible": version([floor_mod.ansible_playbook(), "--version"]),
        "orch_source": source,
        "orch_commit": version(["git", "-C", source, "rev-parse", "--short", "HEAD"]),
        "orch_uncommitted_changes": dirty is not None,
        "orch_imported_from": imported,
        "repeats": args.repeats,
        "workers": args.workers,
        "timeout_s": args.timeout,
        "teardown": args.teardown,
        "xopera": opera or tools.OPERA_HOW,
    }


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--cases",
        default="default",
        help=f"a set ({', '.join(cases_mod.SETS)}) or case names, comma-separated "
        "(chain-10, wide-20-s1, tree-50, plan-chain-5000, ...)",
    )
    parser.add_argument(
        "--repeats",
        type=int,
        default=None,
        help=f"runs per case and tool (default 3; {cases_mod.QUICK_REPEATS} for --cases quick)",
    )
    parser.add_argument("--json", type=Path, help="write every run and the medians to this file")
    parser.add_argument(
        "--workers", type=int, default=4, help="orch --workers and opera --workers (default 4)"
    )
    parser.add_argument(
        "--teardown",
        action="store_true",
        help="give the nodes stop/delete playbooks too, so that undeploy runs operations",
    )
    parser.add_argument("--timeout", type=float, default=1800.0, help="seconds before one command is ended")
    parser.add_argument(
        "--repeat-limit",
        type=float,
        default=600.0,
        help="a case whose first repeat (all tools) took longer is not repeated (default 600 s)",
    )
    parser.add_argument(
        "--orch-src",
        type=Path,
        help="measure orch from this folder (a checkout or `git archive` of a commit) instead of the installed one",
    )
    parser.add_argument("--opera", help="the opera command to compare with (default: opera on PATH, if any)")
    parser.add_argument("--no-xopera", action="store_true", help="do not run xOpera even if it is installed")
    parser.add_argument(
        "--warmup",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="one unmeasured deploy first (default: on, off for --cases quick)",
    )
    parser.add_argument("--keep", action="store_true", help="keep the work folder (printed at the end)")
    args = parser.parse_args(argv)
    if args.repeats is None:
        args.repeats = cases_mod.QUICK_REPEATS if args.cases == "quick" else 3
    if args.warmup is None:
        args.warmup = args.cases != "quick"  # CI's smoke run checks the kit works, not the numbers
    if args.repeats < 1 or args.workers < 1:
        parser.error("--repeats and --workers must be at least 1")
    try:
        args.selected = cases_mod.select(args.cases)
    except ValueError as exc:
        parser.error(str(exc))
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    settings = tools.Settings(args.workers, args.timeout, tools.orch_environment(args.orch_src))
    opera = None if args.no_xopera else tools.find_opera(args.opera)
    if opera is None and not args.no_xopera:
        log(f"note: {tools.OPERA_HOW}")
    root = Path(tempfile.mkdtemp(prefix="orch-bench-"))
    document = {"meta": meta(args, opera), "results": {}}
    all_ok = True
    try:
        if args.warmup and any(case.kind == "deploy" for case in args.selected):
            log("warming up (unmeasured)")
            warm_up(root / "warmup", settings)
        for case in args.selected:
            log(f"case {case.name}")
            case_root = root / case.name
            generated = generate.generate(
                case.shape,
                case.nodes,
                case_root / "topology",
                case.sleep,
                teardown=args.teardown and case.kind == "deploy",
            )
            result: dict = {"case": {**case.__dict__, "operations": list(generated.operations)}}
            if case.kind == "plan":
                result["tools"] = run_plan_case(case, generated.topology, case_root, args)
            else:
                contestants: list = [
                    tools.Orch(generated.topology, settings),
                    tools.FloorTool(generated.topology, settings, case_root / "floor"),
                ]
                if opera:
                    contestants.append(tools.XOpera(generated.topology, settings, opera))
                result["tools"] = run_deploy_case(case, case_root, contestants, args)
                if not opera:
                    result["tools"]["xopera"] = {
                        "runs": [],
                        "median": None,
                        "skipped": "not installed" if not args.no_xopera else "--no-xopera",
                    }
            result["ratios"] = report.ratios(result["tools"])
            all_ok &= all(
                t.get("median") is not None for name, t in result["tools"].items() if name != "xopera"
            )
            document["results"][case.name] = result
    finally:
        document["meta"]["load_average_at_end"] = os.getloadavg()
        if args.json:
            args.json.write_text(json.dumps(document, indent=2))
        if args.keep:
            log(f"work folder kept: {root}")
        else:
            shutil.rmtree(root, ignore_errors=True)
    print(report.table(document["results"]))
    print(
        f"\nmedians of {args.repeats} repeat(s), workers={args.workers}, "
        f"load average {document['meta']['load_average_at_start'][0]:.1f} -> "
        f"{document['meta']['load_average_at_end'][0]:.1f} on {os.cpu_count()} CPUs"
        + ("" if opera or args.no_xopera else "; xOpera: not installed (see benchmarks/README.md)")
    )
    return 0 if all_ok else 1


if __name__ == "__main__":
    sys.exit(main())
