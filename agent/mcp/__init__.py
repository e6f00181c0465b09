"""MCP both ways, with the official `mcp` SDK.

- `agent.mcp.config`: ``[mcp.servers.NAME]`` settings.
- `agent.mcp.client`: `McpHub` runs the client sessions of a run's servers on one dedicated asyncio
  thread (the agent loop is synchronous) and `McpTool` offers each server tool to the model as
  ``mcp__NAME__tool``, results size-capped and framed as data.
- ``server/cli/mcp.py`` (``agentls mcp``) serves agentls's own index as an MCP stdio server.
"""
