"""Serving a domain to agents and trainers outside this package (``apigen-mt envs serve``).

- :mod:`.sessions`: the start state of a served episode (a seed or a task) and one environment per
  client session;
- :mod:`.mcp`: the domain as an MCP server (the ``mcp`` SDK's low-level ``Server``): every tool with
  its schema, the policy as a prompt and a resource, the session's state as resources;
- :mod:`.episode`: one whole episode driven from outside (the client is the agent), played by the
  runner core's build and episode layers and judged by Phase 2's verdict;
- :mod:`.openenv`: the domain as an OpenEnv environment (``openenv-core``'s ``HTTPEnvServer``):
  ``reset`` / ``step`` / ``state`` with the verdict as the episode's reward.
"""
