"""The agent team: roles that hand typed documents to each other over an explicit graph.

- `agent.team.handoffs`: the handoff models (`Spec`, `Design`, `WorkItem`, `WorkResult`, `Review`) and
  their JSON Schemas (``agent/schemas``);
- `agent.team.submit`: the tools through which a role submits its handoff, validated;
- `agent.team.role_agent`: the agent loop for one role (it ends when its handoff is accepted);
- `agent.team.graph`: graphs as data (node types, the shipped `solo` and `team` graphs, text and
  Mermaid renderings); `agent.team.config`: the ``agent.team`` settings and custom graphs;
- `agent.team.engine`: runs a graph on one overlay, with checkpoints (`agent.team.checkpoint`) so a
  stopped run resumes at the node that failed, and proposes the result once.
"""
