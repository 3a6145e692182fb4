"""One vocabulary for CPU and memory, translated into each work pool type's job variables.

`translate()` returns the job variables plus the problems with the values: each message names what
the platform accepts. The same function serves offline `validate` (pool type from the manifest)
and the plan (pool type from the server).

Each work pool type is declared once, in `POOL_TYPES` at the end of this module: its names (with its
Prefect Cloud push variant), the job variables `resources` becomes and how (CPU/memory rules and valid
sizes), how its own cpu/memory job variables read, whether it runs an image, and what `import` carries
over from Prefect 2 blocks. The manifest schema's `work_pool.type` enum (written by scripts/reference.py),
the checks, the translation and `import --pool-type` all follow from it: adding a pool type (e.g.
`prefect:managed`) is one `PoolType` entry there; tests/unit/test_pool_types_once.py walks every entry
through schema, check, translation and import.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal

MIB_PER = {"": None, "Ki": Decimal(1) / 1024, "Mi": Decimal(1), "Gi": Decimal(1024), "Ti": Decimal(1024 * 1024),
           "k": Decimal(1000) / 1024 / 1024, "K": Decimal(1000) / 1024 / 1024, "M": Decimal(1000 * 1000) / 1024 / 1024,
           "G": Decimal(1000**3) / 1024 / 1024, "T": Decimal(1000**4) / 1024 / 1024}
_QUANTITY = re.compile(r"^\s*([0-9]+(?:\.[0-9]+)?)\s*([A-Za-z]*)\s*$")

# Fargate: CPU units -> valid memory in MiB
FARGATE = {
    256: [512, 1024, 2048],
    512: list(range(1024, 4096 + 1, 1024)),
    1024: list(range(2048, 8192 + 1, 1024)),
    2048: list(range(4096, 16384 + 1, 1024)),
    4096: list(range(8192, 30720 + 1, 1024)),
    8192: list(range(16384, 61440 + 1, 4096)),
    16384: list(range(32768, 122880 + 1, 8192)),
}
# What the ECS worker (prefect-aws) registers for a side left out: (CPU units, MiB)
ECS_WORKER_DEFAULTS = (1024, 2048)
# Cloud Run: memory above the key (MiB) needs at least this many vCPU
CLOUD_RUN_MIN_CPU = [(24 * 1024, 8), (16 * 1024, 6), (8 * 1024, 4), (4 * 1024, 2), (1024, 1), (512, Decimal("0.5"))]
# Cloud Run: this many vCPU need at least this much memory (MiB)
CLOUD_RUN_MIN_MEMORY = {4: 2 * 1024, 6: 4 * 1024, 8: 4 * 1024}
# Cloud Run's memory when none is set (also the cloud-run-v2 pool template's default)
CLOUD_RUN_DEFAULT_MEMORY = 512

# Far above what any platform runs (the largest machines have hundreds of vCPU and some TiB); beyond them a
# value only overflows on its way to the server (Azure's float GB) or a worker.
MAX_CPU = Decimal(10_000)
MAX_MEMORY_MIB = Decimal(1024**3)  # 1 PiB

# Fargate's pairs hold on Fargate only. On EC2 (and external) instances a task takes 128 to 196608 CPU
# units (0.125 to 192 vCPU), any memory its instance has; the worker gives the container the memory, and a
# container needs at least 6 MiB.
FARGATE_LAUNCH_TYPES = ("FARGATE", "FARGATE_SPOT")
EC2_CPU_UNITS = (128, 196608)
EC2_MIN_MEMORY = 6


@dataclass(frozen=True)
class Launch:
    """Where an ECS deployment's tasks run: 'fargate', 'ec2' (EC2 or external instances), or None when a
    template fills it in as the run starts; `assumed` when nothing said so and the worker's default
    (FARGATE) is taken: offline, the pool's base job template is not known."""

    platform: str | None = "fargate"
    assumed: bool = False
    how: str = ""  # what decided, for messages
    note: str = ""  # added to Fargate's refusals: why Fargate, where the manifest may mean EC2


