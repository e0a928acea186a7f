"""The Serve config (``serveConfigV2``) built from ``actors.deployment_options``, checked strictly.

Ray's own ``ServeDeploySchema`` ignores unknown keys (``max_ongoing_request:`` is accepted and
silently dropped) and never validates a dict-typed ``autoscaling_config``. So every config we
emit, and every per-pool override in the values, is also checked key by key against the Ray
models' ``model_fields`` (recursively: ``DeploymentSchema``, ``AutoscalingConfig``,
``RayActorOptionsSchema``, ``HTTPOptionsSchema`` ...) and dict-typed sub-configs are validated
with their model. Pool options are read at call time, so a test that changes them sees the
change in the rendered config.
"""

from __future__ import annotations

import types
import warnings
from collections.abc import Mapping
from typing import Annotated, Any, Union, get_args, get_origin

from pydantic import BaseModel, ValidationError
from ray.serve.schema import DeploymentSchema, ServeDeploySchema

from actors import deployment_options as pool_options
from kuberay.capacity import replica_demands, unplaced_replicas
from kuberay.problems import KubeRayConfigError, Problem, format_loc, join_path, suggestion
from kuberay.values import Values, deep_merge

SERVE_PORT = 8000
PROXY_LOCATION = "EveryNode"
# Keys that must never appear in a per-pool override: the name comes from the pool, and
# runtime_env is stored in plain text in the RayService (and shown in the dashboard).
_FORBIDDEN_OVERRIDE_KEYS = {
    "name": "set by the pool name, not by an override",
    "runtime_env": "not allowed: runtime_env is stored in plain text in the RayService; "
    "use values env (non-secret) or the Secret",
}


# ---------------------------------------------------------------------------- strict keys


def _models_in(tp: Any) -> tuple[type[BaseModel], ...]:
    origin = get_origin(tp)
    if origin in (Union, types.UnionType):
        return tuple(m for arg in get_args(tp) for m in _models_in(arg))
    if origin is Annotated:
        return _models_in(get_args(tp)[0])
    if isinstance(tp, type) and issubclass(tp, BaseModel):
        return (tp,)
    return ()


def _list_item_type(tp: Any) -> Any:
    origin = get_origin(tp)
    if origin in (Union, types.UnionType):
        for arg in get_args(tp):
            item = _list_item_type(arg)
            if item is not None:
                return item
        return None
    if origin is Annotated:
        return _list_item_type(get_args(tp)[0])
    if origin is list:
        return get_args(tp)[0] if get_args(tp) else None
    return None


def _accepts_plain_dict(tp: Any) -> bool:
    """True for ``Dict | Model`` unions, where the parent model never validates the dict."""
    origin = get_origin(tp)
    if origin in (Union, types.UnionType):
        return any(_accepts_plain_dict(arg) for arg in get_args(tp))
    if origin is Annotated:
        return _accepts_plain_dict(get_args(tp)[0])
    return tp is dict or origin is dict


def _validation_problems(model: type[BaseModel], data: Any, path: str) -> list[Problem]:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model.model_validate(data)
    except ValidationError as exc:
        return [
            Problem(format_loc(e["loc"], path), e["msg"].removeprefix("Value error, "))
            for e in exc.errors()
        ]
    return []


def _check_value(tp: Any, value: Any, path: str, complete: bool) -> list[Problem]:
    models = _models_in(tp)
    if isinstance(value, dict) and len(models) == 1:
        problems = strict_key_problems(models[0], value, path, complete)
        if complete and not problems and _accepts_plain_dict(tp):
            problems = _validation_problems(models[0], value, path)
        return problems
    item_tp = _list_item_type(tp)
    if isinstance(value, list) and item_tp is not None:
        return [
            p
            for i, v in enumerate(value)
            for p in _check_value(item_tp, v, f"{path}[{i}]", complete)
        ]
    return []


