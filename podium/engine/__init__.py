"""The engine: workflow definitions, the client every surface calls, the executor that drives a run
(replay, retries, timeouts, fan-out, loops), the step context, waits and timers, history, loading,
the worker loop, versions, prompts, escalation and usage accounting.

The engine imports core types (:mod:`podium.errors`, :mod:`podium.records`), the plug-in interfaces
and :mod:`podium.governance`; nothing here imports ``ai``, ``memory``, ``knowledge``, ``yaml`` or a
surface. Users import the public names from :mod:`podium`.
"""
