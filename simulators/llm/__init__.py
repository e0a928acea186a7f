"""OpenAI/OpenRouter-compatible LLM simulator used by tests, the demo and benchmarks.

In-process: ``app = create_app(state)`` with a :class:`LLMSimulatorState` the caller keeps.
Standalone: ``python -m simulators.llm --port 8091`` and drive it through ``/_sim/...``.
"""

from simulators.llm.app import create_app
from simulators.llm.key_account import KeyLimits
from simulators.llm.state import FAULT_KINDS, Fault, LLMSimulatorState, RequestRecord

__all__ = ["FAULT_KINDS", "Fault", "KeyLimits", "LLMSimulatorState", "RequestRecord", "create_app"]