def strict_key_problems(
    model: type[BaseModel], data: Any, path: str = "", complete: bool = True
) -> list[Problem]:
    """Every key in ``data`` (recursively) that ``model`` does not define. With ``complete``,
    dict-typed sub-configs (``autoscaling_config`` ...) are also validated with their model;
    a partial override is only checked for its keys."""
    if not isinstance(data, dict):
        return []
    fields = {}
    for name, field in model.model_fields.items():
        fields[name] = field
        if field.alias:
            fields[field.alias] = field
    problems: list[Problem] = []
    for key, value in data.items():
        known = fields.get(key)
        key_path = join_path(path, str(key))
        if known is None:
            hint = suggestion(str(key), fields)
            problems.append(Problem(key_path, f"unknown option for {model.__name__}{hint}"))
            continue
        problems.extend(_check_value(known.annotation, value, key_path, complete))
    return problems


def serve_config_problems(config: Any, path: str = "") -> list[Problem]:
    """``ServeDeploySchema`` validation plus the strict key whitelist, as problems."""
    if not isinstance(config, dict):
        return [Problem(path, "the Serve config must be a mapping")]
    problems = strict_key_problems(ServeDeploySchema, config, path)
    problems += _validation_problems(ServeDeploySchema, config, path)
    return sorted(set(problems))


# ---------------------------------------------------------------------------- building


def override_problems(
    overrides: Mapping[str, Any], path: str = "serve.deployments"
) -> list[Problem]:
    """Problems in the values' per-pool overrides, reported at their values path."""
    pools = pool_options.all_pool_options()
    problems: list[Problem] = []
    for name, override in overrides.items():
        at = join_path(path, name)
        if name not in pools:
            known = ", ".join(pools)
            problems.append(
                Problem(at, f"unknown deployment{suggestion(name, pools)}; known: {known}")
            )
        elif not isinstance(override, Mapping):
            problems.append(Problem(at, "must be a mapping of Serve deployment options"))
        else:
            problems += _one_override_problems(name, pools[name], override, at)
    return sorted(set(problems))


def _one_override_problems(
    name: str, base: dict[str, Any], override: Mapping[str, Any], at: str
) -> list[Problem]:
    problems = [
        Problem(join_path(at, key), reason)
        for key, reason in _FORBIDDEN_OVERRIDE_KEYS.items()
        if key in override
    ]
    actor_options = override.get("ray_actor_options")
    if isinstance(actor_options, Mapping) and "runtime_env" in actor_options:
        problems.append(
            Problem(
                join_path(at, "ray_actor_options", "runtime_env"),
                _FORBIDDEN_OVERRIDE_KEYS["runtime_env"],
            )
        )
    clean = {k: v for k, v in override.items() if k not in _FORBIDDEN_OVERRIDE_KEYS}
    problems += strict_key_problems(DeploymentSchema, clean, at, complete=False)
    if problems:
        return problems
    merged = {"name": name, **deep_merge(base, clean, null_deletes=True)}
    return strict_key_problems(DeploymentSchema, merged, at) + _validation_problems(
        DeploymentSchema, merged, at
    )


def deployment_options(
    overrides: Mapping[str, Any] | None = None, pod_cpus: list[float] | None = None
) -> dict[str, dict[str, Any]]:
    """Every pool's options from ``actors.deployment_options``, the values' overrides applied.

    With ``pod_cpus`` (every worker pod at maxReplicas, ``worker_pod_cpus``) the pools'
    max_replicas are sized to them: the largest ``scale`` (max_replicas = scale x min_replicas,
    ``deployment_options.sized_pool_options``) at which every pool at max_replicas, overrides
    applied, packs onto the pods (``kuberay.capacity.unplaced_replicas``); and each pool's
    autoscaling policy learns the cluster's CPUs at its largest, so it asks past the free CPUs
    (the Ray autoscaler then adds a pod) but never past what the groups can hold."""
    overrides = overrides or {}
    problems = override_problems(overrides)
    if problems:
        raise KubeRayConfigError("values", problems)

    def at(scale: int | None) -> dict[str, dict[str, Any]]:
        if scale is None:
            base = pool_options.all_pool_options()
        else:
            base = pool_options.sized_pool_options(scale, sum(pod_cpus or []))
        merged = {
            name: deep_merge(options, overrides.get(name, {}), null_deletes=True)
            for name, options in base.items()
        }
        return pool_options.with_policy_cpus(merged, sum(pod_cpus) if pod_cpus else None)

    if not pod_cpus:
        return at(None)
    scale = 1
    while scale < pool_options.MAX_SCALE and _fits(at(scale + 1), pod_cpus):
        scale += 1
    return at(scale)


