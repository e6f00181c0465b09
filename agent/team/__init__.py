"""The agent team: roles that hand typed documents to each other over an explicit graph.

- `agent.team.handoffs`: the handoff models (`Spec`, `Design`, `WorkItem`, `WorkResult`, `Review`) and
  their JSON Schemas (``agent/schemas``).
"""
