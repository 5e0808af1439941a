"""The demo's job payload: ``python -m ctaoflow.demo.payload ACTION ...``.

Small stand-ins for ctapipe tools that really read their inputs and write outputs:
``simulate`` makes DL0 events, ``process`` turns events into DL1 parameters,
``merge`` concatenates, ``train`` fits a threshold model, ``apply`` uses it.
Every file is JSON: ``{"events": [...], ...}``. Exit 2 on unreadable input.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
from pathlib import Path


def _read(paths: list[str]) -> list[dict]:
    events = []
    for path in paths:
        try:
            events.extend(json.loads(Path(path).read_text())["events"])
        except (OSError, ValueError, KeyError) as exc:
            print(f"payload: cannot read {path}: {exc}", file=sys.stderr)
            raise SystemExit(2) from None
    return events


def _write(path: str, **content: object) -> None:
    Path(path).write_text(json.dumps(content, sort_keys=True))


def simulate(args: argparse.Namespace) -> None:
    rng = random.Random(args.run)
    _write(args.output, events=[{"id": f"{args.run}.{i}", "particle": args.particle,
                                 "image": [rng.random() for _ in range(8)]}
                                for i in range(args.events)])


def process(args: argparse.Namespace) -> None:
    events = _read(args.inputs)
    _write(args.output, events=[{**e, "intensity": sum(e["image"]), "image": None}
                                for e in events])


def merge(args: argparse.Namespace) -> None:
    _write(args.output, events=_read(args.inputs))


def train(args: argparse.Namespace) -> None:
    events = _read(args.inputs)
    gamma = [e["intensity"] for e in events if e["particle"] == "gamma"]
    other = [e["intensity"] for e in events if e["particle"] != "gamma"]
    if not gamma or not other:
        print("payload: training needs gamma and background events", file=sys.stderr)
        raise SystemExit(3)
    _write(args.output, events=[], threshold=(sum(gamma) / len(gamma) + sum(other) / len(other)) / 2,
           trained_on=len(events))


def apply(args: argparse.Namespace) -> None:
    threshold = json.loads(Path(args.model).read_text())["threshold"]
    _write(args.output, events=[{**e, "gammaness": float(e["intensity"] > threshold)}
                                for e in _read(args.inputs)])


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="ctaoflow.demo.payload")
    sub = parser.add_subparsers(dest="action", required=True)
    for name in ("process", "merge", "train", "apply"):
        p = sub.add_parser(name)
        p.add_argument("--output", required=True)
        p.add_argument("inputs", nargs="+")
        if name == "apply":
            p.add_argument("--model", required=True)
    sim = sub.add_parser("simulate")
    sim.add_argument("--run", type=int, required=True)
    sim.add_argument("--output", required=True)
    sim.add_argument("--particle", default="gamma")
    sim.add_argument("--events", type=int, default=20)
    args = parser.parse_args(argv)
    {"simulate": simulate, "process": process, "merge": merge, "train": train,
     "apply": apply}[args.action](args)


if __name__ == "__main__":
    main()
