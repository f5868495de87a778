"""The names apigen-mt's own servers add to MCP and OpenEnv (``datagen.envs.serve``), and that its
remote-domain clients read back (``datagen.envs.remote``): one place, so the two cannot drift."""

from __future__ import annotations

POLICY_URI = "apigen://policy"  # the policy (markdown)
STATE_URI = "apigen://state"  # the session's tables, JSON {table: {id: record}}
HASH_URI = "apigen://state-hash"  # the session's canonical state hash
VIOLATIONS_URI = "apigen://violations"  # the policy checks the session's calls broke, JSON
DOMAIN_URI = "apigen://domain"  # what a client needs to run the toolkit on the domain (domain_info)  # the policy checks the session's calls broke, JSON
HASH_META = "apigen-mt/state_hash"  # in a call result's _meta: the state hash after the call
