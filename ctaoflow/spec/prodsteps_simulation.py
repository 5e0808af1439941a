"""CTADIRAC's MCSimulation step (``MCPipeJob``) as an mc_simulation transformation.

One job runs ``dirac_prod_run`` (CORSIKA piped into sim_telarray) for one run number and
writes one file per NSB (``moon``) x divergence (``div_ang``) combination; each becomes
its own output, found by CTADIRAC's ``Data/*-div<d>*-<moon>*.simtel.zst`` pattern.
"""

from __future__ import annotations

import itertools
import shlex
from typing import Any

from ctaoflow.spec.messages import short
from ctaoflow.spec.prodsteps_kinds import (CVMFS, DIVERGENCE_SETS, MOON_FILES, MOON_FLAGS,
                                           MOON_NSB, MOON_SETS, PARTICLES, POINTINGS,
                                           literal, simulation_script)
from ctaoflow.spec.prodsteps_steps import Built, Step, attributes, is_common
from ctaoflow.spec.yamlio import KeyPath

SCT_FLAGS = {"all": "--with-all-scts", "non-alpha": "--with-sct"}
SWITCHES = {"only_corsika": "--without-multipipe", "sequential": "--sequential",
            "instrument_random_seeds": "--instrument-random-seeds"}


def listed(value: Any) -> list[str]:
    """``"dark, half"`` -> ``["dark", "half"]``, as CTADIRAC splits on commas."""
    items = value if isinstance(value, list) else str(value).split(",")
    return [str(item).strip() for item in items]


