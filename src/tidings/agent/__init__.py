"""The agent (docs/architecture.md, "The flow"): the update client service on a device.

Modules so far: ``state`` (the device's enrolled identity and trust on disk, ``AgentState``),
``enroll`` (joining a service: pin check, CSR, verified reply, atomic state directory) and
``ledger`` (what this device did with updates).
"""

from __future__ import annotations