def ecs_launch(job_variables: dict, template_variables: dict | None = None) -> Launch:
    """Where the ECS worker (prefect-aws) runs `job_variables`' tasks. Its launch_type decides: the worker
    registers the task definition for it (FARGATE and FARGATE_SPOT: a Fargate one, which AWS holds to
    Fargate's pairs), even when a capacity provider strategy then replaces the launch type in the run
    request. Each from the job variables, else the pool's base job template's default (None offline)."""
    defaults = {k: v.get("default") for k, v in ((template_variables or {}).get("properties") or {}).items()
                if isinstance(v, dict)}

    def written(key):
        where = "job_variables" if key in job_variables else "the pool's base job template"
        return job_variables.get(key, defaults.get(key)), where

    launch, where = written("launch_type")
    if launch in ("EC2", "EXTERNAL"):
        return Launch("ec2", how=f"launch_type {launch} in {where}")
    if launch and launch not in FARGATE_LAUNCH_TYPES:
        return Launch(None)  # a template, filled in when the run starts
    strategy, _ = written("capacity_provider_strategy")
    providers = [entry.get("capacityProvider") for entry in strategy if isinstance(entry, dict)] \
        if isinstance(strategy, list) else []
    on_ec2 = [p for p in providers if isinstance(p, str) and p not in FARGATE_LAUNCH_TYPES]
    note = f"; the ECS worker registers a Fargate task definition for launch_type {launch or 'FARGATE'}, also " \
           f"with capacity provider '{on_ec2[0]}': set launch_type: EC2 to run on it" if on_ec2 else ""
    return Launch("fargate", assumed=not launch and template_variables is None, note=note)


class UnitError(ValueError):
    pass


def base_type(pool_type: str) -> str:
    """'ecs:push' and 'cloud-run-v2:push' take the resources of their hybrid twins."""
    declared = find(pool_type)
    return declared.name if declared else pool_type


def parse_cpu(value) -> Decimal:
    """vCPU from 0.25, 2 or '250m'."""
    if isinstance(value, bool):
        raise UnitError("cpu must be a number of vCPU (0.25, 1, 2) or millicores ('250m')")
    if isinstance(value, (int, float)):
        cpu = Decimal(str(value))
    else:
        text = str(value).strip()
        try:
            cpu = Decimal(text[:-1]) / 1000 if text.endswith("m") else Decimal(text)
        except ArithmeticError:
            raise UnitError(f"cpu '{value}' is not a number of vCPU (0.25, 1, 2) or millicores ('250m')") from None
    if not cpu.is_finite():
        raise UnitError(f"cpu must be a finite number of vCPU (0.25, 1, 2) or millicores ('250m'); got {value}")
    if cpu <= 0:
        raise UnitError(f"cpu must be greater than 0; got {value}")
    if cpu > MAX_CPU:
        raise UnitError(f"cpu {_shown(value)} is more than any work pool runs: give at most {_num(MAX_CPU)} vCPU")
    if cpu * 1000 != int(cpu * 1000):  # pools take whole millicores: 0.0001 would become "0m"
        raise UnitError(f"cpu {value} is {_num(cpu * 1000)} millicores; use whole millicores (at least 0.001 "
                        "vCPU, '1m')")
    return cpu


def parse_memory(value) -> Decimal:
    """MiB from '512Mi', '2Gi', '1G' or an integer of MiB."""
    if isinstance(value, bool):
        raise UnitError("memory must be a quantity ('512Mi', '2Gi', '1G') or a whole number of MiB")
    if isinstance(value, int):
        mib = Decimal(value)
    else:
        match = _QUANTITY.match(str(value))
        if not match:
            raise UnitError(f"memory '{value}' is not a quantity: write e.g. '512Mi', '2Gi', '1G' or a number of MiB")
        number, unit = match.groups()
        if unit not in MIB_PER or (unit == "" and "." in number):
            units = ", ".join(u for u in MIB_PER if u)
            raise UnitError(f"memory '{value}' has an unknown unit '{unit}'; use one of {units} (or none, for MiB)")
        mib = Decimal(number) * (MIB_PER[unit] or 1)
    if not mib.is_finite():
        raise UnitError(f"memory must be a finite quantity ('512Mi', '2Gi', '1G') or number of MiB; got {value}")
    if mib <= 0:
        raise UnitError(f"memory must be greater than 0; got {value}")
    if mib > MAX_MEMORY_MIB:
        raise UnitError(f"memory {_shown(value)} is more than any work pool runs: give at most 1Pi "
                        f"({_num(MAX_MEMORY_MIB)} Mi)")
    if mib < 1:  # pools take whole MiB at the finest: less would become 0
        raise UnitError(f"memory {value} is less than 1 MiB; give at least '1Mi'")
    return mib


def _shown(value) -> str:
    text = str(value)  # a huge value from a manifest is quoted by its length
    return text if len(text) <= 24 else f"{text[:12]}... ({len(text)} characters)"


