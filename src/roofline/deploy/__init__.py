"""From a costed configuration to the command that deploys it: `launch_command(runtime, config)`
renders `vllm serve ...`, `python -m sglang.launch_server ...`, `trtllm-serve ...` (with its extra
LLM API options file) or a note, each flag named as that engine version's documentation names it
(simulator/data/launch/<runtime>.yaml)."""

from __future__ import annotations

from roofline.deploy.config import LaunchConfig, launch_config
from roofline.deploy.render import LaunchCommand, launch_command
from roofline.deploy.spec import hf_repo, load_spec, resolve_runtime, runtime_ids

__all__ = ["LaunchCommand", "LaunchConfig", "hf_repo", "launch_command", "launch_config", "load_spec",
           "resolve_runtime", "runtime_ids"]  # fmt: skip
