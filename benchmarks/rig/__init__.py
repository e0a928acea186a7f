"""The one rig every benchmark runs on: local stack, load generator, samplers, reports, clusters."""