def _num(d: Decimal) -> str:
    return format(d.normalize(), "f")


def _quantity(mib: Decimal, units: tuple[str, ...]) -> str | None:
    """`mib` in the first unit that holds it as a whole number ('' for bytes), or None: never rounded,
    so '1G' reaches the platform as 1G and not as 953Mi."""
    for unit in units:
        count = mib * 1024 * 1024 if unit == "" else mib / MIB_PER[unit]
        if count == int(count):
            return f"{int(count)}{unit}"
    return None


@dataclass
class Translation:
    job_variables: dict = field(default_factory=dict)
    errors: list[tuple[str, str, str]] = field(default_factory=list)  # (field: cpu|memory, message, rule)
    warnings: list[tuple[str, str, str]] = field(default_factory=list)
    failed: set[str] = field(default_factory=set)

    def error(self, where: str, message: str, rule: str = "resources"):
        self.errors.append((where, message, rule))


def translate(resources: dict, pool_type: str | None, launch: Launch = Launch()) -> Translation:
    """Job variables for `resources` on a pool of `pool_type`, with every problem found. `launch`: where an
    ECS pool's tasks run (ecs_launch)."""
    out = Translation()
    if not resources:
        return out
    cpu = mem = None
    for name, parse in (("cpu", parse_cpu), ("memory", parse_memory)):
        if resources.get(name) is None:
            continue
        try:
            value = parse(resources[name])
        except UnitError as error:
            out.error(name, str(error), "resources-unit")
            continue
        if name == "cpu":
            cpu = value
        else:
            mem = value
    if pool_type is None:
        return out
    out.failed = {f for f, _, _ in out.errors}  # a value that did not parse: skip the checks of pairs
    declared = find(pool_type)
    if declared is not None and declared.no_resources is not None:
        declared.no_resources(resources, out)
        return out
    if declared is None or declared.translate is None:
        first = "cpu" if resources.get("cpu") is not None else "memory"
        out.error(first, f"work pool type '{pool_type}' takes no resources; remove 'resources' or use a pool of "
                         f"type {', '.join(taking_resources())}", "resources-pool")
        return out
    declared.translate(cpu, mem, declared.name, launch, out)
    return out


def _ecs(cpu, mem, launch: Launch, out, in_units: bool = False):
    """`in_units`: cpu was written in CPU units (a raw job variable), and is quoted so."""
    if launch.platform == "ec2":
        return _ec2(cpu, mem, launch, out, in_units)
    if launch.platform is None:  # a template decides when the run starts: only the units are known
        if cpu is not None and cpu * 1024 == int(cpu * 1024):
            out.job_variables["cpu"] = int(cpu * 1024)
        if mem is not None and mem == int(mem):
            out.job_variables["memory"] = int(mem)
        return
    _fargate(cpu, mem, out)
    _noted(launch, out)
    _if_assumed(launch, out, cpu, mem, in_units)


def _noted(launch: Launch, out) -> None:
    if launch.note:
        out.errors = [(where, message + launch.note if rule == "resources-fargate" else message, rule)
                      for where, message, rule in out.errors]


def _if_assumed(launch: Launch, out, cpu, mem, in_units: bool = False) -> None:
    """Offline, with no launch type written, the pool's template may say EC2: what Fargate refuses and EC2
    takes is told as a warning, and decided at plan time against the template."""
    if launch.assumed:
        ec2 = Translation()
        _ec2(cpu, mem, launch, ec2, in_units)
        refused_on_ec2 = {where for where, _, _ in ec2.errors}
        out.errors = [(where, f"{message}; nor does ECS on EC2 take it ({_EC2_TAKES[where]})", rule)
                      if rule == "resources-fargate" and where in refused_on_ec2 else (where, message, rule)
                      for where, message, rule in out.errors]
        fargate = [e for e in out.errors if e[2] == "resources-fargate" and e[0] not in refused_on_ec2]
        out.errors = [e for e in out.errors if e not in fargate]
        out.warnings += [(where, f"{message} (if the pool launches on Fargate, the ECS worker's default; checked "
                                 "against the pool's base job template at plan time, or set "
                                 "job_variables.launch_type: FARGATE or EC2)", rule)
                         for where, message, rule in fargate]


_EC2_TAKES = {"cpu": f"whole CPU units from {EC2_CPU_UNITS[0]} to {EC2_CPU_UNITS[1]}",
              "memory": f"a whole number of MiB, at least {EC2_MIN_MEMORY}"}


