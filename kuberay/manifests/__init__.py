"""Builders of the Kubernetes objects `ai-agents kuberay render` writes."""
