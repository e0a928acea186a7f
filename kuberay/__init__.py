"""AI Agents on KubeRay: values -> RayService and companion manifests, offline validation,
Prometheus alert rules and Grafana dashboards.

Entry points: ``kuberay.render.render(values)``, ``kuberay.values.load_values(*files)``,
``kuberay.manifests.serve_config.serve_config_for_local(values)``,
``kuberay.validation.validate.validate_dir(dir)`` and the Typer sub-app
``cli.kuberay.kuberay_app`` (mounted as ``ai-agents kuberay``). Nothing heavy is imported here.
"""