def _ec2(cpu, mem, launch: Launch, out, in_units: bool = False):
    low, high = EC2_CPU_UNITS
    if cpu is not None:
        units = cpu * 1024
        if units != int(units) or not low <= units <= high:
            written = f"{_num(units)} CPU units" if in_units else f"cpu {_num(cpu)} ({_num(units)} CPU units)"
            hint = _units_hint(cpu) if not in_units and cpu >= low else ""
            out.error("cpu", f"{written} is not a size ECS runs on EC2 "
                             f"({launch.how}): give whole CPU units from {low} to {high} "
                             f"({_num(Decimal(low) / 1024)} to {_num(Decimal(high) / 1024)} vCPU){hint}",
                      "resources-ec2")
        else:
            out.job_variables["cpu"] = int(units)
    if mem is not None:
        if mem != int(mem) or mem < EC2_MIN_MEMORY:
            out.error("memory", f"memory {_num(mem)} MiB is not a size ECS runs on EC2 ({launch.how}): give a "
                                f"whole number of MiB, at least {EC2_MIN_MEMORY}", "resources-ec2")
        else:
            out.job_variables["memory"] = int(mem)


def _units_hint(cpu: Decimal) -> str:
    """'512' written as cpu is ECS's CPU units more likely than 512 vCPU."""
    if cpu == int(cpu) and int(cpu) in FARGATE:
        return f"; did you mean {_num(cpu / 1024)}? cpu is in vCPU ({int(cpu)} CPU units are {_num(cpu / 1024)} vCPU)"
    return ""


def _fargate(cpu, mem, out):
    units = None
    if cpu is not None:
        units = cpu * 1024
        if units not in [Decimal(u) for u in FARGATE]:
            valid = ", ".join(_num(Decimal(u) / 1024) for u in FARGATE)
            out.error("cpu", f"cpu {_num(cpu)} is not a Fargate size; valid vCPU are {valid}{_units_hint(cpu)}",
                      "resources-fargate")
            return
        units = int(units)
        out.job_variables["cpu"] = units
    if mem is not None:
        if mem != int(mem):
            out.error("memory", f"memory must be a whole number of MiB on ECS; got {_num(mem)} MiB", "resources-fargate")
            return
        out.job_variables["memory"] = int(mem)
    if out.failed or (units is None and mem is None):
        return
    # a side left out is the worker's default, and Fargate takes pairs only
    default_units, default_mem = ECS_WORKER_DEFAULTS
    pair_units, pair_mem = units or default_units, int(mem) if mem is not None else default_mem
    if pair_mem in FARGATE[pair_units]:
        return
    valid = FARGATE[pair_units]
    shown = f"{valid[0]} to {valid[-1]} in steps of {valid[1] - valid[0]}" if len(valid) > 3 else \
        ", ".join(str(v) for v in valid)
    if mem is None:
        out.error("cpu", f"Fargate does not accept the ECS worker's default memory of {default_mem} MiB with "
                         f"{_num(cpu)} vCPU ({units} CPU units); set memory: valid memory is {shown} MiB",
                  "resources-fargate")
    elif units is None:
        cpus = ", ".join(_num(Decimal(u) / 1024) for u, mems in FARGATE.items() if pair_mem in mems) or "none"
        out.error("memory", f"Fargate does not accept {pair_mem} MiB with the ECS worker's default cpu of "
                            f"{_num(Decimal(default_units) / 1024)} vCPU ({default_units} CPU units); "
                            f"set cpu: valid vCPU for {pair_mem} MiB are {cpus}", "resources-fargate")
    else:
        out.error("memory", f"Fargate does not accept {int(mem)} MiB with {_num(cpu)} vCPU ({units} CPU units); "
                            f"valid memory is {shown} MiB", "resources-fargate")


