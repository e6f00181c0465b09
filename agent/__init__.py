"""The agent: Claude with tools on a private overlay of the workspace, sandboxed verification, proposals."""
