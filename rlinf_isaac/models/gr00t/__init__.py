"""GR00T N1.5-architecture policy: config, backbone, flow-matching action head, checkpoint I/O, processor, RL policy."""

import importlib

__all__ = [
    "ActionContext", "ActionHeadConfig", "BackboneConfig", "EagleBackbone", "FlowMatchingActionHead",
    "GR00TConfig", "GR00TN15", "GR00TPolicy", "GR00TPolicyConfig", "GR00TProcessor", "ValueHead",
    "ValueHeadConfig", "build_tiny_tokenizer", "compute_statistics", "load_metadata", "load_tokenizer",
    "Pretrained", "build_model", "list_configs", "load_config", "load_pretrained", "save_pretrained",
]

_HOME = {
    "ActionContext": "action_head", "FlowMatchingActionHead": "action_head", "EagleBackbone": "backbone",
    "Pretrained": "checkpoint", "load_pretrained": "checkpoint", "save_pretrained": "checkpoint",
    "ActionHeadConfig": "config", "BackboneConfig": "config", "GR00TConfig": "config", "list_configs": "config",
    "load_config": "config", "GR00TN15": "modeling", "build_model": "modeling", "GR00TPolicy": "policy",
    "GR00TPolicyConfig": "policy_config", "GR00TProcessor": "processor", "compute_statistics": "processor",
    "load_metadata": "processor", "build_tiny_tokenizer": "tokenizer", "load_tokenizer": "tokenizer",
    "ValueHead": "value_head", "ValueHeadConfig": "value_head",
}


def __getattr__(name: str):
    # lazy: the config (actor.model) is read without importing torch or transformers
    if name in _HOME:
        return getattr(importlib.import_module(f"rlinf_isaac.models.gr00t.{_HOME[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