def _cloud_run(cpu, mem, kind, out):
    if cpu is not None:
        if kind == "cloud-run" and cpu != int(cpu):
            out.error("cpu", f"cpu {_num(cpu)} is not allowed on 'cloud-run' pools: whole CPUs only (1, 2, 4, 6, 8)",
                      "resources-cloud-run")
            return
        if cpu > 8:
            hint = f"; cpu is in vCPU: write millicores as '{_num(cpu)}m'" if cpu == int(cpu) and cpu >= 100 else ""
            out.error("cpu", f"cpu {_num(cpu)} is above Cloud Run's limit of 8 vCPU{hint}", "resources-cloud-run")
            return
        if cpu > 1 and cpu != int(cpu):
            out.error("cpu", f"cpu {_num(cpu)} is not allowed on Cloud Run: above 1 vCPU, whole CPUs only (2, 4, 6, 8)",
                      "resources-cloud-run")
            return
        out.job_variables["cpu"] = f"{int(cpu * 1000)}m"
    if mem is not None:
        if mem > 32 * 1024:
            out.error("memory", f"memory {_num(mem)} MiB is above Cloud Run's limit of 32Gi", "resources-cloud-run")
            return
        quantity = _quantity(mem, ("Gi", "Mi", "G", "M"))
        if quantity is None:
            out.error("memory", f"memory {_num(mem)} MiB is not a whole number of Mi or M, which Cloud Run requires",
                      "resources-cloud-run")
            return
        out.job_variables["memory"] = quantity
        needed = next((need for above, need in CLOUD_RUN_MIN_CPU if mem > above), None)
        if needed and "cpu" not in out.failed and (cpu or Decimal(1)) < needed:
            out.error("memory", f"Cloud Run needs at least {_num(Decimal(needed))} vCPU for {quantity} of memory; "
                                f"cpu is {_num(cpu) if cpu else 'the default 1'}", "resources-cloud-run")
            return
    least = CLOUD_RUN_MIN_MEMORY.get(int(cpu)) if cpu is not None and "cpu" in out.job_variables else None
    if least and "memory" not in out.failed and (mem or CLOUD_RUN_DEFAULT_MEMORY) < least:
        shown = f"is {out.job_variables['memory']}" if mem is not None else f"is the default {CLOUD_RUN_DEFAULT_MEMORY}Mi"
        out.error("memory" if mem is not None else "cpu",
                  f"Cloud Run needs at least {least // 1024}Gi of memory for {_num(cpu)} vCPU; memory {shown}",
                  "resources-cloud-run")


def _aci(cpu, mem, kind, out):
    if cpu is not None:
        out.job_variables["cpu"] = float(cpu)
        if cpu > 4:
            out.warnings.append(("cpu", f"cpu {_num(cpu)} is above 4 vCPU, which most Azure regions refuse",
                                 "resources-aci"))
    if mem is not None:
        gb = mem * 1024 * 1024 / 10**9
        if round(gb, 2) == 0:  # ACI takes GB with two decimals
            out.error("memory", f"memory {_num(mem)} MiB is less than Azure Container Instances' 0.01 GB",
                      "resources-aci")
            return
        out.job_variables["memory"] = float(round(gb, 2))
        if gb > 16:
            out.warnings.append(("memory", f"memory {_num(round(gb, 2))} GB is above 16 GB, which most Azure "
                                           "regions refuse", "resources-aci"))


def _kubernetes(cpu, mem, kind, out):
    if cpu is not None:
        out.job_variables["cpu_request"] = out.job_variables["cpu_limit"] = f"{int(cpu * 1000)}m"
    if mem is not None:
        quantity = _quantity(mem, ("Mi", "G", "M", "k", ""))
        if quantity is None:
            out.error("memory", f"memory {_num(mem)} MiB is not a whole number of bytes", "resources-unit")
            return
        out.job_variables["memory_request"] = out.job_variables["memory_limit"] = quantity


def _docker(cpu, mem, kind, out):
    if cpu is not None:
        out.error("cpu", "docker work pools have no cpu variable; remove resources.cpu (memory becomes mem_limit)",
                  "resources-docker")
    if mem is not None:
        quantity = _quantity(mem, ("Mi", ""))
        if quantity is None:
            out.error("memory", f"memory {_num(mem)} MiB is not a whole number of bytes", "resources-unit")
            return
        out.job_variables["mem_limit"] = quantity.replace("Mi", "m")  # docker's m is MiB; digits alone are bytes


def variables_for(pool_type: str, resources: dict) -> set[str]:
    """The job variables that `resources` sets on this pool type (to find clashes with job_variables)."""
    declared = find(pool_type)
    names = declared.variables if declared else ()
    chosen = set()
    for name in names:
        if ("cpu" in name and resources.get("cpu") is not None) or \
                ("mem" in name and resources.get("memory") is not None):
            chosen.add(name)
    return chosen


def _number(value) -> Decimal | None:
    return Decimal(str(value)) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def _parsed(parse):
    return lambda value: _given(parse, value) if isinstance(value, str) else None