def _fits(pools: dict[str, dict[str, Any]], pod_cpus: list[float]) -> bool:
    deployments = [{"name": name, **options} for name, options in pools.items()]
    demands = replica_demands({"applications": [{"deployments": deployments}]})
    return not unplaced_replicas(demands, pod_cpus)


def worker_pod_cpus(values: Values) -> list[float]:
    """The CPUs of every worker pod at maxReplicas (the in-tree autoscaler is always on)."""
    return [
        float(group.resources.cpus() or 0)
        for group in values.worker_groups
        for _ in range(group.max_replicas)
    ]


def _applications(values: Values, *, on_workers: bool = True) -> list[dict[str, Any]]:
    """``on_workers``: sized to the worker groups (the RayService); else as declared (one
    machine, whose CPUs the policy reads from Ray)."""
    pod_cpus = worker_pod_cpus(values) if on_workers else None
    pools = deployment_options(values.serve.deployments, pod_cpus)
    deployments = [{"name": name, **options} for name, options in pools.items()]
    return [
        {
            "name": pool_options.APP_NAME,
            "route_prefix": pool_options.ROUTE_PREFIX,
            "import_path": pool_options.IMPORT_PATH,
            "deployments": deployments,
        }
    ]


def _logging_config(values: Values) -> dict[str, Any]:
    return {
        "encoding": "JSON",
        "log_level": values.serve.log_level,
        "enable_access_log": values.serve.enable_access_log,
    }


def _checked(config: dict[str, Any], source: str) -> dict[str, Any]:
    problems = serve_config_problems(config)
    if problems:
        raise KubeRayConfigError(source, problems)
    return config


def build_serve_config(values: Values) -> dict[str, Any]:
    """The ``serveConfigV2`` document for the RayService (validated before it is returned)."""
    config = {
        "proxy_location": PROXY_LOCATION,
        "http_options": {
            "host": "0.0.0.0",
            "port": SERVE_PORT,
            "request_timeout_s": values.serve.request_timeout_s,
            "keep_alive_timeout_s": values.serve.keep_alive_timeout_s,
        },
        "logging_config": _logging_config(values),
        "applications": _applications(values),
    }
    return _checked(config, "serveConfigV2")


def serve_config_for_local(
    values: Values | None = None, *, host: str = "127.0.0.1", port: int = SERVE_PORT
) -> dict[str, Any]:
    """The same ``applications`` (and logging) as the RayService, for ``serve deploy`` or
    ``ServeDeploySchema``-based deploys on one machine: one proxy on the head node, bound to
    loopback by default."""
    values = values or Values()
    config = {
        "proxy_location": "HeadOnly",
        "http_options": {
            "host": host,
            "port": port,
            "request_timeout_s": values.serve.request_timeout_s,
        },
        "logging_config": _logging_config(values),
        "applications": _applications(values, on_workers=False),
    }
    return _checked(config, "local serve config")


def longest_graceful_shutdown_s(config: Mapping[str, Any]) -> float:
    """The longest ``graceful_shutdown_timeout_s`` of any deployment (Serve's default is 20 s)."""
    longest = 0.0
    for app in config.get("applications") or []:
        for dep in app.get("deployments") or []:
            longest = max(longest, float(dep.get("graceful_shutdown_timeout_s", 20)))
    return longest
