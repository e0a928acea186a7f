"""Offline validation of rendered manifests (`ai-agents kuberay validate`)."""