def check_job_variables(job_variables: dict, pool_type: str, resources: dict | None = None,
                        launch: Launch = Launch()) -> Translation:
    """What the platform refuses in raw `cpu` and `memory` job variables (ECS CPU units and MiB, Cloud Run
    quantities, ACI vCPU and GB): the limits `resources` gets, e.g. Fargate's pairs. A value `resources`
    sets takes part in a pair, but only the raw variables' problems are returned (resources' are its own)."""
    declared = find(pool_type)
    if declared is not None and declared.check_variables is not None:
        return declared.check_variables(job_variables)
    out = Translation()
    raw = {"cpu", "memory"} & set(job_variables)
    if declared is None or declared.reads is None or not raw:
        return out
    kind = declared.name
    read_cpu, read_memory = declared.reads
    cpu = read_cpu(job_variables["cpu"]) if "cpu" in raw else _given(parse_cpu, (resources or {}).get("cpu"))
    mem = read_memory(job_variables["memory"]) if "memory" in raw else \
        _given(parse_memory, (resources or {}).get("memory"))
    if (cpu is not None and cpu <= 0) or (mem is not None and mem <= 0):
        return out  # the template's schema says what a positive value is
    (declared.check_raw or declared.translate)(cpu, mem, kind, launch, out, job_variables)
    out.errors = [e for e in out.errors if e[0] in raw]
    out.warnings = [w for w in out.warnings if w[0] in raw]
    return out


def _given(parse, value) -> Decimal | None:
    try:
        return None if value is None else parse(value)
    except UnitError:
        return None  # reported with resources


# -- prefect:managed -----------------------------------------------------------------------------------
# Prefect Cloud's managed execution, the only pool type of the Hobby plan. From Prefect's docs ("Run flows
# on Prefect Managed infrastructure"): every run gets 4 vCPU, 16 GB of memory and 128 GB of disk, with no
# variable to change them; runs use an official Prefect image (`prefecthq/prefect:...`), never the
# project's; Python packages come at run time from `pip_packages`; the code comes from remote storage
# (git, S3, GCS). The variables are those the docs name (image, env, pip_packages) and the ones every
# worker's template has (command, labels, name); at plan time the pool's own template decides, as for any
# pool.
MANAGED = "prefect:managed"
MANAGED_SIZE = "4 vCPU and 16 GB of memory"
MANAGED_VARIABLES = ("command", "env", "image", "labels", "name", "pip_packages")
MANAGED_IMAGES = ("prefecthq/prefect:", "docker.io/prefecthq/prefect:")


def _managed_resources(resources: dict, out: Translation) -> None:
    first = "cpu" if resources.get("cpu") is not None else "memory"
    out.error(first, f"work pool type '{MANAGED}' runs every flow run with {MANAGED_SIZE} (Prefect Cloud's managed "
                     "execution has no cpu or memory variable); remove 'resources', or use a pool of type "
                     f"{', '.join(taking_resources())}", "resources-managed")


def _managed_job_variables(job_variables: dict) -> Translation:
    out = Translation()
    for name, value in job_variables.items():
        if name not in MANAGED_VARIABLES:
            out.error(name, f"'{name}' is not a variable of '{MANAGED}' pools; they take "
                            f"{', '.join(MANAGED_VARIABLES)} (runs get {MANAGED_SIZE})", "job-variables-managed")
        elif name == "image" and not (isinstance(value, str) and value.startswith(MANAGED_IMAGES)):
            out.error(name, f"'{MANAGED}' pools run only Prefect's official images (e.g. 'prefecthq/prefect:3-latest'), "
                            f"not {_shown(value)!r}; add packages with pip_packages, or use a pool of type "
                            f"{', '.join(taking_resources())} for an image of your own", "job-variables-managed")
        elif name == "pip_packages" and not (isinstance(value, list) and all(isinstance(p, str) for p in value)):
            out.error(name, "pip_packages must be a list of requirement strings, e.g. ['pandas', 'prefect-aws>=0.5']",
                      "job-variables-managed")
        elif name == "env" and not (isinstance(value, dict) and all(isinstance(v, str) for v in value.values())):
            out.error(name, "env must be a mapping of names to strings, e.g. {LOG_LEVEL: 'DEBUG'}",
                      "job-variables-managed")
    return out


def code_problem(pool_type: str | None, code) -> str | None:
    """A deployment without remote code on a pool type that runs only its own images (`official_images`,
    e.g. prefect:managed): its runs would start in an image where this project's code is not."""
    declared = find(pool_type)
    if declared is None or not declared.official_images or code:
        return None
    return (f"a '{declared.name}' pool runs Prefect's own image, not this project's, so its runs need their code "
            "from remote storage: set code.git (or code.s3 / code.gcs) for this deployment")


