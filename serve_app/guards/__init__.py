"""What every request passes before a route runs: body limits, input rules, webhook auth,
throttles."""