class _Simulation:
    def __init__(self, step: Step) -> None:
        self.step = step
        self.job = step.job
        note = f"ProdStep ID {step.id} (MCSimulation) -> type mc_simulation"
        self.built = Built({}, {}, [note])

    def error(self, key: str, message: str) -> None:
        path: KeyPath = ("job_config", key) if key in self.job else ("job_config",)
        self.built.error(path, message, key not in self.job)

    def choice(self, key: str, allowed: tuple[str, ...]) -> str:
        value = self.job.get(key)
        if value not in allowed:
            self.error(key, f"{key} must be one of: {', '.join(allowed)}; got "
                            f"'{short(value)}'")
        return str(value)

    def moons(self) -> list[int]:
        moon = listed(self.job.get("moon", ""))
        if moon not in [list(s) for s in MOON_SETS]:
            self.error("moon", "moon must be one of: " + "; ".join(", ".join(s) for s in
                                                                   MOON_SETS))
            return [1]
        return [MOON_NSB[m] for m in moon]

    def divergences(self) -> list[str]:
        if "div_ang" not in self.job:
            return []
        found = listed(self.job["div_ang"])
        if found not in [list(s) for s in DIVERGENCE_SETS]:
            self.error("div_ang", "div_ang must be one of the sets: " + " or ".join(
                ", ".join(s) for s in DIVERGENCE_SETS))
        return found

    def flags(self, moons: list[int], divergences: list[str]) -> list[str]:
        job = self.job
        flags = [f"--{str(job['layout']).replace('--', '')}"] if "layout" in job else []
        flags += [flag for key, flag in SWITCHES.items() if job.get(key) is True]
        flags += [MOON_FLAGS[len(moons)]] if MOON_FLAGS[len(moons)] else []
        if "sct" in job:
            flags.append(SCT_FLAGS.get(str(job["sct"]).lower(), ""))
            if str(job["sct"]).lower() not in SCT_FLAGS:
                self.error("sct", "sct must be 'all' or 'non-alpha' (or left empty)")
        probability = job.get("random_mono_probability")
        if probability is not None:
            if not isinstance(probability, (int, float)) or not 0 <= probability <= 1:
                self.error("random_mono_probability", "must be a probability between 0 "
                                                      "and 1")
            flags += ["--random-mono-probability", str(probability)]
        if divergences:
            flags.append("--divergent")
        elif job.get("magic") is True:
            flags.append("--with-magic")
        return flags

    def build(self, common: dict[str, Any]) -> Built:
        job, built = self.job, self.built
        particle = self.choice("particle", PARTICLES)
        pointing = self.choice("pointing_dir", POINTINGS)
        if "site" not in job:
            self.error("site", "an MCSimulation step needs its site; add 'site: Paranal' "
                               "or 'site: LaPalma'")
        showers = job.get("n_shower")
        if isinstance(showers, bool) or not isinstance(showers, int) or showers < 1:
            self.error("n_shower", "an MCSimulation step needs its showers per run; add "
                                   "e.g. 'n_shower: 2000'")
        try:
            zenith = float(job.get("zenith_angle", 20.0))
        except (TypeError, ValueError):
            self.error("zenith_angle", "write the zenith angle in degrees, e.g. 20")
            zenith = 20.0
        moons, divergences = self.moons(), self.divergences()
        attrs = attributes(self.step.kind, {}, common, job)
        version = str(attrs["version"]) + ("-sc" if "sct" in job else "")
        corsika = job.get("only_corsika") is True
        category, program = ("airshower_sim", "corsika") if corsika else ("tel_sim",
                                                                         "sim_telarray")
        metadata = {"array_layout": job.get("array_layout", "Prod6-Hyperarray"),
                    "site": job.get("site"), "particle": particle,
                    "phiP": 180 if pointing == "North" else 0, "thetaP": zenith,
                    "sct": "True" if "sct" in job else "False",
                    f"{category}_prog": program, f"{category}_prog_version": version,
                    "data_level": attrs["data_level"], "outputType": "Data",
                    "configuration_id": attrs["configuration_id"],
                    "MCCampaign": attrs["MCCampaign"]}
        own = {k: v for k, v in metadata.items() if not is_common(k, v, common)}
        outputs, patterns = [], {}
        for nsb, divergence in (itertools.product(moons, divergences or [""])
                                if not corsika else [(0, "")]):
            key, name, pattern = self.output(nsb, divergence, particle, corsika)
            extra: dict[str, Any] = {"nsb": nsb} if nsb else {}
            extra.update({"div_ang": divergence} if divergence else {})
            outputs.append({"key": key, "name": name, "metadata": {**own, **extra}})
            patterns[key] = pattern
        words = [literal(shlex.quote(str(word))) for word in (
            "--start_run", job.get("start_run_number", 0), "--run-number", "{run}",
            "--rn-format", "%06d", *self.flags(moons, divergences), job.get("site"),
            particle, pointing, job.get("zenith_angle", 20.0))]
        words[3] = "{run}"
        built.notes.append(f"moon x div_ang -> {len(outputs)} output(s), one per NSB x "
                           "divergence")
        built.notes.append(f"n_shower {showers} -> NSHOW; one run, extended with 'ctaoflow "
                           "extend' as DIRAC extends an MC transformation")
        built.notes.append(f"version {version} -> CVMFS software path")
        built.transformation = {
            "name": self.step.name, "type": "mc_simulation",
            "description": f"ProdStep ID {self.step.id}: MCSimulation",
            "runs": {"count": 1, "start": 1},
            "job": {"command": ["bash", "-c", simulation_script(
                        " ".join(words), patterns)],
                    "env": {"NSHOW": str(showers)},
                    "environment": {"cvmfs": CVMFS.format(package="corsika_simtelarray",
                                                          version=literal(version))}},
            "outputs": outputs}
        built.metadata = {**metadata, "nsb": {"in": moons} if len(moons) > 1 else moons[0]}
        if divergences:
            built.metadata["div_ang"] = ({"in": divergences} if len(divergences) > 1
                                         else divergences[0])
        return built

    @staticmethod
    def output(nsb: int, divergence: str, particle: str, corsika: bool
               ) -> tuple[str, str, str]:
        """An output's key, file name and CTADIRAC's pattern of the file it is."""
        if corsika:
            return "output", "{transformation}_run{run:06d}.corsika.zst", "Data/*.corsika.zst"
        moon = MOON_FILES[nsb]
        div = f"div{divergence}" if divergence else ""
        key = f"{moon}_{div.replace('.', '_')}" if div else moon
        name = f"{{transformation}}_run{{run:06d}}_{literal(particle)}_{moon}" + (
            f"_{div}" if div else "")
        return key, f"{name}.simtel.zst", f"Data/*-{div}*-{moon}*.simtel.zst"


def build_simulation(step: Step, common: dict[str, Any]) -> Built:
    """The mc_simulation transformation of an MCSimulation ``step``."""
    return _Simulation(step).build(common)