# -- the pool types -----------------------------------------------------------------------------------

def _ecs_resources(cpu, mem, kind, launch: Launch, out, raw: dict | None = None):
    _ecs(cpu, mem, launch, out)


def _ecs_raw(cpu, mem, kind, launch: Launch, out, raw: dict):
    """ECS's own cpu job variable is in CPU units, and Fargate's refusal quotes them so."""
    if launch.platform == "fargate" and "cpu" in raw and cpu is not None and cpu * 1024 not in FARGATE:
        out.error("cpu", f"{raw['cpu']} CPU units is not a Fargate size; valid CPU units are "
                         f"{', '.join(map(str, FARGATE))}", "resources-fargate")
        _noted(launch, out)
        _if_assumed(launch, out, cpu, mem, in_units=True)
    else:
        _ecs(cpu, mem, launch, out, in_units="cpu" in raw)


def _by_kind(rules):
    """A translation that needs no launch (all but ECS)."""
    return lambda cpu, mem, kind, launch, out, raw=None: rules(cpu, mem, kind, out)


def _cpu_units(value):
    return None if (n := _number(value)) is None else n / 1024


def _gb(value):
    return None if (n := _number(value)) is None else n * 10**9 / 1024**2


_QUANTITIES = (_parsed(parse_cpu), _parsed(parse_memory))  # Kubernetes-style quantities ('1000m', '2Gi')


@dataclass(frozen=True)
class PoolType:
    """One work pool type, as the Prefect server names it, and everything flow-register knows of it."""

    name: str
    push: bool = False  # also '<name>:push' (Prefect Cloud's push pools), with the same rules
    # The job variables `resources` becomes (kubernetes sets both request and limit); none: takes no resources
    variables: tuple[str, ...] = ()
    # (cpu vCPU, memory MiB, type name, Launch, Translation, raw job variables) -> job variables and problems
    translate: Callable | None = None
    # How its own `cpu` and `memory` job variables read as vCPU and MiB, to check raw values the way `resources`
    # is checked (None: not checked; a value of another type is left to the check against the pool's template)
    reads: tuple[Callable, Callable] | None = None
    check_raw: Callable | None = None  # the check of raw job variables, when it differs from `translate`
    takes_image: bool = True  # its default base job template runs a container image (declares `image`)
    # For `import` of Prefect 2 infrastructure blocks and Prefect 1 run configs: their class names, and their
    # settings that are a job variable of the same name in the Prefect 3 worker's base job template
    prefect2: tuple[str, ...] = ()
    same_variables: tuple[str, ...] = ()
    # For `import` without --pool-type: whether cpu and memory job variables of these values are this type's
    # (tried by `guess_order`, after the variables that only one type's resources become)
    looks_like: Callable[[object, object], bool] | None = None
    guess_order: int = 0
    # A type that takes no resources for a reason of its own: (resources, Translation) -> its refusal (None:
    # the plain 'takes no resources')
    no_resources: Callable | None = None
    # The check of all its raw job variables, when it knows them all (None: only cpu and memory, by `reads`)
    check_variables: Callable[[dict], Translation] | None = None
    # The only images it runs (prefixes): never the project's, whatever its template declares, so a
    # deployment's code must come from remote storage (`code_problem`)
    official_images: tuple[str, ...] = ()

    @property
    def names(self) -> tuple[str, ...]:
        return (self.name, f"{self.name}:push") if self.push else (self.name,)


