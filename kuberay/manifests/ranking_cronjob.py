"""The CronJob that refits the learned ranking on a schedule (``cronjob-ranking-fit.yaml``):
``ai-agents ranking fit --json`` with the service's image against the service's database.

- It needs no Ray: the command reads the recorded outcomes and writes the models with the
  restricted service role (``AI_AGENTS_DATABASE_URL``); replicas pick a new model up within
  ``AI_AGENTS_RANKING_MODEL_TTL_S``.
- Secrets reach it as files under ``AI_AGENTS_SECRETS_DIR``, like every pod here: the service
  role's URL, plus the admin token and the encryption keys, without which the command line
  refuses to start against an external database (it uses neither). Never the owner's URL.
- Its pods carry the deployment's instance label, so ``networkpolicy.yaml`` applies: default
  deny, and egress to DNS and PostgreSQL only (``<name>-egress-database``); nothing may reach
  them. Pod Security "restricted", the ServiceAccount without a token, like the others.
- ``concurrencyPolicy: Forbid``: a refit still running when the next one is due is not
  doubled.
"""

from __future__ import annotations

from typing import Any

from kuberay.manifests import pod_security
from kuberay.manifests.cluster import container_env, labels, metadata
from kuberay.values import Values

COMPONENT = "ranking-fit"
# What `ai-agents ranking fit` reads from the Secret (cli.support.load_runtime).
RANKING_FIT_SECRET_KEYS = (
    "AI_AGENTS_ADMIN_TOKEN",
    "AI_AGENTS_DATABASE_URL",
    "AI_AGENTS_ENCRYPTION_KEYS",
)
COMMAND = ["ai-agents", "ranking", "fit", "--json"]


def ranking_fit_cronjob(values: Values) -> dict[str, Any]:
    fit = values.ranking_fit
    container = {
        "name": COMPONENT,
        "image": values.image.reference,
        "imagePullPolicy": values.image.pull_policy,
        "command": [*COMMAND, *fit.extra_args],
        "env": container_env(values),
        "resources": {
            "requests": {"cpu": "250m", "memory": "512Mi"},
            "limits": {"cpu": "1", "memory": "1Gi"},
        },
        "securityContext": pod_security.container_security_context(),
        "volumeMounts": [pod_security.secrets_mount(), pod_security.scratch_mount()],
    }
    pod_spec: dict[str, Any] = {
        "restartPolicy": "Never",
        "containers": [container],
        "volumes": [
            pod_security.secrets_volume(values, RANKING_FIT_SECRET_KEYS),
            pod_security.scratch_volume(),
        ],
        "serviceAccountName": values.service_account,
        "automountServiceAccountToken": False,
        "securityContext": pod_security.pod_security_context(values),
    }
    if values.image.pull_secrets:
        pod_spec["imagePullSecrets"] = [{"name": s} for s in values.image.pull_secrets]
    return {
        "apiVersion": "batch/v1",
        "kind": "CronJob",
        "metadata": metadata(values, f"{values.name}-{COMPONENT}", COMPONENT),
        "spec": {
            "schedule": fit.schedule,
            "timeZone": fit.time_zone,
            "concurrencyPolicy": "Forbid",
            "startingDeadlineSeconds": fit.starting_deadline_seconds,
            "successfulJobsHistoryLimit": fit.successful_jobs_history_limit,
            "failedJobsHistoryLimit": fit.failed_jobs_history_limit,
            "jobTemplate": {
                "metadata": {"labels": labels(values, COMPONENT)},
                "spec": {
                    "backoffLimit": fit.backoff_limit,
                    "activeDeadlineSeconds": fit.active_deadline_seconds,
                    "template": {
                        "metadata": {"labels": labels(values, COMPONENT)},
                        "spec": pod_spec,
                    },
                },
            },
        },
    }