POOL_TYPES: tuple[PoolType, ...] = (
    PoolType("ecs", push=True, variables=("cpu", "memory"), translate=_ecs_resources,
             reads=(_cpu_units, _number), check_raw=_ecs_raw, prefect2=("ECSTask", "ECSRun"),
             looks_like=lambda cpu, mem: isinstance(cpu, int) and cpu >= 128 and (mem is None or isinstance(mem, int)),
             guess_order=2,  # CPU units
             same_variables=("image", "env", "cluster", "task_role_arn", "execution_role_arn", "vpc_id",
                             "launch_type", "stream_output", "configure_cloudwatch_logs", "cloudwatch_logs_options",
                             "task_definition_arn")),
    PoolType("cloud-run", push=True, variables=("cpu", "memory"), translate=_by_kind(_cloud_run), reads=_QUANTITIES,
             prefect2=("CloudRunJob",),
             same_variables=("image", "env", "region", "vpc_connector_name", "keep_job", "timeout", "args")),
    PoolType("cloud-run-v2", push=True, variables=("cpu", "memory"), translate=_by_kind(_cloud_run),
             reads=_QUANTITIES, prefect2=("CloudRunJobV2",),
             looks_like=lambda cpu, mem: isinstance(cpu, str) or isinstance(mem, str), guess_order=1,
             same_variables=("image", "env", "region", "vpc_connector_name", "keep_job", "timeout", "args")),
    PoolType("azure-container-instance", push=True, variables=("cpu", "memory"), translate=_by_kind(_aci),
             reads=(_number, _gb), prefect2=("AzureContainerInstanceJob",),
             looks_like=lambda cpu, mem: isinstance(cpu, float) or isinstance(mem, float), guess_order=3,
             same_variables=("image", "env", "resource_group_name", "subscription_id")),
    PoolType("kubernetes", variables=("cpu_request", "cpu_limit", "memory_request", "memory_limit"),
             translate=_by_kind(_kubernetes), prefect2=("KubernetesJob", "KubernetesRun"),
             same_variables=("image", "env", "namespace", "service_account_name", "image_pull_policy",
                             "finished_job_ttl", "stream_output")),
    PoolType("docker", variables=("mem_limit",), translate=_by_kind(_docker), prefect2=("DockerContainer", "DockerRun"),
             same_variables=("image", "env", "networks", "volumes", "auto_remove", "image_pull_policy", "privileged",
                             "mem_limit", "stream_output")),
    PoolType("vertex-ai", prefect2=("VertexAIJob", "VertexAIRun"),
             same_variables=("image", "env", "region", "machine_type")),
    PoolType("process", takes_image=False, prefect2=("Process", "LocalRun"),
             same_variables=("env", "working_dir", "stream_output")),
    PoolType(MANAGED, takes_image=False, no_resources=_managed_resources, check_variables=_managed_job_variables,
             official_images=MANAGED_IMAGES),
)

_BY_NAME = {name: t for t in POOL_TYPES for name in t.names}


def find(pool_type: str | None) -> PoolType | None:
    """The declared pool type of this name (a push variant gives its type); None: not declared."""
    return _BY_NAME.get(pool_type) if pool_type else None


def names() -> tuple[str, ...]:
    """Every declared pool type name, push variants included: the schema's enum and `import --pool-type`."""
    return tuple(name for t in POOL_TYPES for name in t.names)


def taking_resources() -> tuple[str, ...]:
    return tuple(name for t in POOL_TYPES if t.translate for name in t.names)


def takes_image(pool_type: str | None) -> bool:
    declared = find(pool_type)
    return bool(declared and declared.takes_image)


# Which job variables each pool type's resources become (by base type)
VARIABLES = {t.name: t.variables for t in POOL_TYPES if t.translate}


def schema(document: dict) -> dict:
    """The manifest's JSON Schema with `work_pool.type`'s enum the declared names."""
    import json

    out = json.loads(json.dumps(document))
    mapping = next(s for s in out["$defs"]["work_pool"]["oneOf"] if s.get("type") == "object")
    mapping["properties"]["type"]["enum"] = list(names())
    return out


# -- a work pool as a deployment meets it ---------------------------------------------------------------

@dataclass(frozen=True)
class Pool:
    """What a deployment's work pool accepts: its type and its base job template's variables."""

    name: str
    type: str | None
    variables: dict | None = None  # the template's variables schema; None offline (not known)

    @classmethod
    def from_server(cls, raw: dict) -> Pool:
        return cls(raw["name"], raw["type"], (raw.get("base_job_template") or {}).get("variables") or {})

    @property
    def declared(self) -> set[str] | None:
        """The variable names the template declares (None: not known offline)."""
        return None if self.variables is None else set(self.variables.get("properties") or {})

    @property
    def takes_image(self) -> bool:
        declared_type = find(self.type)
        if declared_type is not None and declared_type.official_images:  # never the project's image
            return False
        declared = self.declared
        return "image" in declared if declared is not None else takes_image(self.type)


def job_variables(deployment, pool: Pool, image: str | None) -> dict:
    """A resolved deployment's resources translated for the pool's type, then its raw job_variables (a clash is a manifest error),
    with the image first where the pool runs one (a job_variables.image wins)."""
    translated = translate(deployment.resources, pool.type).job_variables if pool.type else {}
    out = {**translated, **deployment.job_variables}
    return {"image": image, **out} if image and pool.takes_image else out
